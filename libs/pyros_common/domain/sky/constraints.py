"""Observing constraints: the limits every service applies, with one set of defaults.

In astroplan's style: a :class:`Constraint` says where, over targets x times, it holds.
The base class does the broadcasting (parameters given for every target or one per target;
a result for one time axis or one target axis spread over the grid) and caches each result;
each subclass gives only its formula, ``compute(sky, targets)``, on precomputed arrays.

Pure and light (numpy, no astropy): the astronomy (Sun, Moon, apparent places, sidereal time)
is done by the visibility engine, which hands the arrays over as a :class:`Sky` (what depends
on the times only) and :class:`Targets` (what depends on the targets too).

:class:`Constraints` is the bundle of one target's limits that requests, alerts and the
scheduler carry; ``Constraints.constraints()`` gives its list of :class:`Constraint` objects.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from numpy.typing import NDArray

from pyros_common.domain.sky.sites import horizon_profile

if TYPE_CHECKING:
    from pyros_common.domain.sky.sites import Site

__all__ = [
    "DEFAULT_MAX_AIRMASS",
    "DEFAULT_MIN_ALTITUDE_DEG",
    "AirmassConstraint",
    "AltitudeConstraint",
    "Constraint",
    "Constraints",
    "HorizonMaskConstraint",
    "MoonIlluminationConstraint",
    "MoonSeparationConstraint",
    "NightConstraint",
    "Sky",
    "Targets",
    "holds",
    "margin",
    "site_constraints",
    "stack",
]

# The one set of defaults (requests, alert strategies and the scheduler use these).
DEFAULT_MIN_ALTITUDE_DEG = 30.0
DEFAULT_MAX_AIRMASS = 2.0

FloatArray = NDArray[np.floating[Any]]
BoolArray = NDArray[np.bool_]
Quantity = FloatArray | Callable[[], FloatArray]
Param = float | FloatArray


def _airmass_altitude_deg(max_airmass: Param) -> Param:
    """The altitude (deg) where airmass (sec z) equals ``max_airmass``."""
    if isinstance(max_airmass, float | int):
        return math.degrees(math.asin(1.0 / max_airmass))
    # math on the few distinct values, so that one target's limit is the same in any company
    values, inverse = np.unique(np.asarray(max_airmass, dtype=float), return_inverse=True)
    out: FloatArray = np.array([math.degrees(math.asin(1.0 / v)) for v in values.tolist()])[inverse]
    return out.reshape(np.shape(max_airmass))


# --------------------------------------------------------------------------- what constraints read


class _Arrays:
    """Named arrays given as values or as functions computing them (called at most once)."""

    def __init__(self, quantities: dict[str, Quantity | None]) -> None:
        self._given = {k: v for k, v in quantities.items() if v is not None}
        self._values: dict[str, FloatArray] = {}

    def _get(self, name: str) -> FloatArray:
        if name not in self._values:
            if name not in self._given:
                raise ValueError(f"{type(self).__name__} has no {name!r}: the engine did not provide it")
            v = self._given[name]
            self._values[name] = np.asarray(v() if callable(v) else v, dtype=float)
        return self._values[name]

    def _has(self, name: str) -> bool:
        return name in self._values or name in self._given


class Sky(_Arrays):
    """What depends on the times only: one value per time (t,), or per sample (m,) when paired."""

    def __init__(
        self,
        *,
        sun_altitude_deg: Quantity | None = None,
        moon_altitude_deg: Quantity | None = None,
        moon_illumination: Quantity | None = None,
    ) -> None:
        super().__init__(
            {
                "sun_altitude_deg": sun_altitude_deg,
                "moon_altitude_deg": moon_altitude_deg,
                "moon_illumination": moon_illumination,
            }
        )

    @property
    def sun_altitude_deg(self) -> FloatArray:
        """Apparent Sun altitude, degrees."""
        return self._get("sun_altitude_deg")

    @property
    def moon_altitude_deg(self) -> FloatArray:
        """Topocentric Moon altitude, degrees."""
        return self._get("moon_altitude_deg")

    @property
    def moon_illumination(self) -> FloatArray:
        """Illuminated fraction of the Moon, 0 (new) to 1 (full)."""
        return self._get("moon_illumination")

    def take(self, cols: NDArray[np.intp]) -> Sky:
        """The same sky at the times ``cols`` (for paired samples)."""
        names = ("sun_altitude_deg", "moon_altitude_deg", "moon_illumination")
        taken = {k: self._taker(k, cols) for k in names if self._has(k)}
        return Sky(**taken)

    def _taker(self, name: str, cols: NDArray[np.intp]) -> Callable[[], FloatArray]:
        return lambda: self._get(name)[cols]


class Targets(_Arrays):
    """What depends on the targets: target x time quantities on a grid (n, t), or on paired
    samples (m,) when ``rows`` is given: sample k is target ``rows[k]`` at one time."""

    def __init__(
        self,
        n_targets: int,
        n_times: int,
        *,
        sin_altitude: Quantity | None = None,
        altitude_deg: Quantity | None = None,
        azimuth_deg: Quantity | None = None,
        moon_separation_deg: Quantity | None = None,
        rows: NDArray[np.intp] | None = None,
    ) -> None:
        if altitude_deg is None and sin_altitude is not None:
            altitude_deg = self._degrees
        super().__init__(
            {
                "sin_altitude": sin_altitude,
                "altitude_deg": altitude_deg,
                "azimuth_deg": azimuth_deg,
                "moon_separation_deg": moon_separation_deg,
            }
        )
        self.n_targets = n_targets
        self.n_times = n_times
        self.rows = rows
        self._results: dict[tuple[Constraint, Sky], NDArray[Any]] = {}

    @property
    def shape(self) -> tuple[int, ...]:
        """(n_targets, n_times) on a grid, (n_samples,) when paired."""
        return (self.n_targets, self.n_times) if self.rows is None else (len(self.rows),)

    def _get(self, name: str) -> FloatArray:
        v = super()._get(name)
        if self.rows is None and v.ndim == 1 and self.n_targets == 1:
            v = self._values[name] = v[None, :]  # one target given as a time series
        return v

    def _degrees(self) -> FloatArray:
        s = self.sin_altitude
        out: FloatArray = np.degrees(np.arcsin(np.clip(s, -1.0, 1.0)))
        return out

    @property
    def sin_altitude(self) -> FloatArray:
        """Sine of the target altitude."""
        return self._get("sin_altitude")

    @property
    def altitude_deg(self) -> FloatArray:
        """Geometric target altitude, degrees."""
        return self._get("altitude_deg")

    @property
    def azimuth_deg(self) -> FloatArray:
        """Target azimuth, degrees from north through east."""
        return self._get("azimuth_deg")

    @property
    def moon_separation_deg(self) -> FloatArray:
        """Angular distance from the target to the Moon, degrees."""
        return self._get("moon_separation_deg")

    def take(self, rows: NDArray[np.intp], cols: NDArray[np.intp]) -> Targets:
        """Paired samples (target ``rows[k]`` at time ``cols[k]``) of this grid."""
        if self.rows is not None:
            raise ValueError("take() is for a grid, these targets are already paired samples")
        names = ("sin_altitude", "azimuth_deg", "moon_separation_deg")
        taken = {k: self._taker(k, rows, cols) for k in names if self._has(k)}
        if not self._has("sin_altitude") and self._has("altitude_deg"):
            taken["altitude_deg"] = self._taker("altitude_deg", rows, cols)
        return Targets(self.n_targets, self.n_times, rows=rows, **taken)

    def _taker(self, name: str, rows: NDArray[np.intp], cols: NDArray[np.intp]) -> Callable[[], FloatArray]:
        return lambda: self._get(name)[rows, cols]


# --------------------------------------------------------------------------- constraints


@dataclass(frozen=True, eq=False)
class Constraint(ABC):
    """A limit over targets x times. Subclasses implement only :meth:`compute`.

    Parameters are one value for every target or an array of one value per target;
    ``applies`` (one flag per target) leaves the targets without this limit unconstrained.
    """

    applies: BoolArray | None = field(default=None, kw_only=True, repr=False)

    @abstractmethod
    def compute(self, sky: Sky, targets: Targets) -> NDArray[Any]:
        """The formula: a margin (>= 0 holds; degrees where it has a unit) or a boolean
        (True holds), broadcastable to ``targets.shape``: (t,) for a limit on the times,
        ``per_target(p, targets)`` for the parameters."""

    @staticmethod
    def per_target(value: Param, targets: Targets) -> Param:
        """A parameter shaped to broadcast against ``targets``' quantities."""
        if isinstance(value, float | int):
            return float(value)
        a = np.asarray(value, dtype=float)
        if a.ndim == 0:
            return float(a)
        out: FloatArray = a[targets.rows] if targets.rows is not None else a[:, None]
        return out

    def _raw(self, sky: Sky, targets: Targets) -> NDArray[Any]:
        key = (self, sky)
        if key not in targets._results:
            targets._results[key] = np.asarray(self.compute(sky, targets))
        return targets._results[key]

    def _applies(self, targets: Targets) -> BoolArray | None:
        if self.applies is None:
            return None
        a = np.asarray(self.applies, dtype=bool)
        out: BoolArray = a[targets.rows] if targets.rows is not None else a[:, None]
        return out

    def __call__(self, sky: Sky, targets: Targets) -> FloatArray:
        """The margin over ``targets.shape`` (+inf where it does not apply; a boolean formula
        gives +inf / -inf)."""
        raw = self._raw(sky, targets)
        if raw.dtype == np.bool_:
            raw = np.where(raw, np.inf, -np.inf)
        applies = self._applies(targets)
        if applies is not None:
            raw = np.where(applies, raw, np.inf)
        out: FloatArray = np.broadcast_to(raw, targets.shape)
        return out

    def holds(self, sky: Sky, targets: Targets) -> BoolArray:
        """Where the constraint holds, over ``targets.shape``."""
        raw = self._raw(sky, targets)
        ok = raw if raw.dtype == np.bool_ else raw >= 0.0
        applies = self._applies(targets)
        if applies is not None:
            ok = ok | ~applies
        out: BoolArray = np.broadcast_to(ok, targets.shape)
        return out

    @classmethod
    def stack(cls, instances: Sequence[Self | None]) -> Self:
        """One constraint for many targets from one instance (or None: no limit) per target."""
        present = [c for c in instances if c is not None]
        if not present:
            raise ValueError(f"no {cls.__name__} to stack")
        first = present[0]
        params = [f.name for f in dataclasses.fields(cls) if f.name != "applies"]
        applies = np.array([c is not None for c in instances])
        if all(c is not None and all(getattr(c, p) == getattr(first, p) for p in params) for c in instances):
            return first
        values = {
            p: np.array([getattr(c if c is not None else first, p) for c in instances], float) for p in params
        }
        return cls(**values, applies=None if applies.all() else applies)


