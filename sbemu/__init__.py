"""sbemu: a small, durable, local Azure Service Bus broker (AMQP 1.0 on python-qpid-proton,
messages in SQLite) that the official ``azure-servicebus`` SDK talks to. For development
and tests on machines without Docker; see ``sbemu/README.md``."""
