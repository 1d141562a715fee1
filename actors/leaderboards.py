"""``RayLeaderboards``: the ``Leaderboards`` port over the board pool, routed as the
other pools' callers route (``actors/routing.py``): by the newest placement this process
knows, following ``Moved`` and refreshing the placement when a member has gone."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ray.exceptions import RayError, RayTaskError

from actors.routing import MAX_ROUNDS, MemberGone, PlacementCache, PlacementUnsettled, PoolRouter
from app.application.ports import BoardPage
from app.domain.errors import DomainError, PoolUnavailable
from app.domain.leaderboards import BoardUpdate, Standing
from app.domain.placement import Moved, Placement


class RayLeaderboards:
    """Each call goes to the mode's owner; offers are grouped by owner, one call per
    member. An offer that fails raises (``PoolUnavailable``), so that its sender (the
    grains' ``BoardFeed``) keeps the players marked and offers them again later."""

    def __init__(self, placements: PlacementCache) -> None:
        self._router = PoolRouter("board", placements)

    async def offer(self, updates: Sequence[BoardUpdate]) -> None:
        """Send each owner its updates, re-routing those a member answers ``Moved``."""
        placements = self._router.placements
        pending = list(updates)
        for _ in range(MAX_ROUNDS):
            placement = await placements.get()
            groups: dict[int, list[BoardUpdate]] = {}
            for update in pending:
                groups.setdefault(placement.owner("board", update.mode), []).append(update)
            answers = await asyncio.gather(
                *(self._router.call(i, _offer(batch, placement)) for i, batch in groups.items()),
                return_exceptions=True,
            )
            pending, failure = [], None
            for batch, answer in zip(groups.values(), answers, strict=True):
                if isinstance(answer, Moved):
                    placements.adopt(answer.placement)
                    pending += batch
                elif isinstance(answer, MemberGone):
                    pending += batch
                elif isinstance(answer, BaseException):
                    failure = answer
            if failure is not None:  # offering again is harmless: the values are absolute
                raise PoolUnavailable(f"a board member failed an offer: {failure}") from failure
            if not pending:
                return
            if any(isinstance(a, MemberGone) for a in answers):
                await placements.refresh()
        raise PlacementUnsettled("board pool: offers could not be routed (resizing)")

    async def page(
        self, mode: str, stat: str, limit: int, continuation: str | None = None
    ) -> BoardPage:
        """One page of one board, from the mode's owner."""
        page: BoardPage = await self._call(
            mode,
            lambda actor, placement: actor.page.remote(mode, stat, limit, continuation, placement),
        )
        return page

    async def standing(self, mode: str, player_id: str) -> dict[str, Standing]:
        """A player's standing on the mode's boards, from the mode's owner."""
        found: dict[str, Standing] = await self._call(
            mode, lambda actor, placement: actor.standing.remote(mode, player_id, placement)
        )
        return found

    async def _call(self, mode: str, send: Callable[[Any, Placement], Awaitable[Any]]) -> Any:
        try:
            return await self._router.call_for(mode, send)
        except RayTaskError as exc:
            cause = exc.cause
            if isinstance(cause, DomainError | ValueError):
                raise cause from None  # the host's refusal (a bad token), not a failure
            raise PoolUnavailable(f"the board member of {mode!r} failed: {exc}") from exc
        except RayError as exc:
            raise PoolUnavailable(f"the board member of {mode!r} is unavailable: {exc}") from exc

    async def describe(self) -> list[dict[str, Any]]:
        """Each board member's stats (operators see them through the pool directory)."""
        placement = await self._router.placements.get()
        calls = [
            self._router.call(i, lambda actor: actor.stats.remote()) for i in range(placement.board)
        ]
        try:
            return list(await asyncio.gather(*calls))
        except (RayError, MemberGone) as exc:
            raise PoolUnavailable(f"the board members failed: {exc}") from exc


def _offer(
    batch: list[BoardUpdate], placement: Placement
) -> Callable[[Any], Awaitable[Moved | None]]:
    """The offer call a member is sent (its arguments bound here, not in a loop)."""
    return lambda actor: actor.offer.remote(batch, placement)