class _AltitudeLimit(Constraint):
    """A lowest altitude for the target; subclasses give the limit, ``floor_deg``. On a grid
    the limits are folded into one (see :func:`holds`)."""

    @abstractmethod
    def floor_deg(self, sky: Sky, targets: Targets) -> Param | FloatArray:
        """The lowest allowed altitude, degrees, broadcastable to ``targets.shape``."""

    def compute(self, sky: Sky, targets: Targets) -> FloatArray:
        out: FloatArray = targets.altitude_deg - self.floor_deg(sky, targets)
        return out


@dataclass(frozen=True, eq=False)
class AltitudeConstraint(_AltitudeLimit):
    """The target at least ``min_deg`` above the horizon."""

    min_deg: Param = DEFAULT_MIN_ALTITUDE_DEG

    def floor_deg(self, sky: Sky, targets: Targets) -> Param:
        return self.per_target(self.min_deg, targets)


@dataclass(frozen=True, eq=False)
class AirmassConstraint(_AltitudeLimit):
    """Airmass (sec z, no refraction) at most ``max_airmass``: an altitude limit."""

    max_airmass: Param = DEFAULT_MAX_AIRMASS

    def floor_deg(self, sky: Sky, targets: Targets) -> Param:
        return _airmass_altitude_deg(self.per_target(self.max_airmass, targets))


