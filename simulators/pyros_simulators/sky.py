"""The simulated sky over a site: stars, sky brightness from the Sun and Moon, injected transients.

The background is a dark-sky surface brightness per camera, brightened by twilight (Sun above
-18 deg: ~0.8 mag per degree) and by the Moon (up to ~3 mag for a full Moon at the zenith).
A transient injected for an alert fades as a power law, flux ~ (t - t0)^-alpha, so it is
fainter in every later frame; what was injected is recorded so a report can show it.
"""

from __future__ import annotations

import math
import threading
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from pyros_common.domain.sky._engine import _moon, _sun_altitude, tolerant
from pyros_common.domain.sky.sites import Site

from pyros_simulators.catalog import Stars, Tycho2, default_tycho2, faint_stars, unit_vectors

TWILIGHT_MAG_PER_DEG = 0.8
FULL_MOON_ZENITH_FACTOR = 20.0  # sky flux ratio, full Moon at the zenith vs dark sky (~3.3 mag)


@dataclass(frozen=True)
class SkyState:
    """What the sky background depends on at one time."""

    sun_alt_deg: float
    moon_alt_deg: float
    moon_illumination: float

    def brightening(self, moon_factor: float = FULL_MOON_ZENITH_FACTOR) -> float:
        """Sky flux relative to the dark sky (>= 1)."""
        twilight = 0.0
        if self.sun_alt_deg > -18.0:
            twilight = 10.0 ** (0.4 * TWILIGHT_MAG_PER_DEG * (min(self.sun_alt_deg, 0.0) + 18.0)) - 1.0
        moon = 0.0
        if self.moon_alt_deg > 0.0:
            moon = moon_factor * self.moon_illumination**2 * math.sin(math.radians(self.moon_alt_deg))
        return 1.0 + twilight + moon


@dataclass(frozen=True)
class Transient:
    """A point source fading as (t - t0)^-decay_index from ``mag_at_t0`` at ``t0 + ref_s``."""

    ra_deg: float
    dec_deg: float
    mag_at_t0: float
    t0: datetime
    decay_index: float = 1.0
    ref_s: float = 60.0  # mag_at_t0 is the magnitude this long after t0 (the power law diverges at t0)
    name: str = ""

    def mag_at(self, when: datetime) -> float | None:
        """Magnitude at ``when``; None before t0 (not there yet)."""
        dt = (when - self.t0).total_seconds()
        if dt <= 0:
            return None
        return self.mag_at_t0 + 2.5 * self.decay_index * math.log10(max(dt, 1e-3) / self.ref_s)


@dataclass(frozen=True)
class Injected:
    """One rendering of a transient into a frame (what the report shows)."""

    ra_deg: float
    dec_deg: float
    mag: float
    when: datetime
    image: str
    name: str = ""


def point_in_error_circle(
    ra_deg: float, dec_deg: float, radius_deg: float, *, seed: int | str = 0
) -> tuple[float, float]:
    """A position uniformly distributed inside the circle, reproducible for a seed (e.g. the alert id)."""
    s = seed if isinstance(seed, int) else zlib.crc32(seed.encode())
    rng = np.random.default_rng([s, 7919])
    r = radius_deg * math.sqrt(float(rng.random()))
    pa = 2.0 * math.pi * float(rng.random())
    return offset_by(ra_deg, dec_deg, r, math.degrees(pa))


def offset_by(ra_deg: float, dec_deg: float, sep_deg: float, pa_deg: float) -> tuple[float, float]:
    """The position ``sep_deg`` away at position angle ``pa_deg`` (north through east)."""
    ra, dec, d, pa = map(math.radians, (ra_deg, dec_deg, sep_deg, pa_deg))
    sin_dec = math.sin(dec) * math.cos(d) + math.cos(dec) * math.sin(d) * math.cos(pa)
    dec2 = math.asin(max(-1.0, min(1.0, sin_dec)))
    ra2 = ra + math.atan2(math.sin(pa) * math.sin(d) * math.cos(dec), math.cos(d) - math.sin(dec) * sin_dec)
    return math.degrees(ra2) % 360.0, math.degrees(dec2)


