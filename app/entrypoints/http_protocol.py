"""The API's HTTP/1.1 protocol: uvicorn's httptools one, with a bound on a request's head.

httptools (llhttp, in C) parses a request in less than half the CPU that h11 (pure
Python) takes (docs/performance.md, "Runtime pieces"). But it buffers a request line and
headers of any size, where h11 refuses a head that grows past
``h11_max_incomplete_event_size`` while incomplete. This protocol keeps that bound
(``STATSAGA_HTTP_MAX_HEADER_BYTES``, passed to uvicorn under h11's name): the bytes
received while a request's head is incomplete are counted, and past the bound the answer
is 400 and the connection is closed, as with h11. Like h11's, the bound holds to within
one socket read: a read that completes a head or a request does not count towards the
next head.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

# h11's own default, for a config that sets no bound.
DEFAULT_MAX_HEAD_BYTES = 16 * 1024


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that answers 400 to a request head past the bound."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.max_head_bytes = config.h11_max_incomplete_event_size or DEFAULT_MAX_HEAD_BYTES
        self.in_head = True  # between requests, or inside a head not yet complete
        self.head_bytes = 0
        self.heads = 0  # heads completed on this connection

    def data_received(self, data: bytes) -> None:
        """Parse ``data``; refuse the request when its head has grown past the bound."""
        in_head, heads = self.in_head, self.heads
        super().data_received(data)
        # Counted only when the whole read belongs to one incomplete head: one that ends a
        # request's body, or completes a head, begins nothing counted.
        if not (in_head and self.in_head and self.heads == heads):
            return
        if self.transport.is_closing():
            return
        self.head_bytes += len(data)
        if self.head_bytes > self.max_head_bytes:
            self.logger.warning("Request head larger than %d bytes.", self.max_head_bytes)
            self.send_400_response("Request head too large.")

    def on_headers_complete(self) -> None:
        """The head is complete: what follows is its body, not counted."""
        self.in_head = False
        self.heads += 1
        self.head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The request is complete: the next bytes begin the next head."""
        super().on_message_complete()
        self.in_head = True
