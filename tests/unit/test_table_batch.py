"""``storage.table_batch`` writes the SDK's body byte for byte and reads the service's
answers (bodies recorded from Azurite 3.35.0); what it cannot read is a clear error."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core import MatchConditions
from azure.core.rest import HttpRequest
from azure.data.tables import UpdateMode
from azure.data.tables._table_batch import TableBatchOperations
from azure.data.tables.aio import TableClient

from app.dev_endpoints import connection_string
from app.domain.errors import PermanentError
from app.domain.stats import sum_deltas
from storage import entities as ent
from storage.azure_errors import map_azure_errors
from storage.table_batch import (
    UnreadableBatchResponse,
    decode_changeset,
    encode_changeset,
    status_and_etag,
)
from tests.contract.test_player_store import delta

CS = "changesetresponse_735ff891"
SUCCESS = (
    b"--batchresponse_ac77\r\n"
    b"Content-Type: multipart/mixed; boundary=" + CS.encode() + b"\r\n\r\n"
    b"--" + CS.encode() + b"\r\n"
    b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    b"HTTP/1.1 201 Created\r\nX-Content-Type-Options: nosniff\r\n"
    b"Location: http://127.0.0.1:1/devstoreaccount1/cap(PartitionKey='p',RowKey='m%3A1')\r\n"
    b"ETag: W/\"datetime'2026-11-23T14%3A37%3A25.3592382Z'\"\r\n\r\n\r\n"
    b"--" + CS.encode() + b"\r\n"
    b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    b"HTTP/1.1 204 No Content\r\nDataServiceVersion: 3.0;\r\n"
    b"ETag: W/\"datetime'2026-11-23T14%3A37%3A25.3592397Z'\"\r\n\r\n\r\n"
    b"--" + CS.encode() + b"--\r\n--batchresponse_ac77--\r\n"
)
CONFLICT = (
    b"HTTP/1.1 409 Conflict\r\nContent-ID: 2\r\nDataServiceVersion: 3.0;\r\n"
    b"Content-Type: application/json;odata=minimalmetadata;charset=utf-8\r\n\r\n"
    b'{"odata.error":{"code":"EntityAlreadyExists","message":{"lang":"en-US",'
    b'"value":"1:The specified entity already exists."}}}'
)
FAILED = (
    b"--batchresponse_a17f\r\nContent-Type: multipart/mixed; boundary=" + CS.encode() + b"\r\n\r\n"
    b"--" + CS.encode() + b"\r\n"
    b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    + CONFLICT
    + b"\r\n--"
    + CS.encode()
    + b"--\r\n--batchresponse_a17f--\r\n"
)


def operations() -> list[HttpRequest]:
    """Every kind of operation the adapters send, with a real record, as the SDK builds
    them (and the date headers its per-part policy adds, fixed)."""
    table = TableClient.from_connection_string(connection_string(1, 2), "players")
    batch = TableBatchOperations(
        config=table._client._config,
        endpoint=f"{table.scheme}://{table._primary_hostname}",
        table_name=table.table_name,
    )
    pid = "p1"
    record = sum_deltas(pid, [delta(pid, n) for n in range(1, 30)])
    guard: dict[str, Any] = {
        "mode": UpdateMode.REPLACE,
        "etag": "W/\"datetime'2026-01-01T00%3A00%3A00.0000000Z'\"",
        "match_condition": MatchConditions.IfNotModified,
    }
    for op in [
        ("create", ent.marker_entity(delta(pid, 1), False)),
        ("update", ent.record_entity(record), guard),
        ("update", {"PartitionKey": pid, "RowKey": "m:2", "void": True}, {"mode": "merge"}),
        ("upsert", {"PartitionKey": pid, "RowKey": "p:x", "n": 1.5, "ok": True, "é": "ü"}),
        ("delete", {"PartitionKey": pid, "RowKey": "gone"}),
    ]:
        batch.add_operation(op)
    for request in batch.requests:
        request.headers["x-ms-date"] = request.headers["Date"] = "Mon, 23 Nov 2026 14:37:25 GMT"
    return batch.requests


def test_the_body_is_the_sdks_byte_for_byte() -> None:
    changeset = HttpRequest("POST", "")
    changeset.set_multipart_mixed(*operations(), policies=[], boundary="changeset_c")
    sdk = HttpRequest("POST", "http://127.0.0.1:2/$batch")
    sdk.set_multipart_mixed(changeset, policies=[], enforce_https=False, boundary="batch_b")
    sdk.prepare_multipart_body()
    ours = encode_changeset(operations(), "batch_b", "changeset_c")
    assert ours == sdk.content
    assert sdk.headers["Content-Type"] == "multipart/mixed; boundary=batch_b"


def test_a_success_gives_one_response_per_operation_in_order() -> None:
    parts = decode_changeset("multipart/mixed; boundary=batchresponse_ac77", SUCCESS)
    assert [status_and_etag(p) for p in parts] == [
        (201, "W/\"datetime'2026-11-23T14%3A37%3A25.3592382Z'\""),
        (204, "W/\"datetime'2026-11-23T14%3A37%3A25.3592397Z'\""),
    ]


def test_a_failed_changeset_is_one_response_with_the_error() -> None:
    parts = decode_changeset('multipart/mixed; boundary="batchresponse_a17f"', FAILED)
    assert parts == [CONFLICT]
    assert status_and_etag(parts[0]) == (409, None)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/mixed", SUCCESS),  # no boundary
        ("multipart/mixed; boundary=other", SUCCESS),  # not this body's boundary
        ("multipart/mixed; boundary=batchresponse_ac77", SUCCESS[:-30]),  # cut short
        ("multipart/mixed; boundary=x", b"--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x--"),
        ("multipart/mixed; boundary=x", b"--x\r\nno header block\r\n--x--"),
        ("multipart/mixed; boundary=x", b"--x\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n\r\n--x--"),
    ],
)
def test_an_unreadable_answer_is_a_permanent_error(content_type: str, body: bytes) -> None:
    with pytest.raises(PermanentError, match="unreadable storage response"), map_azure_errors():
        decode_changeset(content_type, body)


def test_a_part_without_a_status_line_is_unreadable() -> None:
    with pytest.raises(UnreadableBatchResponse, match="bad status line"):
        status_and_etag(b"changesetresponse_1\r\nContent-Type: x\r\n\r\n")
