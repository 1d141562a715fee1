"""The bench's count of finished sagas, read from a real worker metrics endpoint: every
final state summed, nothing else counted."""

from __future__ import annotations

from app.observability.metrics import Metrics, serve_metrics
from bench.load import FinishedCount
from devstack.processes import free_port


async def test_the_count_sums_every_final_state_and_only_finished_sagas() -> None:
    metrics = Metrics(api=False)
    assert metrics.worker is not None
    metrics.worker.finished.labels("completed").inc(5)
    metrics.worker.finished.labels("voided").inc(2)
    metrics.worker.retries.inc(7)  # another counter of the same registry
    port = free_port()
    stop = serve_metrics(metrics.registry, "127.0.0.1", port)
    count = FinishedCount(f"http://127.0.0.1:{port}/metrics")
    try:
        assert await count() == 7.0
        metrics.worker.finished.labels("completed").inc()
        assert await count() == 8.0
    finally:
        await count.close()
        stop()
