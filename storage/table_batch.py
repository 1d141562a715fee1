"""``TableClient.submit_transaction`` without the ``email`` package: the same requests and
results, at a fraction of the client CPU (docs/performance.md, "The player write").

The SDK builds the multipart/mixed body of an entity group transaction with
``email.generator`` and parses the answer with ``email.parser`` (which compiles two regular
expressions per response, one per fresh boundary): together about three quarters of the
client's CPU per player write. Here the body is written and the answer split with bytes
operations, following the Table service's batch format; everything else stays the SDK's:
its ``TableBatchOperations`` builds the operations (entity serialisation, If-Match, keys),
the table client's own pipeline signs, retries and sends the request (so injected faults
and ``retry_total`` apply), and a failed operation becomes the SDK's own
``TableTransactionError`` through the SDK's own decoder. Tests pin the body byte for byte to
the SDK's and every batch finding of docs/azurite-batches.md to both paths.

It relies on private parts of azure-data-tables 12.7.0 / azure-core 1.41.0 (pinned): an
upgrade that moves them fails the unit tests of this module at import or in the body test.
"""

from __future__ import annotations

import http.client
import io
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from uuid import uuid4
from wsgiref.handlers import format_date_time

from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest
from azure.core.rest._http_response_impl_async import RestAsyncHttpClientTransportResponse
from azure.data.tables import RequestTooLargeError, TableTransactionError
from azure.data.tables import _error as sdk_error
from azure.data.tables._table_batch import TableBatchOperations
from azure.data.tables.aio import TableClient

# The SDK's own error decoding (untyped there), so that errors are the SDK's, field for field.
_decode_error: Callable[..., HttpResponseError] = sdk_error._decode_error
_validate_tablename_error: Callable[[HttpResponseError, str], None] = (
    sdk_error._validate_tablename_error
)
_sdk_part_type: Callable[..., Any] = RestAsyncHttpClientTransportResponse

CRLF = b"\r\n"
# http.client sends ``Content-Length: 0`` for these when there is no body (the SDK
# serialises each operation with it); a DELETE has neither.
_BODY_METHODS = {"PATCH", "POST", "PUT"}


class UnreadableBatchResponse(http.client.HTTPException):
    """A 202 answer to a batch that is not the multipart/mixed changeset it must be."""


def serialize_operation(request: HttpRequest) -> bytes:
    """One operation as ``application/http``, as the SDK's ``http.client`` trick writes it."""
    body = request.content
    if isinstance(body, str):
        body = body.encode("iso-8859-1")  # http.client's encoding of a str body
    if body is not None and not isinstance(body, bytes):
        raise TypeError(f"unexpected body of a batch operation: {type(body).__name__}")
    lines = [f"{request.method} {request.url} HTTP/1.1"]
    if "content-length" not in request.headers:
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        elif request.method in _BODY_METHODS:
            lines.append("Content-Length: 0")
    lines += [f"{name}: {value}" for name, value in request.headers.items()]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("iso-8859-1")
    return head + (body or b"")


def encode_changeset(
    requests: Sequence[HttpRequest], batch_boundary: str, changeset_boundary: str
) -> bytes:
    """The body of a ``$batch`` request: one batch part holding one changeset."""
    batch, changeset = batch_boundary.encode(), changeset_boundary.encode()
    out = [
        b"--" + batch + CRLF,
        b"Content-Type: multipart/mixed; boundary=" + changeset + CRLF + CRLF,
    ]
    for index, request in enumerate(requests):
        out += [
            b"--" + changeset + CRLF,
            b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n",
            f"Content-ID: {index}\r\n\r\n".encode(),
            serialize_operation(request) + CRLF,
        ]
    out.append(b"--" + changeset + b"--\r\n\r\n--" + batch + b"--\r\n")
    return b"".join(out)


def boundary_of(content_type: str) -> str:
    """The ``boundary`` parameter of a multipart Content-Type."""
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary" and value:
            return value.strip('"')
    raise UnreadableBatchResponse(f"no boundary in {content_type!r}")


