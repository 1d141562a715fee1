"""The storage clients trust the environment only when it names a proxy (aiohttp's lookup
of the proxy and ~/.netrc, on every request, cost ~10% of an actor's CPU): with one set,
requests go through it; without, straight to storage."""

from __future__ import annotations

import pytest

from app.domain.errors import NotFound, StorageUnavailable
from devstack.processes import Azurite, free_port
from storage.tables import open_table_storage, proxy_configured

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(60)]


def test_a_proxy_is_configured_by_any_of_the_variables_aiohttp_reads() -> None:
    assert not proxy_configured({})
    assert not proxy_configured({"NO_PROXY": "*", "HTTPS_PROXY": ""})
    for name in ("HTTPS_PROXY", "http_proxy", "ALL_PROXY"):
        assert proxy_configured({name: "http://proxy.example:3128"})


async def test_a_proxy_in_the_environment_is_used(
    azurite: Azurite, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    # Nothing listens there: a request sent through this proxy cannot succeed.
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(StorageUnavailable):
        await open_table_storage(azurite.connection_string, f"x{unique}", sdk_retries=0)
    monkeypatch.delenv("HTTP_PROXY")
    direct = await open_table_storage(azurite.connection_string, f"x{unique}", sdk_retries=0)
    try:
        with pytest.raises(NotFound):
            await direct.sagas.load("m-any")
    finally:
        await direct.close()
