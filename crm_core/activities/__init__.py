"""The timeline: every interaction with a customer."""
