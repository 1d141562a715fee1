"""The ``PayloadArchive`` contract. Every adapter's test is a three-line subclass."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from app.application.ports import PayloadArchive
from app.domain.errors import NotFound
from app.domain.model import Match
from app.domain.validation import parse_match
from devstack.processes import Azurite
from storage.memory import InMemoryPayloadArchive
from storage.tables import open_table_storage
from tests.support.azure import STORAGE_ENV, azure_table_storage, connection_string
from tests.support.matches import random_match


def make_match(match_id: str, seed: int = 1) -> Match:
    body = random_match(random.Random(seed), match_id, [f"{match_id}-p{i}" for i in range(8)])
    return parse_match(body, now=None)


class PayloadArchiveContract:
    """Behaviour every ``PayloadArchive`` adapter must have."""

    @pytest.fixture
    async def archive(self) -> AsyncIterator[PayloadArchive]:
        raise NotImplementedError
        yield

    @pytest.fixture
    def match(self, unique: str) -> Match:
        return make_match(f"m{unique}")

    async def test_put_then_get(self, archive: PayloadArchive, match: Match) -> None:
        await archive.put(match)
        assert await archive.get(match.match_id, match.payload_hash()) == match.to_dict()

    async def test_put_is_idempotent(self, archive: PayloadArchive, match: Match) -> None:
        await archive.put(match)
        await archive.put(match)
        assert await archive.get(match.match_id, match.payload_hash()) == match.to_dict()

    async def test_another_body_never_overwrites(
        self, archive: PayloadArchive, match: Match
    ) -> None:
        other = make_match(match.match_id, seed=2)
        await archive.put(match)
        await archive.put(other)
        assert await archive.get(match.match_id, match.payload_hash()) == match.to_dict()
        assert await archive.get(other.match_id, other.payload_hash()) == other.to_dict()

    async def test_unknown_payload_is_not_found(
        self, archive: PayloadArchive, match: Match
    ) -> None:
        with pytest.raises(NotFound):
            await archive.get(match.match_id, match.payload_hash())
        await archive.put(match)
        with pytest.raises(NotFound):
            await archive.get(match.match_id, "0" * 64)


class TestInMemoryPayloadArchive(PayloadArchiveContract):
    @pytest.fixture
    async def archive(self) -> AsyncIterator[PayloadArchive]:
        yield InMemoryPayloadArchive()


@pytest.mark.azurite
class TestBlobPayloadArchive(PayloadArchiveContract):
    @pytest.fixture
    async def archive(self, azurite: Azurite, unique: str) -> AsyncIterator[PayloadArchive]:
        storage = await open_table_storage(azurite.connection_string, f"t{unique}")
        yield storage.archive
        await storage.close()


@pytest.mark.azure
class TestBlobPayloadArchiveOnAzure(PayloadArchiveContract):
    """The same contract on real Azure Storage (see ``tests.support.azure``)."""

    @pytest.fixture
    async def archive(self) -> AsyncIterator[PayloadArchive]:
        async with azure_table_storage(connection_string(STORAGE_ENV)) as storage:
            yield storage.archive
