"""Joining Ray fails fast on a head that does not answer (``ray.init`` would wait for it
forever: found with a stale ``.data/ray.env``)."""

from __future__ import annotations

import pytest

from actors.pools import init_ray
from devstack.processes import free_port


def test_a_head_that_does_not_answer_is_a_clear_error_at_once() -> None:
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(ConnectionError, match=f"no Ray head answers at {address}"):
        init_ray(address, "statsaga")
