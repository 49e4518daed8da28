"""The three ways a VOEvent reaches us: VTP (a Comet broker), GCN Kafka and HTTP (see api.py).

Every intake hands the verbatim bytes to one ``Submit`` callable, which publishes them on
``pyros.voevents.raw`` keyed by IVORN; parsing and matching happen in the handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any

import structlog
from lxml import etree
from pyros_common.clock import Clock

log = structlog.get_logger("pyros.alerts.intake")

Submit = Callable[[bytes, str], Awaitable[Any]]  # (raw packet, intake name)

_IVORN = re.compile(rb"<(?:[\w.-]+:)?VOEvent\b[^>]*?\sivorn\s*=\s*([\"'])(ivo://[^\"'<>]{1,1000})\1", re.S)
TRANSPORT_NS = "http://www.telescope-networks.org/xml/Transport/v1.1"
VTP_MAX_FRAME = 16 * 1024 * 1024  # larger frames mean a broken peer (wrong byte order): drop it


def extract_ivorn(raw: bytes) -> str:
    """The IVORN of a packet from its root tag, without parsing; ``"unknown"`` if unreadable."""
    m = _IVORN.search(raw[:16384])
    if m is None:
        return "unknown"
    return m.group(2).decode("utf-8", errors="replace").strip()


# --- VTP ---------------------------------------------------------------------------------


def _transport(role: str, *, origin: str, response: str | None, when: datetime) -> bytes:
    root = etree.Element(
        f"{{{TRANSPORT_NS}}}Transport", attrib={"version": "1.0", "role": role}, nsmap={"trn": TRANSPORT_NS}
    )
    etree.SubElement(root, "Origin").text = origin
    if response:
        etree.SubElement(root, "Response").text = response
    etree.SubElement(root, "TimeStamp").text = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _safe_root(raw: bytes) -> etree._Element | None:
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        return None
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        return etree.fromstring(raw, parser=parser)
    except (etree.LxmlError, ValueError):
        return None


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


class VtpIntake:
    """VOEvent Transport Protocol subscriber: frames are a 4-byte big-endian length then XML.

    Answers ``iamalive`` and ``authenticate``, acknowledges every event once it is
    published, reconnects with exponential back-off and logs the gap when it comes back.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        local_ivo: str,
        clock: Clock,
        submit: Submit,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 60.0,
        silence_s: float = 180.0,
    ) -> None:
        self.host, self.port, self.local_ivo = host, port, local_ivo
        self.clock = clock
        self.submit = submit
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.silence_s = silence_s
        self.connected = asyncio.Event()
        self.events_received = 0
        self.reconnections = 0
        self.last_gap_s: float | None = None
        self._down_since: datetime | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def run(self) -> None:
        """Connect, receive, reconnect; runs until cancelled."""
        delay = self.backoff_initial_s
        while True:
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError as exc:
                self._mark_down()
                log.warning(
                    "VTP broker unreachable", host=self.host, port=self.port, error=str(exc), retry_in_s=delay
                )
                await self.clock.sleep(delay)
                delay = min(delay * 2, self.backoff_max_s)
                continue
            delay = self.backoff_initial_s
            self._mark_up()
            try:
                await self._session(reader, writer)
                log.warning("VTP broker closed the connection", host=self.host, port=self.port)
            except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                log.warning("VTP connection lost", host=self.host, port=self.port, error=repr(exc))
            finally:
                self.connected.clear()
                self._writer = None
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            self._mark_down()
            await self.clock.sleep(delay)
            delay = min(delay * 2, self.backoff_max_s)

    def _mark_down(self) -> None:
        if self._down_since is None:
            self._down_since = self.clock.now()

    def _mark_up(self) -> None:
        if self._down_since is not None:
            gap = (self.clock.now() - self._down_since).total_seconds()
            self.last_gap_s = gap
            self.reconnections += 1
            # Alerts broadcast while we were away are lost to us: say so, with the window.
            log.warning(
                "VTP connected after a gap: alerts broadcast meanwhile were not received",
                host=self.host,
                port=self.port,
                gap_s=round(gap, 3),
                gap_start=self._down_since.isoformat(),
                gap_end=self.clock.now().isoformat(),
            )
        else:
            log.info("VTP connected", host=self.host, port=self.port)
        self._down_since = None
        self.connected.set()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        while True:
            try:
                header = await asyncio.wait_for(reader.readexactly(4), self.silence_s)
            except asyncio.IncompleteReadError as exc:
                if not exc.partial:
                    return  # clean close between frames
                raise
            size = int.from_bytes(header, "big")
            if size > VTP_MAX_FRAME:
                raise OSError(f"VTP frame of {size} bytes: peer is not speaking VTP")
            payload = await asyncio.wait_for(reader.readexactly(size), self.silence_s)
            reply = await self._handle(payload)
            if reply is not None:
                writer.write(len(reply).to_bytes(4, "big") + reply)
                await writer.drain()

    async def _handle(self, payload: bytes) -> bytes | None:
        root = _safe_root(payload)
        if root is not None and _local(root.tag) == "Transport":
            role = root.get("role", "")
            origin_el = root.find("Origin")
            origin = (origin_el.text or "").strip() if origin_el is not None else ""
            if role == "iamalive":
                return _transport("iamalive", origin=origin, response=self.local_ivo, when=self.clock.now())
            if role == "authenticate":  # no filters: we want every event
                return _transport(
                    "authenticate", origin=origin, response=self.local_ivo, when=self.clock.now()
                )
            log.info("VTP transport message ignored", role=role)
            return None
        # Anything else is an event: publish it verbatim (the handler rejects bad ones with a reason).
        self.events_received += 1
        ivorn = extract_ivorn(payload)
        await self.submit(payload, "vtp")
        return _transport("ack", origin=ivorn, response=self.local_ivo, when=self.clock.now())


