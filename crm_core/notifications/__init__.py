"""Outbound notifications: signed webhooks to the URLs that subscribed to an event."""
