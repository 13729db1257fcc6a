"""Customers (people and companies) and their contacts."""
