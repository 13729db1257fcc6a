"""Support cases and their threads."""