@dataclass(frozen=True, eq=False)
class HorizonMaskConstraint(_AltitudeLimit):
    """The target above a site's horizon profile: (azimuth_deg, min_altitude_deg) points,
    interpolated linearly in azimuth (and across north)."""

    profile: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if not self.profile:
            raise ValueError("a horizon mask needs at least one (azimuth_deg, min_altitude_deg) point")
        object.__setattr__(self, "profile", horizon_profile(self.profile))

    def floor_deg(self, sky: Sky, targets: Targets) -> FloatArray:
        az = np.array([p[0] for p in self.profile])
        alt = np.array([p[1] for p in self.profile])
        out: FloatArray = np.interp(targets.azimuth_deg, az, alt, period=360.0)
        return out


@dataclass(frozen=True, eq=False)
class NightConstraint(Constraint):
    """The Sun below ``max_sun_altitude_deg`` (the site's night altitude)."""

    max_sun_altitude_deg: float = -18.0

    @classmethod
    def of(cls, site: Site) -> NightConstraint:
        """The night as ``site`` defines it."""
        return cls(site.night_sun_altitude_deg)

    def compute(self, sky: Sky, targets: Targets) -> FloatArray:
        out: FloatArray = self.max_sun_altitude_deg - sky.sun_altitude_deg
        return out


