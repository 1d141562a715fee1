"""Web pages for people: a player's page, a match's page, a mode's leaderboard and the
operator console, HTML shells whose scripts read the JSON API (so the pages hold no data
and need no key; the API checks keys)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from app.domain.ids import ID_RULE, is_valid_id

WEB = Path(__file__).resolve().parent.parent / "web"
# Scripts and styles only from this app, nothing inline: data shown on a page can never
# run as code there, whatever a player or match id holds.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


# One shell for every page: only its title (and heading) and its script differ.
SHELL = (WEB / "pages" / "shell.html").read_text(encoding="utf-8")


def _shell(script: str, title: str) -> Response:
    return HTMLResponse(
        SHELL.replace("{script}", script).replace("{title}", title), headers=HEADERS
    )


def _page(kind: str, value: str, named: str = "") -> Response:
    """The shell of a ``kind`` page, or a 404 page when ``value`` (a ``named`` id, the
    ``kind``'s by default) breaks the id rule (the JSON API would refuse it too, so there
    is nothing to show)."""
    if not is_valid_id(value):
        body = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<title>Not found - statsaga</title><link rel="icon" href="data:,">'
            '<link rel="stylesheet" href="/static/app.css"></head><body><main id="main">'
            f"<h1>Not found</h1><p>A {named or kind} id is {ID_RULE}.</p></main></body></html>"
        )
        return HTMLResponse(body, status_code=404, headers=HEADERS)
    return _shell(kind, kind.capitalize())


@router.get("/players/{player_id}")
async def player_page(player_id: str) -> Response:
    """A player's service record and match history."""
    return _page("player", player_id)


@router.get("/matches/{match_id}")
async def match_page(match_id: str) -> Response:
    """A match's teams, lines and saga timeline."""
    return _page("match", match_id)


@router.get("/leaderboards/{mode}")
async def leaderboard_page(mode: str) -> Response:
    """A mode's leaderboard by one stat (``?stat=rating|kills|wins|kd``), paged."""
    return _page("leaderboard", mode, named="mode")


@router.get("/ops")
async def ops_page() -> Response:
    """The operator console (its API calls need the admin key)."""
    return _shell("ops", "Operator console")


def install(app: FastAPI) -> None:
    """Serve the pages and their static files on ``app``."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=WEB / "static"), name="static")