# --- GCN Kafka ----------------------------------------------------------------------------


def topic_regex(topics: list[str], prefix: str = "") -> str:
    """One regex for every topic name or ``name.*`` family, with our test prefix in front."""
    parts = []
    for t in topics:
        if t.endswith("*"):
            parts.append(re.escape(prefix + t[:-1]) + ".*")
        else:
            parts.append(re.escape(prefix + t))
    return "^(" + "|".join(parts) + ")$"


class GcnKafkaIntake:
    """GCN Kafka through ``gcn_kafka.Consumer``: with credentials on GCN, or on a plain broker
    (``gcn_bootstrap``), the same code either way."""

    def __init__(
        self,
        *,
        submit: Submit,
        topics: list[str],
        group: str,
        bootstrap: str | None = None,
        topic_prefix: str = "",
        client_id: str | None = None,
        client_secret: str | None = None,
        domain: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.submit = submit
        # Extra librdkafka settings for gcn_kafka.Consumer; with "bootstrap.servers" among them it
        # reads that broker without GCN credentials (how the tests run the production path).
        self.config = dict(config or {})
        self.topics = topics
        self.group = group
        self.bootstrap = bootstrap
        self.topic_prefix = topic_prefix
        self.client_id, self.client_secret, self.domain = client_id, client_secret, domain
        self.assigned = asyncio.Event()
        self.messages = 0

    async def run(self) -> None:
        """The production path (gcn_kafka.Consumer, confluent-kafka) whatever the broker: with
        ``bootstrap`` it reads that plain broker (our own, or the tests'), else GCN itself."""
        if self.bootstrap:
            self.config = {
                "bootstrap.servers": self.bootstrap,
                "security.protocol": "plaintext",
                "auto.offset.reset": "earliest",  # our broker: nothing is missed before assignment
                "topic.metadata.refresh.interval.ms": 2000,  # see new GCN topics quickly
                **self.config,
            }
        await self._run_gcn()

    async def _run_gcn(self) -> None:
        own_broker = "bootstrap.servers" in self.config
        if not own_broker and not (self.client_id and self.client_secret):
            log.warning("GCN Kafka intake disabled: PYROS_GCN_CLIENT_ID/PYROS_GCN_CLIENT_SECRET are not set")
            return
        from gcn_kafka import Consumer

        config: dict[str, Any] = {
            "group.id": self.topic_prefix + self.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "latest",
            **self.config,
        }
        kwargs: dict[str, Any] = {"config": config}
        if self.client_id and self.client_secret:
            kwargs |= {"client_id": self.client_id, "client_secret": self.client_secret}
        if self.domain:
            kwargs["domain"] = self.domain
        consumer = Consumer(**kwargs)
        consumer.subscribe([topic_regex([t], self.topic_prefix) for t in self.topics])
        loop = asyncio.get_running_loop()
        try:
            while True:
                # confluent-kafka blocks: poll, commit and close in a thread, never on the loop.
                messages = await loop.run_in_executor(
                    None, lambda: consumer.consume(num_messages=10, timeout=1.0)
                )
                if messages and consumer.assignment():
                    self.assigned.set()
                for msg in messages:
                    if msg.error():
                        log.warning("GCN Kafka error", error=str(msg.error()))
                        continue
                    value = msg.value()
                    if value is not None:
                        await self.submit(bytes(value), "gcn-kafka")
                        self.messages += 1
                    await loop.run_in_executor(
                        None, partial(consumer.commit, message=msg, asynchronous=False)
                    )
        finally:
            await loop.run_in_executor(None, consumer.close)
