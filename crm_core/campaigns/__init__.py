"""Marketing campaigns, their targets and sends, and the suppression list."""
