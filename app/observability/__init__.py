"""Observability: structured logs and Prometheus metrics (and the deployment views
built from storage that /metrics exports)."""