@dataclass
class Sky:
    """The sky every camera of a site sees: catalogue + faint field + transients, and its brightness."""

    site: Site | None = None  # None: no Sun or Moon (a dark sky at any time)
    catalogue: Tycho2 | None = None  # None: the installed Tycho-2, loaded on first use
    faint_per_deg2: float = 1500.0
    seed: int = 0
    transients: list[Transient] = field(default_factory=list)
    injected: list[Injected] = field(default_factory=list)
    _state_cache: dict[int, SkyState] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def inject_transient(
        self,
        ra_deg: float,
        dec_deg: float,
        mag_at_t0: float,
        t0: datetime,
        decay_index: float = 1.0,
        *,
        ref_s: float = 60.0,
        name: str = "",
    ) -> Transient:
        """Add a fading point source; it appears in every later light frame that covers it."""
        if t0.tzinfo is None:
            raise ValueError("t0 must be timezone-aware")
        tr = Transient(ra_deg % 360.0, dec_deg, mag_at_t0, t0, decay_index, ref_s, name)
        with self._lock:
            self.transients.append(tr)
        return tr

    def record(self, entry: Injected) -> None:
        with self._lock:
            self.injected.append(entry)

    def stars(self, ra_deg: float, dec_deg: float, radius_deg: float) -> Stars:
        """Catalogue and faint stars within ``radius_deg``; CatalogueMissing without Tycho-2."""
        cat = self.catalogue or default_tycho2()
        return Stars.concat(cat.cone(ra_deg, dec_deg, radius_deg), self.faint(ra_deg, dec_deg, radius_deg))

    def faint(self, ra_deg: float, dec_deg: float, radius_deg: float) -> Stars:
        """Only the seeded faint field (below the Tycho-2 limit)."""
        return faint_stars(ra_deg, dec_deg, radius_deg, per_deg2=self.faint_per_deg2, seed=self.seed)

    def transients_at(
        self, ra_deg: float, dec_deg: float, radius_deg: float, when: datetime
    ) -> list[tuple[Transient, float]]:
        """(transient, magnitude now) of the transients within ``radius_deg`` that have started."""
        centre = unit_vectors(np.array([ra_deg]), np.array([dec_deg]))[0]
        cos_r = math.cos(math.radians(radius_deg))
        out: list[tuple[Transient, float]] = []
        with self._lock:
            current = list(self.transients)
        for tr in current:
            mag = tr.mag_at(when)
            if mag is None:
                continue
            v = unit_vectors(np.array([tr.ra_deg]), np.array([tr.dec_deg]))[0]
            if float(v @ centre) >= cos_r:
                out.append((tr, mag))
        return out

    def state(self, when: datetime) -> SkyState:
        """Sun and Moon at ``when`` (cached per minute: the background changes slowly)."""
        if self.site is None:
            return SkyState(sun_alt_deg=-90.0, moon_alt_deg=-90.0, moon_illumination=0.0)
        minute = math.floor(when.timestamp() / 60.0)
        hit = self._state_cache.get(minute)
        if hit is None:
            hit = _sky_state(self.site, datetime.fromtimestamp(minute * 60.0, tz=UTC))
            if len(self._state_cache) > 1024:
                self._state_cache.clear()
            self._state_cache[minute] = hit
        return hit


@tolerant
def _sky_state(site: Site, when: datetime) -> SkyState:
    t = np.zeros(1)
    moon = _moon(site, when, t)
    return SkyState(
        sun_alt_deg=float(_sun_altitude(site, when, t)[0]),
        moon_alt_deg=float(moon.alt_deg[0]),
        moon_illumination=float(moon.illumination[0]),
    )
