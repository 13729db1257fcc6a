"""Bounces: the record of every message sent, and delivery reports checked against it."""
