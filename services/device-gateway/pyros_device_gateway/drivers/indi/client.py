"""A minimal INDI client (XML over TCP, protocol 1.7) for indiserver, shared by every INDI driver.

It keeps a table of every property vector the server defined (def*Vector), applies updates
(set*Vector), forgets deleted ones (delProperty), keeps the last BLOB of each BLOB element
(decoded), and sends new values (newNumberVector, newSwitchVector, newTextVector, enableBLOB).
Whatever cannot be read is counted and kept in ``protocol_errors``, never applied, so a
malformed reply cannot move a number the driver relies on. Why ours and not a library:
docs/devices.md ("INDI client").
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import re
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, cast
from xml.etree.ElementTree import Element, ParseError, XMLPullParser
from xml.sax.saxutils import escape, quoteattr

import structlog

log = structlog.get_logger("pyros.device_gateway.indi")

VectorKind = Literal["number", "switch", "text", "light", "blob"]
PropertyState = Literal["Idle", "Ok", "Busy", "Alert"]
_KINDS: dict[str, VectorKind] = {
    "Number": "number",
    "Switch": "switch",
    "Text": "text",
    "Light": "light",
    "BLOB": "blob",
}
_TAG = re.compile(r"^(def|set|new)(Number|Switch|Text|Light|BLOB)Vector$")
_STATES = ("Idle", "Ok", "Busy", "Alert")
# One unfinished element larger than this is an attack or a bug (a 16-bit 9k x 9k frame, base64, fits).
MAX_PENDING_BYTES = 512 * 1024 * 1024

# DRIVER_INFO.DRIVER_INTERFACE bits (libindi's DriverInterface), and our kind for the main ones.
INTERFACES = {
    1: "telescope",
    2: "ccd",
    4: "guider",
    8: "focuser",
    16: "filter",
    32: "dome",
    64: "gps",
    128: "weather",
    256: "ao",
    512: "dustcap",
    1024: "lightbox",
    2048: "detector",
    4096: "rotator",
    8192: "spectrograph",
    16384: "correlator",
    32768: "aux",
}
_KIND_OF_INTERFACE = (  # first match wins: a CCD with a filter wheel inside is a camera
    ("telescope", "telescope"),
    ("ccd", "camera"),
    ("dome", "dome"),
    ("filter", "filterwheel"),
    ("focuser", "focuser"),
    ("weather", "weather"),
)


def interface_names(mask: int) -> list[str]:
    """The interface names of a DRIVER_INTERFACE bit mask."""
    return [name for bit, name in INTERFACES.items() if mask & bit]


def kind_of_interfaces(names: list[str]) -> str | None:
    """Our device kind for an INDI device's interfaces (None: none we drive)."""
    for interface, kind in _KIND_OF_INTERFACE:
        if interface in names:
            return kind
    return None


class IndiError(Exception):
    """indiserver is unreachable, closed the link, or sent something we cannot read."""


def parse_number(text: str) -> float:
    """An INDI number: decimal or sexagesimal (``-12:30:15.5``, ``12 30 15``)."""
    t = text.strip()
    if not t:
        raise ValueError("empty number")
    if ":" in t or " " in t:
        parts = [p for p in re.split(r"[:\s]+", t) if p]
        if not 1 <= len(parts) <= 3:
            raise ValueError(f"bad sexagesimal {text!r}")
        neg = parts[0].startswith("-")
        vals = [abs(float(p)) for p in parts]
        out = sum(v / 60.0**i for i, v in enumerate(vals))
        return -out if neg else out
    value = float(t)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"not a finite number: {text!r}")
    return value


@dataclass
class IndiVector:
    """One property vector as last reported by the server."""

    device: str
    name: str
    kind: VectorKind
    state: PropertyState
    perm: str = "ro"
    label: str = ""
    values: dict[str, float | str | bool] = field(default_factory=dict)
    generation: int = 0  # bumped at every update, so waiters can tell new from old
    busy_generation: int = -1  # last generation reported Busy (Busy then Ok can arrive in one read)
    message: str = ""
    blobs: dict[str, Blob] = field(default_factory=dict)  # BLOB vectors: the last content of each element

    def number(self, element: str) -> float:
        v = self.values.get(element)
        if isinstance(v, bool) or not isinstance(v, float):
            raise IndiError(f"{self.device}.{self.name} has no number {element!r} (got {v!r})")
        return v

    def switch(self, element: str) -> bool:
        v = self.values.get(element)
        if not isinstance(v, bool):
            raise IndiError(f"{self.device}.{self.name} has no switch {element!r}")
        return v


@dataclass(frozen=True)
class Blob:
    """One received BLOB element: its format (".fits", ".fits.z", ...) and its decoded bytes."""

    format: str
    data: bytes


