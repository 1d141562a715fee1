"""How a ``statsaga`` command ends: the one place that maps its failures to a message on
stderr and an exit code. 0: done, or stopped by Ctrl-C (the usual way to stop a role);
1: the command could not do what was asked (a service unreachable, a saga not found);
2: the command or the settings were wrong. Any other exception is a crash, with its
traceback."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

DONE, FAILED, MISUSED = 0, 1, 2


class CommandFailed(Exception):
    """The command could not do what was asked; the message is the operator's news, not
    a crash. ``command``: the words naming it in the message, when not the command's own
    name (``pools resize``)."""

    exit_code = FAILED

    def __init__(self, message: str, command: str | None = None) -> None:
        super().__init__(message)
        self.command = command

    def report(self, command: str) -> str:
        """The line(s) for stderr."""
        return f"statsaga {self.command or command}: {self}"


class CommandMisused(CommandFailed):
    """The command cannot run as given: a missing address, a size out of bounds."""

    exit_code = MISUSED


class InvalidSettings(CommandMisused):
    """A configuration mistake, not a crash: each refused setting on a line of its own."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("invalid settings")
        self.problems = problems

    def report(self, command: str) -> str:
        return "\n".join(
            ["statsaga: invalid settings", *(f"  {where}: {msg}" for where, msg in self.problems)]
        )


@contextlib.contextmanager
def reported(*errors: type[Exception]) -> Iterator[None]:
    """Within the block, ``errors`` are the command's failures to report, not crashes."""
    try:
        yield
    except errors as error:
        raise CommandFailed(str(error)) from error


def exit_code(command: str, run: Callable[[], int]) -> int:
    """Run a command: its own exit code, or its failure's, reported on stderr."""
    try:
        return run()
    except KeyboardInterrupt:
        return DONE
    except CommandFailed as failure:
        print(failure.report(command), file=sys.stderr)
        return failure.exit_code
