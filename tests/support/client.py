"""A small client of the statsaga HTTP API, as a game server or stats site would use it."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.support.matches import expected_totals, mismatches

TERMINAL = {"completed", "compensated", "stuck"}


class StatsClient:
    """Wraps httpx with the API's paths and keys."""

    def __init__(self, base_url: str, keys: dict[str, str]) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30.0)
        self.keys = keys

    def _auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def post_match(self, match: dict[str, Any], role: str = "ingest") -> httpx.Response:
        """POST /v1/matches."""
        return self.http.post("/v1/matches", json=match, headers=self._auth(role))

    def get_match(self, match_id: str) -> httpx.Response:
        """GET /v1/matches/{id}."""
        return self.http.get(f"/v1/matches/{match_id}", headers=self._auth("read"))

    def stats(self, player_id: str) -> httpx.Response:
        """GET /v1/players/{id}/stats."""
        return self.http.get(f"/v1/players/{player_id}/stats", headers=self._auth("read"))

    def history(
        self, player_id: str, limit: int = 25, continuation: str | None = None
    ) -> httpx.Response:
        """GET /v1/players/{id}/matches."""
        params: dict[str, Any] = {"limit": limit}
        if continuation:
            params["continuation"] = continuation
        return self.http.get(
            f"/v1/players/{player_id}/matches", params=params, headers=self._auth("read")
        )

    def wait_finished(self, match_ids: list[str], timeout_s: float = 60.0) -> dict[str, str]:
        """Poll until every match's saga is terminal; returns the states."""
        deadline = time.monotonic() + timeout_s
        states: dict[str, str] = {}
        pending = list(match_ids)
        while pending and time.monotonic() < deadline:
            for mid in list(pending):
                response = self.get_match(mid)
                if response.status_code == 200:
                    states[mid] = response.json()["state"]
                    if states[mid] in TERMINAL:
                        pending.remove(mid)
            if pending:
                time.sleep(0.2)
        return states


def record_problems(client: StatsClient, matches: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Players whose served record differs from the totals of ``matches``, with how."""
    problems = {}
    for player_id, totals in expected_totals(matches).items():
        response = client.stats(player_id)
        assert response.status_code == 200, response.text
        bad = mismatches(response.json(), totals)
        if bad:
            problems[player_id] = bad
    return problems
