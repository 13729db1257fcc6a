"""Writes that people and integrators make through the API: each takes the actor, checks
its permission, and records an audit entry in the same transaction."""
