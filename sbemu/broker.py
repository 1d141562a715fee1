"""The AMQP side of the broker: links, transfers, settlement, timers (proton reactor).

Addresses: ``<queue>``, ``<queue>/$DeadLetterQueue``, ``<queue>/$management`` and ``$cbs``
(optionally prefixed ``amqps://host:port/``). Everything runs on the reactor's thread;
the store is only touched from here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from proton import Delivery, Endpoint, Link, Message, symbol
from proton.handlers import MessagingHandler
from proton.reactor import Container

from sbemu import codec
from sbemu.config import QueueConfig
from sbemu.links import LinkInfo, error, guarded, new_tag, open_links, parse_address
from sbemu.locks import Locks
from sbemu.management import MAX_MESSAGE_BYTES, SIZE_EXCEEDED, Management, ManagementError
from sbemu.store import MAIN, NewMessage, Store

log = logging.getLogger("sbemu")
CREDIT = 200
TICK_S = 0.05


class Broker(MessagingHandler):
    """Service Bus queues over AMQP 1.0, for the official SDK."""

    def __init__(
        self,
        queues: dict[str, QueueConfig],
        store: Store,
        host: str,
        port: int,
        on_listening: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(prefetch=0, auto_accept=False, auto_settle=False)
        self.queues = queues
        self.store = store
        self.host, self.port = host, port
        self.clock = clock
        self.locks = Locks(queues, store, self.wake, clock)
        # When each queue last took or gave a message (the admin API's AccessedAt).
        self.accessed: dict[str, float] = {}
        self.senders: dict[tuple[str, str], list[Link]] = {}
        self.management = Management(self)
        self._on_listening = on_listening
        self._last_sweep = 0.0
        self.stopping = False  # set from a signal handler; the next tick stops the reactor

    # ---- reactor and connections ----------------------------------------------------

    def on_reactor_init(self, event: Any) -> None:
        acceptor = event.container.listen(f"{self.host}:{self.port}")
        if self.port == 0:
            self.port = acceptor._selectable._delegate.getsockname()[1]
        if self._on_listening:
            self._on_listening(self.port)
        event.container.schedule(TICK_S, self)

    def on_connection_bound(self, event: Any) -> None:
        # The SDK authenticates with SASL ANONYMOUS (plus a CBS token we accept).
        sasl = event.transport.sasl()
        sasl.allowed_mechs("ANONYMOUS")
        event.transport.require_auth(False)

    def on_connection_remote_open(self, event: Any) -> None:
        if event.connection.state & Endpoint.LOCAL_UNINIT:
            event.connection.open()

    def on_session_remote_open(self, event: Any) -> None:
        if event.session.state & Endpoint.LOCAL_UNINIT:
            event.session.open()

    def on_connection_remote_close(self, event: Any) -> None:
        self._forget_connection(event.connection)
        if not event.connection.state & Endpoint.LOCAL_CLOSED:
            event.connection.close()

    def on_session_remote_close(self, event: Any) -> None:
        if not event.session.state & Endpoint.LOCAL_CLOSED:
            event.session.close()

    def on_transport_closed(self, event: Any) -> None:
        if event.connection is not None:
            self._forget_connection(event.connection)

    def _forget_connection(self, connection: Any) -> None:
        # Locks outlive their link, as in Service Bus: they expire on their own.
        for links in self.senders.values():
            links[:] = [link for link in links if link.connection != connection]
        self.locks.forget_connection(connection)

    # ---- links -------------------------------------------------------------------------

    @guarded
    def on_link_remote_open(self, event: Any) -> None:
        link: Any = event.link
        address = link.remote_target.address if link.is_receiver else link.remote_source.address
        kind, queue, sub = parse_address(address)
        # The SDK detaches unless the attach reply carries a source and a target.
        link.source.address = link.remote_source.address or address
        link.target.address = link.remote_target.address or address
        link.snd_settle_mode = link.remote_snd_settle_mode
        link.rcv_settle_mode = link.remote_rcv_settle_mode
        if kind != "cbs" and queue not in self.queues:
            log.warning(
                "refused a link to unknown queue %r (declared: %s)",
                queue,
                ", ".join(sorted(self.queues)),
            )
            link.open()
            link.condition = error(
                "amqp:not-found",
                f"The messaging entity '{queue}' could not be found. sbemu declares: "
                f"{', '.join(sorted(self.queues))}.",
            )
            link.close()
            return
        # The SDK checks sizes against what the attach reply advertises.
        link.max_message_size = MAX_MESSAGE_BYTES
        link.open()
        link.sbemu = LinkInfo(kind, queue, sub)
        if link.is_receiver:
            link.flow(CREDIT)
        elif kind == "queue":
            self.senders.setdefault((queue, sub), []).append(link)

    @guarded
    def on_link_remote_close(self, event: Any) -> None:
        link: Any = event.link
        info: LinkInfo | None = getattr(link, "sbemu", None)
        if info is not None and info.kind == "queue" and link.is_sender:
            links = self.senders.get((info.queue, info.sub), [])
            if link in links:
                links.remove(link)
        if not link.state & Endpoint.LOCAL_CLOSED:
            link.close()

    @guarded
    def on_link_flow(self, event: Any) -> None:
        link: Any = event.link
        info: LinkInfo | None = getattr(link, "sbemu", None)
        if info is None or not link.is_sender:
            return
        if info.kind == "queue":
            self._feed(link, info)
        else:
            self._flush_replies(link, info)
        if link.drain_mode and link.credit > 0:
            link.drained()

    # ---- incoming transfers ----------------------------------------------------------

    @guarded
    def on_delivery(self, event: Any) -> None:
        dlv: Any = event.delivery
        link = dlv.link
        info: LinkInfo | None = getattr(link, "sbemu", None)
        if info is None:
            return
        if link.is_sender:
            if dlv.updated:
                self.locks.settle(dlv)
            return
        if not dlv.readable or dlv.partial:
            return
        raw = bytes(link.recv(dlv.pending) or b"")
        link.advance()
        if link.credit < CREDIT // 2:
            link.flow(CREDIT - link.credit)
        if info.kind == "queue":
            self._receive_send(dlv, info, raw)
        else:
            self._receive_request(dlv, info, raw)

    def _receive_send(self, dlv: Any, info: LinkInfo, raw: bytes) -> None:
        try:
            if len(raw) > MAX_MESSAGE_BYTES:
                raise ManagementError(
                    SIZE_EXCEEDED,
                    f"message of {len(raw)} bytes exceeds {MAX_MESSAGE_BYTES}",
                )
            if info.sub != MAIN:
                raise ManagementError("amqp:not-allowed", "cannot send to a dead-letter queue")
            payloads = codec.split_batch(raw) or [raw]
            self.enqueue(info.queue, payloads)
            outcome = Delivery.ACCEPTED
        except (ManagementError, ValueError) as exc:
            name = exc.condition if isinstance(exc, ManagementError) else "amqp:decode-error"
            log.warning("refused a message sent to %s: %s", info.queue, exc)
            dlv.local.condition = error(name, str(exc))
            outcome = Delivery.REJECTED
        if not dlv.settled:
            dlv.update(outcome)
        dlv.settle()

    def enqueue(
        self, queue: str, payloads: list[bytes], visible_at: float | None = None
    ) -> list[int | None]:
        """Store messages (committed before this returns); ``None`` for a duplicate."""
        config = self.queues[queue]
        now = self.clock()
        batch = []
        for payload in payloads:
            sections = codec.parse(payload)
            at = visible_at
            scheduled = sections.annotations.get(symbol("x-opt-scheduled-enqueue-time"))
            if at is None and scheduled is not None:
                at = int(scheduled) / 1000.0
            ttl = sections.ttl_ms / 1000.0 if sections.ttl_ms else config.ttl_s
            start = max(at or now, now)
            batch.append(
                NewMessage(queue, payload, sections.message_id, start, start + ttl if ttl else None)
            )
        windows = {queue: config.duplicate_window_s} if config.requires_duplicate_detection else {}
        seqs = self.store.enqueue(batch, now, windows)
        self.accessed[queue] = now
        self.wake(queue, MAIN)
        return seqs

    def _receive_request(self, dlv: Any, info: LinkInfo, raw: bytes) -> None:
        request = Message()
        request.decode(raw)
        dlv.update(Delivery.ACCEPTED)
        dlv.settle()
        if info.kind == "cbs":
            reply = Message(
                correlation_id=request.id,
                properties={"status-code": 200, "status-description": "OK"},
            )
        else:
            address = info.queue + ("/" + info.sub if info.sub else "")
            reply = self.management.handle(address, request)
        reply.address = request.reply_to or ""
        self._reply(dlv.link.connection, info, request.reply_to, reply)

    def _reply(self, connection: Any, info: LinkInfo, reply_to: str | None, reply: Message) -> None:
        target = None
        for link in open_links(connection):
            other: LinkInfo | None = getattr(link, "sbemu", None)
            if other is None or not link.is_sender or other.kind != info.kind:
                continue
            if other.queue != info.queue or other.sub != info.sub:
                continue
            target = link
            if reply_to and link.remote_target.address == reply_to:
                break
        if target is None:
            log.warning("no link to reply to %s on %s", reply_to, info.kind)
            return
        target.sbemu.outbox.append(reply)
        self._flush_replies(target, target.sbemu)

    def _flush_replies(self, link: Any, info: LinkInfo) -> None:
        while info.outbox and link.credit > 0:
            reply = info.outbox.pop(0)
            dlv = link.send(reply)
            dlv.settle()  # management replies are pre-settled

    # ---- outgoing deliveries --------------------------------------------------------------

    def wake(self, queue: str, sub: str) -> None:
        """Offer available messages to every receiver of ``queue``/``sub`` with credit."""
        for link in list(self.senders.get((queue, sub), [])):
            self._feed(link, link.sbemu)

    def _feed(self, link: Any, info: LinkInfo) -> None:
        if link.credit <= 0 or link.state & Endpoint.LOCAL_CLOSED:
            return
        now = self.clock()
        rows = self.store.available(info.queue, info.sub, now, link.credit)
        if rows:
            self.accessed[info.queue] = now
        config = self.queues[info.queue]
        for row in rows:
            presettled = link.snd_settle_mode == Link.SND_SETTLED
            until = now + config.lock_duration_s
            deliveries = self.store.lock(row.seq, until)
            # A receive-and-delete delivery holds no lock: the message is gone once sent.
            tag = (
                new_tag()
                if presettled
                else self.locks.hold(row.seq, info.queue, info.sub, until, link)
            )
            payload = codec.render_stored(row, deliveries - 1, None if presettled else until)
            dlv = link.delivery(tag)
            link.send(payload)
            link.advance()
            if presettled:  # receive-and-delete
                dlv.settle()
                self.store.delete(row.seq)
            if link.credit <= 0:
                break

    # ---- timers --------------------------------------------------------------------------

    @guarded
    def on_timer_task(self, event: Any) -> None:
        if self.stopping:
            event.container.stop()
            return
        now = self.clock()
        self.locks.expire(now)
        if now - self._last_sweep > 1.0:
            self._last_sweep = now
            self._expire(now)
        # Scheduled messages that became visible, and anything a receiver still waits for.
        for (queue, sub), links in list(self.senders.items()):
            if any(link.credit > 0 for link in links):
                self.wake(queue, sub)
        event.container.schedule(TICK_S, self)

    def _expire(self, now: float) -> None:
        for row in self.store.expired_messages(now):
            config = self.queues.get(row.queue)
            if config and config.dead_letter_on_expiration and row.sub == MAIN:
                self.store.dead_letter(row.seq, "TTLExpiredException", "The message expired.")
            else:
                self.store.delete(row.seq)
        longest = max((q.duplicate_window_s for q in self.queues.values()), default=0.0)
        self.store.forget_duplicates(now - longest)


def run(broker: Broker) -> None:
    """Run the broker until ``broker.stopping`` is set."""
    Container(broker).run()
