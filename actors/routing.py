"""How a process reaches the members of a pool: by the newest placement it knows (fetched
from the pool directory the first time and whenever a member has gone), re-routing when a
member answers ``Moved``, and retrying a member that is restarting.

Every call here may run twice (a member dies after its work, before its answer): that is
safe because every player step and every saga step is idempotent."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayError
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from actors.config import DIRECTORY_NAME, member_name
from app.domain.errors import PoolUnavailable, TransientError
from app.domain.placement import Moved, Placement, PoolName

log = logging.getLogger(__name__)
T = TypeVar("T")
# Rounds of re-routing one call may take (each follows a newer placement or a refresh);
# more means the pools are being resized faster than a call can be routed.
MAX_ROUNDS = 4


def while_restarting(what: str, attempts: int = 4, backoff_s: float = 0.25) -> AsyncRetrying:
    """Retries of a call whose actor is restarting (Ray answers ``ActorUnavailableError``
    until the new process is up, ~1.5 s on one node)."""
    return AsyncRetrying(
        retry=retry_if_exception_type(ActorUnavailableError),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential_jitter(multiplier=backoff_s, max=2.0, jitter=backoff_s),
        reraise=True,
        before_sleep=lambda state: log.warning(
            "%s is unavailable (%s); retrying", what, state.outcome and state.outcome.exception()
        ),
    )


class MemberGone(Exception):
    """The member does not exist (the pool shrank, or it died for good): route again."""


class PlacementUnsettled(TransientError):
    """The placement kept changing under a call; the caller retries it later."""


def connected() -> None:
    """``PoolUnavailable`` unless this process has joined Ray."""
    if not ray.is_initialized():
        raise PoolUnavailable("this process is not connected to the Ray cluster")


def pool_directory(namespace: str) -> Any:
    """The pool directory's handle (``PoolUnavailable`` when there is none yet)."""
    connected()
    try:
        return ray.get_actor(DIRECTORY_NAME, namespace=namespace)
    except ValueError as exc:
        raise PoolUnavailable("the pools are not created yet (no worker has started)") from exc


class PlacementCache:
    """The newest placement this process has seen."""

    def __init__(self, namespace: str, initial: Placement | None = None) -> None:
        self.namespace = namespace
        self._current = initial
        self._refreshing: asyncio.Lock | None = None

    @property
    def current(self) -> Placement | None:
        """What this process routes by now (``None`` before the first fetch)."""
        return self._current

    def adopt(self, placement: Placement) -> None:
        """Keep ``placement`` if it is newer than ours."""
        if placement.newer(self._current):
            self._current = placement

    async def get(self) -> Placement:
        """The current placement, fetched from the directory the first time."""
        return self._current or await self.refresh()

    async def refresh(self) -> Placement:
        """Ask the directory (``PoolUnavailable`` when Ray or the pools are not there)."""
        self._refreshing = self._refreshing or asyncio.Lock()
        seen = self._current
        async with self._refreshing:
            if self._current is not seen and self._current is not None:
                return self._current  # someone refreshed while we waited
            directory = pool_directory(self.namespace)
            try:
                async for attempt in while_restarting("the pool directory"):
                    with attempt:
                        self.adopt(await directory.placement.remote())
            except RayError as exc:  # it failed, or has no placement yet
                raise PoolUnavailable(f"the pool directory cannot tell: {exc}") from exc
        assert self._current is not None
        return self._current


class PoolRouter:
    """Calls to the members of one pool."""

    def __init__(
        self,
        pool: PoolName,
        placements: PlacementCache,
        attempts: int = 4,
        backoff_s: float = 0.25,
    ) -> None:
        self.pool = pool
        self.placements = placements
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._handles: dict[int, Any] = {}

    def handle(self, index: int) -> Any:
        """Member ``index``'s actor handle (``MemberGone`` when there is none)."""
        handle = self._handles.get(index)
        if handle is None:
            connected()
            try:
                handle = ray.get_actor(member_name(self.pool, index), self.placements.namespace)
            except ValueError as exc:
                raise MemberGone(f"{self.pool} member {index} does not exist") from exc
            self._handles[index] = handle
        return handle

    async def call(self, index: int, send: Callable[[Any], Awaitable[T]]) -> T:
        """``send`` to member ``index`` the call it makes of the member's handle (say
        ``lambda shard: shard.update.remote(batch, placement)``), retrying while the member
        restarts. Raises ``MemberGone``, or ``ActorUnavailableError`` when it stayed
        unavailable through the retries."""
        retrying = while_restarting(f"{self.pool} member {index}", self._attempts, self._backoff_s)
        try:
            async for attempt in retrying:
                with attempt:
                    return await send(self.handle(index))
        except ActorDiedError as exc:  # killed for good (a shrink), or out of restarts
            self._handles.pop(index, None)
            raise MemberGone(f"{self.pool} member {index} died: {exc}") from exc
        raise AssertionError("unreachable: tenacity reraises")

    async def call_for(self, key: str, send: Callable[[Any, Placement], Awaitable[T | Moved]]) -> T:
        """Call the member that owns ``key``: ``send`` gets its handle and the placement the
        call is routed by (for the member to check), and ``Moved`` answers are followed,
        the placement refreshed when a member has gone."""
        for _ in range(MAX_ROUNDS):
            placement = await self.placements.get()
            index = placement.owner(self.pool, key)
            try:
                answer = await self.call(index, _routed_by(send, placement))
            except MemberGone:
                await self.placements.refresh()
                continue
            if isinstance(answer, Moved):
                self.placements.adopt(answer.placement)
                continue
            return answer
        raise PlacementUnsettled(f"{self.pool} pool: {key!r} could not be routed (resizing)")


def _routed_by(
    send: Callable[[Any, Placement], Awaitable[T]], placement: Placement
) -> Callable[[Any], Awaitable[T]]:
    """``send`` with the placement its call is routed by (bound here, not in the loop)."""
    return lambda member: send(member, placement)