@dataclass(frozen=True, eq=False)
class MoonSeparationConstraint(Constraint):
    """The target at least ``min_deg`` from the Moon."""

    min_deg: Param

    def compute(self, sky: Sky, targets: Targets) -> FloatArray:
        out: FloatArray = targets.moon_separation_deg - self.per_target(self.min_deg, targets)
        return out


@dataclass(frozen=True, eq=False)
class MoonIlluminationConstraint(Constraint):
    """The Moon at most ``max_fraction`` illuminated, or below the horizon (astroplan's
    convention: a bright Moon only hurts while it is up). Margin: the Moon's depth below the
    horizon when too bright."""

    max_fraction: Param

    def compute(self, sky: Sky, targets: Targets) -> FloatArray:
        too_bright = sky.moon_illumination > self.per_target(self.max_fraction, targets)
        out: FloatArray = np.where(too_bright, -sky.moon_altitude_deg, np.inf)
        return out


# --------------------------------------------------------------------------- several at once


def holds(constraints: Sequence[Constraint], sky: Sky, targets: Targets) -> BoolArray:
    """Where every constraint holds, over ``targets.shape``.

    The altitude limits are folded into one lowest altitude and compared on sin(altitude)
    (arcsin is monotonic): one comparison over the grid, and no arcsin of it.
    """
    floors = [c for c in constraints if isinstance(c, _AltitudeLimit)]
    ok: BoolArray | None = None
    if floors:
        floor: Any = None
        for limit in floors:
            f = limit.floor_deg(sky, targets)
            applies = limit._applies(targets)
            if applies is not None:
                f = np.where(applies, f, -90.0)
            floor = f if floor is None else np.maximum(floor, f)
        if targets._has("sin_altitude"):
            ok = targets.sin_altitude >= np.sin(np.radians(floor))
        else:
            ok = targets.altitude_deg >= floor
        ok = np.broadcast_to(ok, targets.shape).copy() if np.shape(ok) != targets.shape else ok
    for c in constraints:
        if isinstance(c, _AltitudeLimit):
            continue
        h = c.holds(sky, targets)
        if ok is None:
            ok = h.copy()
        else:
            ok &= h
    if ok is None:
        return np.ones(targets.shape, dtype=bool)
    return ok


def margin(constraints: Sequence[Constraint], sky: Sky, targets: Targets) -> FloatArray:
    """The smallest margin over every constraint (>= 0: all hold), over ``targets.shape``."""
    g: FloatArray = np.full(targets.shape, np.inf)
    for c in constraints:
        np.minimum(g, c(sky, targets), out=g)
    return g


