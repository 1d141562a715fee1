"""What Azurite does with entity group transactions, measured with the raw SDK, and held
for ``storage.table_batch.submit_transaction`` (what the adapters send) too.

``docs/azurite-batches.md`` explains each finding; the adapters rely on them, so a newer
Azurite or SDK that behaves otherwise, or a ``table_batch`` that parts from the SDK, fails
here first."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from app.domain.errors import ConcurrencyConflict
from devstack.processes import Azurite
from storage import table_batch
from storage.azure_errors import EntityExists, map_azure_errors

pytestmark = pytest.mark.azurite
PK = "p"
Submit = Callable[[TableClient, list[tuple[Any, ...]]], Awaitable[list[Mapping[str, Any]]]]


async def sdk_submit(table: TableClient, ops: list[tuple[Any, ...]]) -> list[Mapping[str, Any]]:
    return await table.submit_transaction(ops)


@pytest.fixture(
    name="submit", params=[sdk_submit, table_batch.submit_transaction], ids=["sdk", "table_batch"]
)
def submit_fixture(request: pytest.FixtureRequest) -> Submit:
    fn: Submit = request.param
    return fn


@pytest.fixture
async def table(azurite: Azurite, unique: str) -> AsyncIterator[TableClient]:
    async with TableServiceClient.from_connection_string(azurite.connection_string) as svc:
        client = await svc.create_table(f"batch{unique}")
        async with client:
            yield client


def create(rk: str, **props: Any) -> tuple[Any, ...]:
    return ("create", {"PartitionKey": PK, "RowKey": rk, **props})


def guarded_update(rk: str, etag: str, **props: Any) -> tuple[Any, ...]:
    guard = {
        "mode": UpdateMode.REPLACE,
        "etag": etag,
        "match_condition": MatchConditions.IfNotModified,
    }
    return ("update", {"PartitionKey": PK, "RowKey": rk, **props}, guard)


async def exists(table: TableClient, rk: str) -> bool:
    return [e async for e in table.query_entities("RowKey eq @rk", parameters={"rk": rk})] != []


async def stale_record(table: TableClient) -> str:
    """Create ``record`` and change it once: returns the etag it had before the change."""
    await table.create_entity({"PartitionKey": PK, "RowKey": "record", "n": 1})
    stale: str = (await table.get_entity(PK, "record")).metadata["etag"]
    await table.update_entity({"PartitionKey": PK, "RowKey": "record", "n": 2})
    return stale


async def test_result_has_one_etag_per_operation(table: TableClient, submit: Submit) -> None:
    result = await submit(table, [create("m:1"), create("record", n=1)])
    assert len(result) == 2 and all(set(r) == {"etag"} for r in result)
    stored = await table.get_entity(PK, "record")
    # Each operation's own etag, in order: the record's is the last. (Azurite's etags are
    # timestamps, so two rows of one batch may share one: a CI run saw it.)
    assert result[1]["etag"] == stored.metadata["etag"]
    assert result[0]["etag"] == (await table.get_entity(PK, "m:1")).metadata["etag"]


async def test_a_batch_is_all_or_nothing(table: TableClient, submit: Submit) -> None:
    await table.create_entity({"PartitionKey": PK, "RowKey": "m:old"})
    with pytest.raises(TableTransactionError) as caught:
        await submit(table, [create("m:new"), create("m:old")])
    error = caught.value
    assert (error.status_code, error.error_code, error.index) == (409, "EntityAlreadyExists", 1)
    assert error.message.startswith("1:")  # the index is in the message, not defaulted
    assert not await exists(table, "m:new")


async def test_stale_if_match_fails_the_whole_batch_with_412(
    table: TableClient, submit: Submit
) -> None:
    stale = await stale_record(table)
    with pytest.raises(TableTransactionError) as caught:
        await submit(table, [create("m:new"), guarded_update("record", stale, n=3)])
    error = caught.value
    assert (error.status_code, error.error_code, error.index) == (
        412,
        "UpdateConditionNotSatisfied",
        1,
    )
    assert not await exists(table, "m:new")
    assert (await table.get_entity(PK, "record"))["n"] == 2


async def test_first_failing_operation_in_batch_order_wins(
    table: TableClient, submit: Submit
) -> None:
    stale = await stale_record(table)
    await table.create_entity({"PartitionKey": PK, "RowKey": "m:old"})
    with pytest.raises(TableTransactionError) as marker_first:
        await submit(table, [create("m:old"), guarded_update("record", stale, n=3)])
    assert (marker_first.value.status_code, marker_first.value.index) == (409, 0)
    with pytest.raises(TableTransactionError) as record_first:
        await submit(table, [guarded_update("record", stale, n=3), create("m:old")])
    assert (record_first.value.status_code, record_first.value.index) == (412, 0)


async def test_merge_of_a_missing_row_in_a_batch_is_404(table: TableClient, submit: Submit) -> None:
    merge = ("update", {"PartitionKey": PK, "RowKey": "ghost", "void": True}, {"mode": "merge"})
    with pytest.raises(TableTransactionError) as caught:
        await submit(table, [create("m:new"), merge])
    assert (caught.value.status_code, caught.value.error_code) == (404, "ResourceNotFound")
    assert not await exists(table, "m:new")


async def test_outside_a_batch_the_sdk_raises_typed_errors(table: TableClient) -> None:
    stale = await stale_record(table)
    with pytest.raises(ResourceExistsError):
        await table.create_entity({"PartitionKey": PK, "RowKey": "record"})
    with pytest.raises(ResourceModifiedError):
        await table.update_entity(
            {"PartitionKey": PK, "RowKey": "record"},
            etag=stale,
            match_condition=MatchConditions.IfNotModified,
        )


async def test_map_azure_errors_translates_batch_failures(
    table: TableClient, submit: Submit
) -> None:
    stale = await stale_record(table)
    await table.create_entity({"PartitionKey": PK, "RowKey": "m:old"})
    with pytest.raises(EntityExists) as caught, map_azure_errors():
        await submit(table, [create("m:new"), create("m:old")])
    assert caught.value.index == 1
    with pytest.raises(ConcurrencyConflict), map_azure_errors():
        await submit(table, [create("m:new"), guarded_update("record", stale)])


async def test_over_100_operations_fails_and_writes_nothing(
    table: TableClient, submit: Submit
) -> None:
    # Azurite answers with a response the SDK cannot parse (http.client.BadStatusLine);
    # the adapters never send more than 100 operations (they raise ValueError first).
    with pytest.raises(Exception):  # noqa: B017 - the exact type is Azurite's accident
        await submit(table, [create(f"m:{i:03d}") for i in range(101)])
    assert not await exists(table, "m:000")


def comparable(error: BaseException) -> tuple[Any, ...]:
    """What callers can read from a batch error, without the per-request id and time."""
    assert isinstance(error, TableTransactionError)
    kept = [ln for ln in str(error).splitlines() if not ln.startswith(("RequestId:", "Time:"))]
    first_line = error.message.splitlines()[0]
    return (type(error), error.status_code, error.error_code, error.index, first_line, kept[0])


async def test_table_batch_raises_what_the_sdk_raises(table: TableClient) -> None:
    stale = await stale_record(table)
    await table.create_entity({"PartitionKey": PK, "RowKey": "m:old"})
    failing = [
        [create("m:new"), create("m:old")],
        [create("m:new"), guarded_update("record", stale, n=3)],
        [create("m:new"), ("update", {"PartitionKey": PK, "RowKey": "ghost"}, {"mode": "merge"})],
    ]
    for ops in failing:
        with pytest.raises(TableTransactionError) as by_sdk:
            await table.submit_transaction(ops)
        with pytest.raises(TableTransactionError) as by_table_batch:
            await table_batch.submit_transaction(table, ops)
        assert comparable(by_table_batch.value) == comparable(by_sdk.value)
        assert by_table_batch.value.response.request.url == by_sdk.value.response.request.url
