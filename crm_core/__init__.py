"""The CRM domain: models, payload schemas, services and rules.

Nothing in this package knows about HTTP or task queues; the web layer
(``webhooks``) and the workers (``workers``) call into it.
"""