# --------------------------------------------------------------------------- the bundle


@dataclass(frozen=True)
class Constraints:
    """Observing constraints of one target. Unset optional limits are not applied."""

    min_altitude_deg: float = DEFAULT_MIN_ALTITUDE_DEG
    max_airmass: float | None = DEFAULT_MAX_AIRMASS
    min_moon_separation_deg: float | None = None
    max_moon_illumination: float | None = None

    def __post_init__(self) -> None:
        if not -90.0 <= self.min_altitude_deg < 90.0:
            raise ValueError(f"min_altitude_deg {self.min_altitude_deg} outside [-90, 90)")
        if self.max_airmass is not None and self.max_airmass < 1.0:
            raise ValueError(f"max_airmass {self.max_airmass} is below 1 (the zenith)")
        if self.min_moon_separation_deg is not None and not 0.0 <= self.min_moon_separation_deg <= 180.0:
            raise ValueError(f"min_moon_separation_deg {self.min_moon_separation_deg} outside [0, 180]")
        if self.max_moon_illumination is not None and not 0.0 <= self.max_moon_illumination <= 1.0:
            raise ValueError(f"max_moon_illumination {self.max_moon_illumination} outside [0, 1]")

    @property
    def airmass_altitude_deg(self) -> float:
        """The altitude at which airmass (sec z) equals ``max_airmass``; -90 without a limit."""
        if self.max_airmass is None:
            return -90.0
        return float(_airmass_altitude_deg(self.max_airmass))

    def constraints(self, site: Site | None = None) -> list[Constraint]:
        """These limits as constraint objects; with ``site``, its night and horizon first."""
        out = site_constraints(site) if site is not None else []
        out.append(AltitudeConstraint(self.min_altitude_deg))
        if self.max_airmass is not None:
            out.append(AirmassConstraint(self.max_airmass))
        if self.min_moon_separation_deg is not None:
            out.append(MoonSeparationConstraint(self.min_moon_separation_deg))
        if self.max_moon_illumination is not None:
            out.append(MoonIlluminationConstraint(self.max_moon_illumination))
        return out


def site_constraints(site: Site) -> list[Constraint]:
    """What a site imposes on every target: its night, and its horizon mask if it has one."""
    out: list[Constraint] = [NightConstraint.of(site)]
    if site.horizon:
        out.append(HorizonMaskConstraint(site.horizon))
    return out


def stack(bundles: Sequence[Constraints] | Constraints, n: int) -> list[Constraint]:
    """The constraints of ``n`` targets, one bundle each (or one for all), as one list whose
    parameters are per-target arrays where the bundles differ."""
    if isinstance(bundles, Constraints):
        return bundles.constraints()
    cons = list(bundles)
    if len(cons) != n:
        raise ValueError(f"got {len(cons)} constraints for {n} targets")
    unique = {c: k for k, c in enumerate(dict.fromkeys(cons))}
    if len(unique) == 1:
        return cons[0].constraints() if cons else []
    table = [c.constraints() for c in unique]
    which = np.fromiter((unique[c] for c in cons), np.intp, n)
    kinds = list(dict.fromkeys(type(c) for row in table for c in row))
    out: list[Constraint] = []
    for kind in kinds:
        per_bundle = [next((c for c in row if type(c) is kind), None) for row in table]
        stacked = kind.stack(per_bundle)
        if not any(stacked is c for c in per_bundle):  # parameters differ: one per target
            stacked = _expand(kind, stacked, which)
        out.append(stacked)
    return out


def _expand(kind: type[Constraint], c: Constraint, which: NDArray[np.intp]) -> Constraint:
    """A constraint stacked over the unique bundles, spread to the targets (``which``)."""
    params = {
        f.name: np.asarray(getattr(c, f.name))[which]
        if np.ndim(getattr(c, f.name)) == 1
        else getattr(c, f.name)
        for f in dataclasses.fields(kind)
        if f.name != "applies"
    }
    applies = None if c.applies is None else np.asarray(c.applies)[which]
    return kind(**params, applies=applies)
