"""The HTTP layer: a small Flask app that verifies, stores and acknowledges."""
