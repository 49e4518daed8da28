"""Observatory sites: where the telescopes stand, how dark the night must be, which telescopes.

A site is built in (``SITES``) or read from a site file (TOML, see ``load_site`` and
``examples/sites/spm-node.toml``)::

    [site]
    id = "spm-node"
    lat_deg = 31.0439
    lon_deg = -115.4637
    height_m = 2800.0
    night_sun_altitude_deg = -18.0   # optional
    horizon = [[0, 15], [90, 25], [180, 15], [270, 20]]   # optional: [azimuth_deg, min_altitude_deg]

    [[telescopes]]
    id = "gft"
    slew_rate_deg_s = 3.0            # optional
    settle_s = 10.0                  # optional
    overheads = "gft-spm"            # optional: a profile of domain.sky.overheads.OVERHEADS
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def horizon_profile(points: Sequence[Sequence[float]]) -> tuple[tuple[float, float], ...]:
    """Validated (azimuth_deg, min_altitude_deg) points, sorted by azimuth; ValueError otherwise."""
    out: list[tuple[float, float]] = []
    for k, p in enumerate(points):
        if len(p) != 2:
            raise ValueError(f"horizon[{k}]: expected [azimuth_deg, min_altitude_deg], got {list(p)!r}")
        az, alt = p
        if (
            isinstance(az, bool)
            or isinstance(alt, bool)
            or not isinstance(az, int | float)
            or not isinstance(alt, int | float)
        ):
            raise ValueError(f"horizon[{k}]: expected two numbers, got {list(p)!r}")
        if not 0.0 <= az <= 360.0:
            raise ValueError(f"horizon[{k}]: azimuth {az} outside [0, 360]")
        if not 0.0 <= alt <= 90.0:
            raise ValueError(f"horizon[{k}]: altitude {alt} outside [0, 90]")
        out.append((float(az), float(alt)))
    return tuple(sorted(out))


@dataclass(frozen=True)
class Telescope:
    """One telescope of a site (a node): how fast it slews and which overhead profile it has."""

    id: str
    slew_rate_deg_s: float = 3.0
    settle_s: float = 10.0
    overheads: str = "gft-spm"

    def __post_init__(self) -> None:
        if not self.id or not self.id.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"telescope id {self.id!r} must be letters, digits, '-' or '_'")
        if self.slew_rate_deg_s <= 0:
            raise ValueError(f"telescope {self.id}: slew_rate_deg_s must be > 0")
        if self.settle_s < 0:
            raise ValueError(f"telescope {self.id}: settle_s must be >= 0")


@dataclass(frozen=True)
class Site:
    """A telescope site (geodetic WGS84 coordinates; longitude positive east)."""

    name: str
    lat_deg: float
    lon_deg: float
    height_m: float
    night_sun_altitude_deg: float = -18.0
    # Not part of equality or hashing: the ephemeris caches key on the geography alone.
    telescopes: tuple[Telescope, ...] = field(default=(), compare=False)
    # The local horizon: (azimuth_deg, min_altitude_deg) points, interpolated in azimuth; none
    # by default. Sorted by azimuth on construction.
    horizon: tuple[tuple[float, float], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if not -90.0 <= self.lat_deg <= 90.0:
            raise ValueError(f"site {self.name}: lat_deg {self.lat_deg} outside [-90, 90]")
        if not -180.0 <= self.lon_deg <= 360.0:
            raise ValueError(f"site {self.name}: lon_deg {self.lon_deg} outside [-180, 360]")
        if not -90.0 < self.night_sun_altitude_deg < 0.0:
            raise ValueError(f"site {self.name}: night_sun_altitude_deg must be in (-90, 0)")
        if self.horizon:
            try:
                object.__setattr__(self, "horizon", horizon_profile(self.horizon))
            except ValueError as exc:
                raise ValueError(f"site {self.name}: {exc}") from None
        ids = [t.id for t in self.telescopes]
        if len(set(ids)) != len(ids):
            raise ValueError(f"site {self.name}: telescope ids repeat: {ids}")

    def node(self, n: int) -> tuple[Telescope, ...]:
        """The first ``n`` telescopes of the site; ValueError saying what is listed otherwise."""
        if n < 1:
            raise ValueError(f"a node has at least one telescope, got {n}")
        if n > len(self.telescopes):
            listed = ", ".join(t.id for t in self.telescopes) or "none"
            raise ValueError(
                f"site {self.name} lists {len(self.telescopes)} telescope(s) ({listed}); "
                f"{n} asked: list them in a site file (see examples/sites/spm-node.toml)"
            )
        return self.telescopes[:n]


SITES: dict[str, Site] = {
    # SVOM Ground Follow-up Telescope (Colibrí), OAN San Pedro Mártir, Baja California.
    "gft-spm": Site(
        "gft-spm", lat_deg=31.0439, lon_deg=-115.4637, height_m=2800.0, telescopes=(Telescope("gft"),)
    ),
    # Observatoire de Haute-Provence: a northern site with short summer nights.
    "ohp": Site("ohp", lat_deg=43.9308, lon_deg=5.7133, height_m=650.0, telescopes=(Telescope("ohp"),)),
}

_SITE_KEYS = {"id", "lat_deg", "lon_deg", "height_m", "night_sun_altitude_deg", "horizon"}
_TELESCOPE_KEYS = {"id", "slew_rate_deg_s", "settle_s", "overheads"}


def _number(where: str, table: dict[str, Any], key: str, default: float | None = None) -> float:
    """``table[key]`` as a float; ``default`` when absent, ValueError when required or not a number."""
    if key not in table:
        if default is None:
            raise ValueError(f"{where}: missing {key!r}")
        return default
    v = table[key]
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"{where}.{key}: expected a number, got {v!r}")
    return float(v)


def parse_site(data: dict[str, Any], source: str = "site file") -> Site:
    """A Site from a site file's parsed TOML; ValueError naming the file and the key."""
    from pyros_common.domain.sky.overheads import OVERHEADS

    site = data.get("site")
    if not isinstance(site, dict):
        raise ValueError(f"{source}: missing the [site] table")
    unknown = set(site) - _SITE_KEYS
    if unknown:
        raise ValueError(f"{source}: [site] has unknown keys {sorted(unknown)}")
    name = site.get("id")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{source}: [site] needs an 'id' (text)")
    tels = data.get("telescopes")
    if not isinstance(tels, list) or not tels:
        raise ValueError(f"{source}: list at least one [[telescopes]] table")
    telescopes: list[Telescope] = []
    for k, t in enumerate(tels):
        where = f"{source}: telescopes[{k}]"
        if not isinstance(t, dict):
            raise ValueError(f"{where}: expected a table")
        unknown = set(t) - _TELESCOPE_KEYS
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        if not isinstance(t.get("id"), str):
            raise ValueError(f"{where}: needs an 'id' (text)")
        profile = str(t.get("overheads", "gft-spm"))
        if profile not in OVERHEADS:
            raise ValueError(f"{where}.overheads: unknown profile {profile!r}; known: {sorted(OVERHEADS)}")
        try:
            telescopes.append(
                Telescope(
                    t["id"],
                    slew_rate_deg_s=_number(where, t, "slew_rate_deg_s", 3.0),
                    settle_s=_number(where, t, "settle_s", 10.0),
                    overheads=profile,
                )
            )
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    where = f"{source}: [site]"
    horizon = site.get("horizon", [])
    if not isinstance(horizon, list) or not all(isinstance(p, list) for p in horizon):
        raise ValueError(f"{where}.horizon: expected a list of [azimuth_deg, min_altitude_deg] pairs")
    try:
        return Site(
            name,
            lat_deg=_number(where, site, "lat_deg"),
            lon_deg=_number(where, site, "lon_deg"),
            height_m=_number(where, site, "height_m"),
            night_sun_altitude_deg=_number(where, site, "night_sun_altitude_deg", -18.0),
            telescopes=tuple(telescopes),
            horizon=tuple(tuple(p) for p in horizon),
        )
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None


def load_site(path: Path) -> Site:
    """Read a site file (TOML); ValueError with the file name and the problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read site file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"site file {path} is not valid TOML: {exc}") from None
    return parse_site(data, str(path))


_FILE_SITES: dict[str, tuple[tuple[int, int], Site]] = {}


def get_site(name: str) -> Site:
    """The built-in site ``name``, or the site file at that path; KeyError otherwise.

    A site file is read again only when it changes (its size or modification time): services
    look the site up on every event, and parsing the TOML each time cost milliseconds."""
    if name in SITES:
        return SITES[name]
    path = Path(name)
    if path.suffix == ".toml" or path.exists():
        try:
            st = path.stat()
        except OSError:
            st = None
        stamp = (st.st_mtime_ns, st.st_size) if st is not None else None
        cached = _FILE_SITES.get(name)
        if stamp is not None and cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            site = load_site(path)
        except ValueError as exc:
            raise KeyError(str(exc)) from None
        if stamp is not None:
            _FILE_SITES[name] = (stamp, site)
        return site
    raise KeyError(f"unknown site {name!r}; built-in sites: {sorted(SITES)}, or give a site file (.toml)")