def split_multipart(body: bytes, boundary: str) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart body as (headers with lower-case names, content)."""
    delimiter = b"--" + boundary.encode()
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise UnreadableBatchResponse(f"no closed multipart with boundary {boundary!r}")
    parts = []
    for chunk in chunks[1:-1]:
        # After the delimiter: optional padding and a line break; before the next one,
        # the line break that belongs to it (RFC 2046 §5.1.1).
        chunk = chunk[chunk.find(b"\n") + 1 :]
        chunk = chunk[:-2] if chunk.endswith(CRLF) else chunk.removesuffix(b"\n")
        if chunk.startswith(CRLF):  # a part without headers
            head, sep, content = b"", CRLF, chunk[2:]
        else:
            head, sep, content = chunk.partition(CRLF + CRLF)
        if not sep:
            raise UnreadableBatchResponse("a multipart part without a header block")
        headers = {}
        for line in head.split(CRLF) if head else ():
            name, _, value = line.decode("iso-8859-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        parts.append((headers, content))
    return parts


def decode_changeset(content_type: str, body: bytes) -> list[bytes]:
    """The raw HTTP responses of a ``$batch`` answer, one per operation (one in all when
    the service reports a failed changeset)."""
    responses: list[bytes] = []
    for headers, content in split_multipart(body, boundary_of(content_type)):
        kind = headers.get("content-type", "")
        if kind.startswith("multipart/mixed"):
            responses += decode_changeset(kind, content)
        elif kind.startswith("application/http"):
            responses.append(content)
        else:
            raise UnreadableBatchResponse(f"unexpected batch part of type {kind!r}")
    return responses


def status_and_etag(raw: bytes) -> tuple[int, str | None]:
    """The status code and ETag header of one raw HTTP response."""
    head = raw.split(CRLF + CRLF, 1)[0].decode("iso-8859-1").split("\r\n")
    status = head[0].split(" ", 2)
    if len(status) < 2 or not status[0].startswith("HTTP/") or not status[1].isdigit():
        raise UnreadableBatchResponse(f"bad status line in a batch part: {head[0]!r}")
    etag = None
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "etag":
            etag = value.strip()
    return int(status[1]), etag


class _BytesSocket:
    """Enough of a socket for ``http.client.HTTPResponse`` to read bytes."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, *_: Any) -> io.BytesIO:
        return io.BytesIO(self._data)


async def _sdk_part(raw: bytes, request: HttpRequest) -> Any:
    """A batch part as the SDK's parser makes it (for its error decoder)."""
    response = http.client.HTTPResponse(_BytesSocket(raw), method=request.method)  # type: ignore[arg-type]
    response.begin()
    part = _sdk_part_type(request=request, internal_response=response)
    await part.read()
    return part


async def submit_transaction(
    table: TableClient, operations: Iterable[tuple[Any, ...]]
) -> list[Mapping[str, Any]]:
    """What ``table.submit_transaction(operations)`` returns or raises, faster."""
    # The SDK's own attributes of the client, read as its submit_transaction reads them.
    batch = TableBatchOperations(
        config=table._client._config,
        endpoint=f"{table.scheme}://{table._primary_hostname}",
        table_name=table.table_name,
        is_cosmos_endpoint=table._cosmos_endpoint,
    )
    for operation in operations:
        batch.add_operation(operation)
    if not batch.requests:  # a corner (400 from the service) the SDK handles its own way
        return await table.submit_transaction([])
    now = format_date_time(time.time())
    for sub in batch.requests:  # what the SDK's StorageHeadersPolicy adds to each part
        sub.headers["x-ms-date"] = now
        sub.headers["Date"] = now
    batch_boundary, changeset_boundary = f"batch_{uuid4()}", f"changeset_{uuid4()}"
    request = HttpRequest(
        "POST",
        f"{table.scheme}://{table._primary_hostname}/$batch",
        headers={
            "x-ms-version": table.api_version,
            "DataServiceVersion": "3.0",
            "MaxDataServiceVersion": "3.0;NetFx",
            "Content-Type": f"multipart/mixed; boundary={batch_boundary}",
            "Accept": "application/json",
        },
        content=encode_changeset(batch.requests, batch_boundary, changeset_boundary),
    )
    response = await table._client.send_request(request, stream=True)
    await response.read()
    if response.status_code == 413:
        message = "The transaction request was too large"
        raise _decode_error(response, error_message=message, error_type=RequestTooLargeError)
    if response.status_code != 202:
        decoded = _decode_error(response)
        _validate_tablename_error(decoded, table.table_name)
        raise decoded
    parts = decode_changeset(response.headers.get("Content-Type", ""), response.content)
    results: list[Mapping[str, Any]] = []
    for index, raw in enumerate(parts):
        status, etag = status_and_etag(raw)
        if not 200 <= status < 300:
            return await _raise_failed(table, response, raw, batch.requests, index, status)
        results.append({"etag": etag} if etag is not None else {})
    return results


async def _raise_failed(
    table: TableClient,
    response: Any,
    raw: bytes,
    requests: Sequence[HttpRequest],
    index: int,
    status: int,
) -> list[Mapping[str, Any]]:
    """Raise what the SDK raises for the first failed part (a ``TableTransactionError``
    whose ``index`` comes from the service's message)."""
    if status == 413:
        message = "The transaction request was too large"
        raise _decode_error(response, error_message=message, error_type=RequestTooLargeError)
    # The SDK pairs the n-th part with the n-th request, whichever operation failed.
    request = requests[index] if index < len(requests) else response.request
    decoded = _decode_error(
        response=await _sdk_part(raw, request), error_type=TableTransactionError
    )
    _validate_tablename_error(decoded, table.table_name)
    raise decoded
