"""``die_with_parent``: a child started with it goes when its parent is SIGKILLed (no
clean-up code of the parent runs), and only then."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.support.procs import Proc, read_proc, wait_gone

# A parent that starts `sleep` tied to its life, prints the child's PID, and waits.
_PARENT = """
import subprocess, sys, time
from app.runtime.lifeline import die_with_parent
child = subprocess.Popen(["sleep", "120"], preexec_fn=die_with_parent())
print(child.pid, flush=True)
time.sleep(120)
"""


def test_a_child_goes_when_its_parent_is_killed_and_not_before() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT], stdout=subprocess.PIPE, start_new_session=True
    )
    child: Proc | None = None
    try:
        assert parent.stdout is not None
        child = read_proc(int(parent.stdout.readline()))
        assert child is not None
        time.sleep(0.5)
        assert child.alive()  # the parent lives: so does the child
        parent.kill()
        parent.wait(10)
        assert wait_gone([child], 10) == []
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        if child is not None and child.alive():
            os.kill(child.pid, signal.SIGKILL)
