"""Storage faults injected at the Azure SDKs' transport, so that the code above sees
exactly what a real outage produces: the SDK's own retry policy handles a fault first,
as it would a network error, and what gets through arrives as the real exception types.

Half of the injected failures happen *before* the request is sent (nothing changed), half
*after* the service answered (the change is made, the answer is lost): the second kind is
what makes idempotency necessary, and what tests must survive.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Any

from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.core.pipeline.transport import AioHttpTransport

from app.domain.faults import FaultPlan

_created = itertools.count()


class FaultyTransport(AioHttpTransport):  # type: ignore[misc]
    """``AioHttpTransport`` that fails a share of requests and delays every one."""

    def __init__(self, plan: FaultPlan, rng: random.Random | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        # Each transport its own stream, reproducible from the seed and creation order.
        self.rng = rng or random.Random(
            None if plan.seed is None else f"{plan.seed}:{next(_created)}"
        )
        self.injected_before = 0
        self.injected_after = 0

    async def send(self, request: Any, **kwargs: Any) -> Any:
        if self.plan.latency_ms:
            await asyncio.sleep(self.plan.latency_ms / 1000)
        fail = self.rng.random() < self.plan.storage
        lose_answer = fail and self.rng.random() < 0.5
        if fail and not lose_answer:
            self.injected_before += 1
            raise ServiceRequestError("injected storage fault: request not sent")
        response = await super().send(request, **kwargs)
        if lose_answer:
            self.injected_after += 1
            raise ServiceResponseError("injected storage fault: response lost")
        return response


def fault_options(
    plan: FaultPlan | None, sdk_retries: int | None = None, use_env_settings: bool = True
) -> dict[str, Any]:
    """Client keyword arguments installing the faulty transport (none when nothing is
    injected), and ``retry_total`` when the SDK's own retries should be limited;
    ``use_env_settings`` goes to whichever transport the client gets."""
    options: dict[str, Any] = {"use_env_settings": use_env_settings}
    if plan is not None and (plan.storage > 0 or plan.latency_ms > 0):
        options["transport"] = FaultyTransport(plan, use_env_settings=use_env_settings)
    if sdk_retries is not None:
        options["retry_total"] = sdk_retries
    return options
