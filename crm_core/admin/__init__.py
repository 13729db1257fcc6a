"""Changes that admins make through the API and the command line: campaigns, sources, event
replays, mailboxes, notification subscriptions and the suppression list.

Each service takes the actor, checks its permission, calls the domain's own service, and
records one audit entry in the same transaction, never with a secret in it.
"""
