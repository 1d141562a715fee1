"""FastAPI dependencies: the services of this app, API keys and roles, the rate limits
(ingest and reads per key, failed authentications per client address)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.application.services import StatsService
from app.domain.ratelimit import RateLimiter, retry_after_header
from app.settings import Role

_GRANTS: Mapping[Role, frozenset[Role]] = {
    Role.ADMIN: frozenset(Role),
    Role.INGEST: frozenset({Role.INGEST}),
    Role.READ: frozenset({Role.READ}),
}
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key with its role: `Authorization: Bearer <key>`.",
)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the key's role and a fingerprint that names the key in limits and
    logs without revealing it (``None`` for an anonymous public read)."""

    role: Role | None
    fingerprint: str | None


ANONYMOUS = Caller(None, None)


def get_service(request: Request) -> StatsService:
    """The ``StatsService`` the app was created with."""
    service: StatsService = request.app.state.service
    return service


ServiceDep = Annotated[StatsService, Depends(get_service)]


def fingerprint(key: str) -> str:
    """A short, one-way name of a key."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _role_of(presented: str, keys: Mapping[str, Role]) -> Role | None:
    # Compare against every key in constant time, so timing tells nothing about which
    # prefix of which key matched.
    found: Role | None = None
    for key, role in keys.items():
        if hmac.compare_digest(presented.encode(), key.encode()):
            found = role
    return found


def require(role: Role) -> Callable[..., Awaitable[Caller]]:
    """A dependency that lets a request through only with a key granting ``role`` (reads
    without a key too when the app's reads are public; a key sent is checked anyway)."""

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Caller:
        header = request.headers.get("authorization")
        if credentials is None or not credentials.credentials.strip():
            if header is None and role is Role.READ and request.app.state.public_reads:
                return ANONYMOUS
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing API key: send 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        # An address that sent too many unknown keys is refused whatever it sends now: were
        # a right key let through, the 429s would tell the guesser which guess was right.
        failures: RateLimiter = request.app.state.auth_failures
        address = client_address(request)
        wait_s = failures.wait(address, time.monotonic())
        if wait_s > 0:
            raise _too_many(
                f"too many unknown API keys from this address; try again in {wait_s:.0f}s",
                wait_s,
            )
        presented = credentials.credentials.strip()
        granted = _role_of(presented, request.app.state.api_keys)
        if granted is None:
            failures.acquire(address, time.monotonic())
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "unknown API key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if role not in _GRANTS[granted]:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"this key has role {granted.value!r}; needs {role.value!r}",
            )
        return Caller(granted, fingerprint(presented))

    return check


def client_address(request: Request) -> str:
    """The address the request came from, as the HTTP server saw it (behind a proxy, the
    proxy's, unless the server is told to trust its forwarding headers)."""
    return request.client.host if request.client else "unknown"


def _too_many(detail: str, wait_s: float) -> HTTPException:
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        detail,
        headers={"Retry-After": retry_after_header(wait_s)},
    )


async def ingest_caller(
    request: Request, caller: Annotated[Caller, Depends(require(Role.INGEST))]
) -> Caller:
    """An ingest key within its rate limit: 429 with ``Retry-After`` beyond it."""
    limiter: RateLimiter = request.app.state.ingest_limiter
    wait_s = limiter.acquire(caller.fingerprint or "", time.monotonic())
    if wait_s > 0:
        raise _too_many(
            f"this key may post {limiter.limit.rate:g} matches a second "
            f"(bursts of {limiter.limit.burst}); try again in {wait_s:.2f}s",
            wait_s,
        )
    return caller


async def read_caller(
    request: Request, caller: Annotated[Caller, Depends(require(Role.READ))]
) -> Caller:
    """A reader within its rate limit (per key; per client address for a public read
    without one): 429 with ``Retry-After`` beyond it."""
    limiter: RateLimiter = request.app.state.read_limiter
    who = caller.fingerprint or f"address {client_address(request)}"
    wait_s = limiter.acquire(who, time.monotonic())
    if wait_s > 0:
        whom = "key" if caller.fingerprint else "address"
        raise _too_many(
            f"this {whom} may read {limiter.limit.rate:g} times a second "
            f"(bursts of {limiter.limit.burst}); try again in {wait_s:.2f}s",
            wait_s,
        )
    return caller
