"""Stopping the actor pools that test processes left on the session's Ray head."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from app.runtime.lifeline import die_with_parent
from devstack.processes import PROJECT_ROOT
from devstack.ray_cluster import RayHead

# A driver of its own: the test process may be a Ray driver of another namespace
# (tests/integration/test_pools.py), or none at all.
_KILL = """
import sys
from actors.pools import init_ray, kill_pools
init_ray(sys.argv[1], "test-cleanup")
for namespace in sys.argv[2:]:
    print(namespace, kill_pools(namespace))
"""


def kill_pools_on(head: RayHead, namespaces: list[str]) -> None:
    """Stop the detached pools of ``namespaces``: the head outlives the module that made
    them, and idle actors would otherwise pile up in it for the rest of the session."""
    if not namespaces or head.proc.poll() is not None:
        return
    done = subprocess.run(
        [sys.executable, "-c", _KILL, head.address, *namespaces],
        env={**os.environ, **head.env, "RAY_USAGE_STATS_ENABLED": "0"},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=die_with_parent(),
    )
    assert done.returncode == 0, done.stderr[-3000:]


@contextlib.contextmanager
def joined(head: RayHead, namespace: str, **init: Any) -> Iterator[RayHead]:
    """This process joined to ``head`` in ``namespace``, as a worker process would be; the
    environment and Ray's auth state put back after."""
    import ray
    from ray._private.authentication_test_utils import reset_auth_token_state

    saved = {k: os.environ.get(k) for k in head.env}
    os.environ.update(head.env)
    # Ray read its auth settings when it was imported: have it read them again (its own
    # tests' helper; a process that sets them before importing Ray needs nothing).
    reset_auth_token_state()
    ray.init(address=head.address, namespace=namespace, **init)
    try:
        yield head
    finally:
        ray.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        reset_auth_token_state()
