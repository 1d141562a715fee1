"""FastAPI dependencies: the services of this app and the API-key check."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status

from app.services import StatsService
from app.settings import Role

_GRANTS: Mapping[Role, frozenset[Role]] = {
    Role.ADMIN: frozenset(Role),
    Role.INGEST: frozenset({Role.INGEST}),
    Role.READ: frozenset({Role.READ}),
}


def get_service(request: Request) -> StatsService:
    """The ``StatsService`` the app was created with."""
    service: StatsService = request.app.state.service
    return service


ServiceDep = Annotated[StatsService, Depends(get_service)]


def _role_of(presented: str, keys: Mapping[str, Role]) -> Role | None:
    # Compare against every key in constant time, so timing tells nothing about which
    # prefix of which key matched.
    found: Role | None = None
    for key, role in keys.items():
        if hmac.compare_digest(presented.encode(), key.encode()):
            found = role
    return found


def require(role: Role) -> Callable[[Request], Any]:
    """A dependency that lets a request through only with a key granting ``role``."""

    def check(request: Request) -> Role:
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing API key: send 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        granted = _role_of(presented.strip(), request.app.state.api_keys)
        if granted is None:
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
        return granted

    return check
