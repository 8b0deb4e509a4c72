"""The registry: guarded transitions on PostgreSQL, the outbox and its relay."""
