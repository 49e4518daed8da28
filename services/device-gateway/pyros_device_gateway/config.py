"""Which driver each device uses: the ``[[devices]]`` tables of the site file (PYROS_SITE).

    [[devices]]
    id = "telescope"            # device id on the bus (DeviceCommand.device_id)
    kind = "telescope"          # telescope, camera, filterwheel, focuser, dome
    driver = "indi"             # indi or simulator
    indi = "127.0.0.1:7624"     # indiserver host:port (indi only; default PYROS_INDI_HOST:PORT)
    indi_device = "Telescope Simulator"   # INDI device name (default: the Debian simulator's)

Cameras also take ``telescope`` and ``filterwheel`` (the device ids giving the pointing and the
filter; default: the first of that kind), ``focal_length_mm`` (default: the CCD's SCOPE_INFO, then
the mount's TELESCOPE_INFO) and ``instrument`` (the INSTRUME header; default: the INDI device name).

Devices the site file does not list keep their simulators; without any ``[[devices]]`` every
device is simulated. Every INDI device of one indiserver shares one client (one TCP link).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast, get_args

from pyros_common.clock import Clock
from pyros_common.domain.sky.sites import Site

from pyros_device_gateway.drivers.base import DeviceDriver, DeviceKind
from pyros_device_gateway.drivers.indi import (
    IndiCameraDriver,
    IndiClient,
    IndiDomeDriver,
    IndiFilterWheelDriver,
    IndiFocuserDriver,
    IndiTelescopeDriver,
)

INDI_KINDS = ("telescope", "camera", "filterwheel", "focuser", "dome")
DEFAULT_INDI_DEVICE = {
    "telescope": "Telescope Simulator",
    "camera": "CCD Simulator",
    "filterwheel": "Filter Simulator",
    "focuser": "Focuser Simulator",
    "dome": "Dome Simulator",
}
_KEYS = {"id", "kind", "driver", "indi", "indi_device"}
_CAMERA_KEYS = {"telescope", "filterwheel", "focal_length_mm", "instrument"}


@dataclass(frozen=True)
class DeviceSpec:
    """One ``[[devices]]`` table, checked."""

    id: str
    kind: DeviceKind
    driver: str  # "indi" or "simulator"
    indi_host: str = "127.0.0.1"
    indi_port: int = 7624
    indi_device: str = ""
    telescope: str | None = None
    filterwheel: str | None = None
    focal_length_mm: float | None = None
    instrument: str | None = None


def parse_endpoint(text: str, default_port: int = 7624) -> tuple[str, int]:
    """``host:port`` (or ``host``) as (host, port); ValueError otherwise."""
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host, port = text.strip(), str(default_port)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port, got {text!r}")
    return host, int(port)


def parse_devices(
    data: Mapping[str, Any], source: str = "site file", *, indi_default: tuple[str, int] | None = None
) -> list[DeviceSpec]:
    """The device tables of a parsed site file; ValueError naming the file, the table and the key."""
    raw = data.get("devices", [])
    if isinstance(raw, dict):  # [devices] with one table per id: [devices.telescope]
        raw = [{"id": k, **v} if isinstance(v, dict) else v for k, v in raw.items()]
    if not isinstance(raw, list):
        raise ValueError(f"{source}: devices must be [[devices]] tables")
    specs: list[DeviceSpec] = []
    for k, t in enumerate(raw):
        where = f"{source}: devices[{k}]"
        if not isinstance(t, dict):
            raise ValueError(f"{where}: expected a table")
        kind = t.get("kind")
        unknown = set(t) - _KEYS - (_CAMERA_KEYS if kind == "camera" else set())
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        device_id = t.get("id")
        if not isinstance(device_id, str) or not device_id:
            raise ValueError(f"{where}: needs an 'id' (text)")
        where = f"{source}: device {device_id!r}"
        if kind not in get_args(DeviceKind):
            raise ValueError(f"{where}: kind must be one of {list(get_args(DeviceKind))}, got {kind!r}")
        driver = t.get("driver", "simulator")
        if driver not in ("indi", "simulator"):
            raise ValueError(f"{where}: driver must be 'indi' or 'simulator', got {driver!r}")
        extra: dict[str, Any] = {}
        if driver == "indi":
            if kind not in INDI_KINDS:
                raise ValueError(f"{where}: no INDI driver for a {kind}; INDI drives {list(INDI_KINDS)}")
            endpoint = t.get("indi")
            try:
                if endpoint is not None:
                    extra["indi_host"], extra["indi_port"] = parse_endpoint(str(endpoint))
                elif indi_default is not None:
                    extra["indi_host"], extra["indi_port"] = indi_default
            except ValueError as exc:
                raise ValueError(f"{where}.indi: {exc}") from None
            name = t.get("indi_device", DEFAULT_INDI_DEVICE[kind])
            if not isinstance(name, str) or not name:
                raise ValueError(f"{where}.indi_device: expected the INDI device name (text)")
            extra["indi_device"] = name
        for key in ("telescope", "filterwheel", "instrument"):
            if key in t:
                if not isinstance(t[key], str):
                    raise ValueError(f"{where}.{key}: expected text")
                extra[key] = t[key]
        if "focal_length_mm" in t:
            f = t["focal_length_mm"]
            if isinstance(f, bool) or not isinstance(f, int | float) or f <= 0:
                raise ValueError(f"{where}.focal_length_mm: expected a positive number [mm], got {f!r}")
            extra["focal_length_mm"] = float(f)
        specs.append(DeviceSpec(id=device_id, kind=cast(DeviceKind, kind), driver=driver, **extra))
    ids = [s.id for s in specs]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"{source}: devices listed twice: {dupes}")
    return specs


def load_devices(site: str, *, indi_default: tuple[str, int] | None = None) -> list[DeviceSpec]:
    """The devices of the site file ``site`` (PYROS_SITE); [] for a built-in site or no [[devices]]."""
    path = Path(site)
    if not (path.suffix == ".toml" or path.is_file()):
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read site file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"site file {path} is not valid TOML: {exc}") from None
    return parse_devices(data, str(path), indi_default=indi_default)


def build_drivers(
    specs: list[DeviceSpec],
    *,
    simulated: Mapping[str, DeviceDriver],
    clock: Clock,
    site: Site,
    telescope_name: str,
    horizon_limit_deg: float = 15.0,
) -> dict[str, DeviceDriver]:
    """device id -> driver: the simulators, with the listed devices on the driver the site file says."""
    drivers = dict(simulated)
    clients: dict[tuple[str, int], IndiClient] = {}

    def client(spec: DeviceSpec) -> IndiClient:
        key = (spec.indi_host, spec.indi_port)
        if key not in clients:
            clients[key] = IndiClient(*key)
        return clients[key]

    for spec in specs:
        if spec.driver == "simulator":
            if spec.id not in simulated:
                raise ValueError(
                    f"device {spec.id!r}: no simulator of that id; simulated: {sorted(simulated)}"
                )
            if simulated[spec.id].kind != spec.kind:
                raise ValueError(
                    f"device {spec.id!r}: the simulator is a {simulated[spec.id].kind}, not a {spec.kind}"
                )
            continue
        common: dict[str, Any] = {"indi_device": spec.indi_device, "clock": clock}
        if spec.kind == "telescope":
            drivers[spec.id] = IndiTelescopeDriver(
                spec.id, client(spec), site=site, horizon_limit_deg=horizon_limit_deg, **common
            )
        elif spec.kind == "filterwheel":
            drivers[spec.id] = IndiFilterWheelDriver(spec.id, client(spec), **common)
        elif spec.kind == "focuser":
            drivers[spec.id] = IndiFocuserDriver(spec.id, client(spec), **common)
        elif spec.kind == "dome":
            drivers[spec.id] = IndiDomeDriver(spec.id, client(spec), **common)
    for spec in specs:  # cameras last: they read the mount and the wheel, whatever drives those
        if spec.driver != "indi" or spec.kind != "camera":
            continue
        mount = _companion(drivers, spec.telescope, "telescope", spec.id)
        wheel = _companion(drivers, spec.filterwheel, "filterwheel", spec.id)
        drivers[spec.id] = IndiCameraDriver(
            spec.id,
            client(spec),
            site=site,
            telescope_name=telescope_name,
            instrument=spec.instrument,
            telescope=mount,
            filterwheel=wheel,
            focal_length_mm=spec.focal_length_mm,
            indi_device=spec.indi_device,
            clock=clock,
        )
    return drivers


def _companion(
    drivers: Mapping[str, DeviceDriver], wanted: str | None, kind: str, camera: str
) -> DeviceDriver | None:
    if wanted is not None:
        drv = drivers.get(wanted)
        if drv is None or drv.kind != kind:
            raise ValueError(f"device {camera!r}: {kind} = {wanted!r} is not a {kind} device")
        return drv
    of_kind = [d for d in drivers.values() if d.kind == kind]
    indi = [d for d in of_kind if d.driver == "indi"]
    candidates = indi or of_kind
    return candidates[0] if candidates else None
