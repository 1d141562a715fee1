"""The application layer: ports, messages, use cases, the saga coordinator, operations,
the outbox and the worker. It imports the domain and observability, never an adapter."""
