"""Azure SDK exceptions translated to domain errors at the adapter boundary: the core
never sees an Azure type. ``EntityExists`` stays inside ``storage/``: adapters turn it
into an outcome (``already``) or a ``ConcurrencyConflict``."""

from __future__ import annotations

import asyncio
import http.client
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from app.domain.errors import (
    ConcurrencyConflict,
    DomainError,
    NotFound,
    PermanentError,
    StorageUnavailable,
)

_CONDITION_CODES = {"UpdateConditionNotSatisfied", "ConditionNotMet"}
_EXISTS_CODES = {"EntityAlreadyExists", "BlobAlreadyExists", "ContainerAlreadyExists"}


class EntityExists(DomainError):
    """An insert hit an existing row (409); ``index`` is the failing batch operation."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


def error_code(error: HttpResponseError) -> str:
    """The service's error code as a plain string ('' when the response had none)."""
    code = getattr(error, "error_code", None)
    return str(getattr(code, "value", code) or "")


def translate(error: BaseException) -> DomainError | None:
    """The domain error for an SDK/transport exception, or ``None`` if it is not one."""
    if isinstance(error, ResourceModifiedError):
        return ConcurrencyConflict(str(error))
    if isinstance(error, ResourceNotFoundError):
        return NotFound(str(error))
    if isinstance(error, ServiceRequestError | ServiceResponseError):
        return StorageUnavailable(str(error))
    if isinstance(error, HttpResponseError):
        status, code = error.status_code or 0, error_code(error)
        # Only TableTransactionError carries ``index``; a plain 409 has none.
        index = getattr(error, "index", None)
        if isinstance(error, ResourceExistsError) or code in _EXISTS_CODES:
            return EntityExists(str(error), index)
        if status == 412 or code in _CONDITION_CODES:
            return ConcurrencyConflict(str(error))
        if status == 404:
            return NotFound(str(error))
        if status in (408, 429) or status >= 500:
            return StorageUnavailable(str(error))
        return PermanentError(f"storage refused the request ({status} {code}): {error}")
    if isinstance(error, AzureError):
        return PermanentError(f"storage error: {error}")
    if isinstance(error, aiohttp.ClientError | TimeoutError | asyncio.TimeoutError | OSError):
        return StorageUnavailable(f"storage unreachable: {error!r}")
    if isinstance(error, http.client.HTTPException):
        # A batch response neither the SDK nor table_batch can read (Azurite answers a
        # >100-op batch so).
        return PermanentError(f"unreadable storage response: {error!r}")
    return None


@contextmanager
def map_azure_errors() -> Iterator[None]:
    """Re-raise Azure/transport exceptions raised inside the block as domain errors."""
    try:
        yield
    except DomainError:
        raise
    except Exception as error:
        mapped = translate(error)
        if mapped is None:
            raise
        raise mapped from error
