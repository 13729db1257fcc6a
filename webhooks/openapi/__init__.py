"""The OpenAPI document of the app, and the pages that show it."""