def _blob(el: Element) -> Blob:
    fmt = el.get("format", "")
    try:
        data = base64.b64decode("".join((el.text or "").split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"BLOB {el.get('name')!r} is not base64: {exc}") from None
    if fmt.endswith(".z"):  # zlib-compressed by the driver (CCD_COMPRESSION)
        try:
            data = zlib.decompress(data)
        except zlib.error as exc:
            raise ValueError(f"BLOB {el.get('name')!r} does not decompress: {exc}") from None
        fmt = fmt[:-2]
    return Blob(format=fmt, data=data)


def _element_value(kind: VectorKind, el: Element) -> float | str | bool:
    text = el.text or ""
    if kind == "number":
        return parse_number(text)
    if kind == "switch":
        t = text.strip()
        if t not in ("On", "Off"):
            raise ValueError(f"switch value must be On or Off, got {t!r}")
        return t == "On"
    if kind == "light":
        t = text.strip()
        if t not in _STATES:
            raise ValueError(f"light value must be one of {_STATES}, got {t!r}")
        return t
    return text.strip() if kind == "text" else f"<{el.get('size', '?')} bytes {el.get('format', '')}>"


class IndiClient:
    """One TCP connection to indiserver; ``vectors`` mirrors the server's properties."""

    def __init__(
        self,
        host: str,
        port: int = 7624,
        *,
        connect_timeout_s: float = 5.0,
        max_element_bytes: int = MAX_PENDING_BYTES,
    ) -> None:
        self.host = host
        self.port = port
        self.connect_timeout_s = connect_timeout_s
        self.max_element_bytes = max_element_bytes
        self.vectors: dict[tuple[str, str], IndiVector] = {}
        self.messages: deque[str] = deque(maxlen=200)
        self.protocol_errors: deque[str] = deque(maxlen=200)
        self.error: str | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self._connecting = asyncio.Lock()
        self.connections = 0  # links opened so far (a reconnect makes it grow)

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        return self._writer is not None and self.error is None

    async def connect(self, device: str | None = None) -> None:
        """Open the socket (again, after a loss) and ask for every property (of ``device`` if given).

        Drivers sharing this client call it concurrently: one link is opened, the others wait for it.
        """
        async with self._connecting:
            if self.connected:
                return
            await self.close()
            self.vectors.clear()  # a new indiserver (or a restarted driver) redefines everything
            try:
                async with asyncio.timeout(self.connect_timeout_s):
                    self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            except (OSError, TimeoutError) as exc:
                self.error = f"cannot reach indiserver at {self.endpoint}: {exc!r}"
                raise IndiError(self.error) from exc
            self.error = None
            self.connections += 1
            self._task = asyncio.create_task(self._read_loop(), name=f"indi-{self.endpoint}")
            attrs = ' version="1.7"' + (f" device={quoteattr(device)}" if device else "")
            await self._send(f"<getProperties{attrs}/>\n")

    def devices(self) -> list[str]:
        """Every device the server defined a property of."""
        return sorted({d for d, _ in self.vectors})

    def interfaces(self, device: str) -> list[str]:
        """The interfaces a device declares (DRIVER_INFO.DRIVER_INTERFACE), [] before it says."""
        info = self.vector(device, "DRIVER_INFO")
        raw = info.values.get("DRIVER_INTERFACE") if info is not None else None
        try:
            return interface_names(int(str(raw))) if raw is not None else []
        except ValueError:
            return []

    async def enable_blobs(self, device: str, mode: Literal["Never", "Also", "Only"] = "Also") -> None:
        """enableBLOB: have indiserver send (or stop sending) this device's BLOBs to us."""
        await self._send(f"<enableBLOB device={quoteattr(device)}>{mode}</enableBLOB>\n")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._writer = None

    def vector(self, device: str, name: str) -> IndiVector | None:
        return self.vectors.get((device, name))

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Wait until ``predicate()`` holds (checked at every update); IndiError on timeout or link loss."""
        try:
            async with asyncio.timeout(timeout_s):
                async with self._changed:
                    while not predicate():
                        if self.error is not None:
                            raise IndiError(f"indiserver link lost while waiting for {what}: {self.error}")
                        await self._changed.wait()
        except TimeoutError:
            raise IndiError(f"timed out after {timeout_s:g} s waiting for {what}") from None

    async def send_numbers(self, device: str, name: str, values: Mapping[str, float]) -> None:
        """newNumberVector: ask the driver to set these numbers."""
        body = "".join(f"<oneNumber name={quoteattr(k)}>{v:.10g}</oneNumber>" for k, v in values.items())
        await self._send(
            f"<newNumberVector device={quoteattr(device)} name={quoteattr(name)}>{body}</newNumberVector>\n"
        )

    async def send_switches(self, device: str, name: str, values: Mapping[str, bool]) -> None:
        """newSwitchVector: turn these switches on or off."""
        body = "".join(
            f"<oneSwitch name={quoteattr(k)}>{'On' if v else 'Off'}</oneSwitch>" for k, v in values.items()
        )
        await self._send(
            f"<newSwitchVector device={quoteattr(device)} name={quoteattr(name)}>{body}</newSwitchVector>\n"
        )

    async def send_text(self, device: str, name: str, values: Mapping[str, str]) -> None:
        body = "".join(f"<oneText name={quoteattr(k)}>{escape(v)}</oneText>" for k, v in values.items())
        await self._send(
            f"<newTextVector device={quoteattr(device)} name={quoteattr(name)}>{body}</newTextVector>\n"
        )

    async def _send(self, xml: str) -> None:
        if self._writer is None or self.error is not None:
            raise IndiError(
                f"not connected to indiserver at {self.host}:{self.port}: {self.error or 'closed'}"
            )
        self._writer.write(xml.encode())
        try:
            await self._writer.drain()
        except OSError as exc:
            self.error = repr(exc)
            raise IndiError(f"indiserver write failed: {exc!r}") from exc

    # --- incoming stream ---------------------------------------------------------------

    def feed_element(self, el: Element) -> None:
        """Apply one top-level element of the stream (public so tests can feed crafted XML)."""
        tag = el.tag
        device, name = el.get("device", ""), el.get("name", "")
        if tag == "message":
            if el.get("message"):
                self.messages.append(f"{device}: {el.get('message')}")
            return
        if tag == "delProperty":
            if name:
                self.vectors.pop((device, name), None)
            else:
                for key in [k for k in self.vectors if k[0] == device]:
                    del self.vectors[key]
            return
        m = _TAG.match(tag)
        if m is None or m.group(1) == "new":
            return  # other clients' traffic or an unknown element: not ours to act on
        op, kind = m.group(1), _KINDS[m.group(2)]
        try:
            if not device or not name:
                raise ValueError("missing device or name attribute")
            state = el.get("state", "Idle" if op == "def" else None)
            if state is not None and state not in _STATES:
                raise ValueError(f"bad state {state!r}")
            values = {}
            blobs = {}
            for child in el:
                if not child.tag.endswith(m.group(2)):
                    continue
                element_name = child.get("name")
                if not element_name:
                    raise ValueError(f"{child.tag} without a name")
                values[element_name] = _element_value(kind, child)
                if kind == "blob" and op == "set" and child.tag == "oneBLOB":
                    blobs[element_name] = _blob(child)
        except ValueError as exc:
            reason = f"malformed {tag} {device}.{name}: {exc}"
            self.protocol_errors.append(reason)
            log.warning("indi protocol error", reason=reason)
            return
        vec = self.vectors.get((device, name))
        if op == "def" or vec is None:
            if op == "set":
                self.protocol_errors.append(f"{tag} for undefined property {device}.{name}")
                return
            vec = IndiVector(
                device=device,
                name=name,
                kind=kind,
                state=state or "Idle",  # type: ignore[arg-type]
                perm=el.get("perm", "ro"),
                label=el.get("label", ""),
            )
            self.vectors[(device, name)] = vec
        if state is not None:
            vec.state = state  # type: ignore[assignment]
        vec.values.update(values)
        vec.blobs.update(blobs)
        vec.message = el.get("message", "")
        vec.generation += 1
        if vec.state == "Busy":
            vec.busy_generation = vec.generation
        if vec.message:
            self.messages.append(f"{device}: {vec.message}")

    async def _read_loop(self) -> None:
        assert self._reader is not None
        parser: XMLPullParser[Element] = XMLPullParser(events=("start", "end"))
        parser.feed("<indi>")  # the stream is a sequence of elements without a root
        depth, pending = 0, 0
        root: Element | None = None
        try:
            while True:
                chunk = await self._reader.read(65536)
                if not chunk:
                    raise IndiError("indiserver closed the connection")
                pending += len(chunk)
                parser.feed(chunk)
                for item in parser.read_events():
                    event, el = cast(tuple[str, object], item)
                    if not isinstance(el, Element):
                        continue
                    if event == "start":
                        depth += 1
                        if root is None:
                            root = el
                        continue
                    depth -= 1
                    if depth == 1:
                        self.feed_element(el)
                        pending = 0
                        if root is not None:
                            root.remove(el)
                if pending > self.max_element_bytes:
                    raise IndiError(f"an element larger than {self.max_element_bytes} bytes")
                async with self._changed:
                    self._changed.notify_all()
        except asyncio.CancelledError:
            raise
        except (IndiError, ParseError, OSError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("indi link lost", host=self.host, port=self.port, error=self.error)
            async with self._changed:
                self._changed.notify_all()
