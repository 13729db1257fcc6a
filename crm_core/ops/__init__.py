"""Operational records: which workers are alive."""
