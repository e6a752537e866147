"""The outbox's effects: one module per kind of side effect (its queue function, its job, its
metadata in the registry). The only code handed the outside systems' clients. The worker
reaches them through handlers/effects/dispatch.py."""
