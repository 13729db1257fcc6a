"""Support mailboxes read over IMAP: their settings, poll state, lease, and the reader."""
