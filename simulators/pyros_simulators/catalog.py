"""Stars for the simulated sky: Tycho-2 from the astrometry.net index files, plus a seeded faint field.

The Debian packages ``astrometry-data-tycho2-08`` / ``-09`` install index files under
``/usr/share/astrometry`` (``scripts/astrometry.sh ensure``). Each holds the index's stars in a
kd-tree: extension ``kdtree_data_stars`` is one row of three native-endian ``uint32`` per star,
the unit vector (x, y, z) scaled into the tree's bounding box, ``kdtree_range_stars`` the seven
doubles (lower bounds[3], upper bounds[3], scale) to undo that scaling, and the tag-along table
``MAG_VT`` the Tycho VT magnitude of each star in the same order (the index was built sorted by
MAG_VT). The primary header's ``ENDIAN`` card tells little- from big-endian files. The two
indexes share most stars; they are merged and de-duplicated to 1 arcsec.

Tycho-2 stops near V = 12, so a 13' field holds only a few of its stars; below that the sky
is filled by ``faint_stars``: a deterministic random field per sky cell (the same stars every
time the same field is observed), so that an image looks crowded like the real sky.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from numpy.typing import NDArray

from pyros_simulators.base import SimulatorError

FloatArray = NDArray[np.float64]
TYCHO2_DIR = Path("/usr/share/astrometry")
TYCHO2_PACKAGES = ("astrometry-data-tycho2-08", "astrometry-data-tycho2-09")


class CatalogueMissing(SimulatorError):
    """No Tycho-2 index file where we looked; says how to install them."""


@dataclass(frozen=True)
class Stars:
    """Stars in a field: ICRS positions [deg] and V-like magnitudes; ``catalogue`` marks Tycho-2 ones."""

    ra_deg: FloatArray
    dec_deg: FloatArray
    mag: FloatArray
    catalogue: NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.ra_deg.size)

    @staticmethod
    def concat(*parts: Stars) -> Stars:
        return Stars(
            np.concatenate([p.ra_deg for p in parts]),
            np.concatenate([p.dec_deg for p in parts]),
            np.concatenate([p.mag for p in parts]),
            np.concatenate([p.catalogue for p in parts]),
        )


def unit_vectors(ra_deg: FloatArray, dec_deg: FloatArray) -> FloatArray:
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def tycho2_index_files(directory: Path | None = None) -> list[Path]:
    """The Tycho-2 index files (``PYROS_TYCHO2_DIR`` or /usr/share/astrometry), sorted by name."""
    where = directory or Path(os.environ.get("PYROS_TYCHO2_DIR", str(TYCHO2_DIR)))
    return sorted(where.glob("index-tycho2-*.fits")) if where.is_dir() else []


def read_index_stars(path: Path) -> tuple[FloatArray, NDArray[np.float32]]:
    """(unit vectors (n, 3), MAG_VT (n,)) of one astrometry.net index file, decoded from its kd-tree."""
    with fits.open(path, memmap=True) as hdul:
        ext = {str(h.header.get("TTYPE1", "")): h for h in hdul[1:]}
        try:
            data, rng_hdu, mag_hdu = ext["kdtree_data_stars"], ext["kdtree_range_stars"], ext["MAG_VT"]
        except KeyError as exc:
            raise SimulatorError(f"{path} is not an astrometry.net index with magnitudes: no {exc}") from None
        little = str(hdul[0].header.get("ENDIAN", "04:03:02:01")) == "04:03:02:01"
        n = int(data.header["NAXIS2"])
        if int(data.header["NAXIS1"]) != 12:
            raise SimulatorError(f"{path}: expected 3 x uint32 per star in kdtree_data_stars")
        data_at, range_at = data.fileinfo()["datLoc"], rng_hdu.fileinfo()["datLoc"]
        mag = np.asarray(mag_hdu.data["MAG_VT"], dtype=np.float32)
    order = "<" if little else ">"
    lo_hi_scale = np.fromfile(path, dtype=f"{order}f8", count=7, offset=range_at)
    raw = np.fromfile(path, dtype=f"{order}u4", count=3 * n, offset=data_at).reshape(n, 3)
    xyz = lo_hi_scale[:3] + raw * (1.0 / lo_hi_scale[6])
    xyz /= np.linalg.norm(xyz, axis=1)[:, None]
    return xyz, mag


class Tycho2:
    """The merged Tycho-2 stars of the index files, with a cone search cached per field."""

    def __init__(self, paths: Sequence[Path] | None = None, *, cache_fields: int = 64) -> None:
        self.paths = list(paths) if paths is not None else tycho2_index_files()
        if not self.paths:
            raise CatalogueMissing(
                f"no Tycho-2 index files (index-tycho2-*.fits) in {os.environ.get('PYROS_TYCHO2_DIR', TYCHO2_DIR)}; "
                f"install them with `scripts/astrometry.sh ensure` (Debian: {' '.join(TYCHO2_PACKAGES)})"
            )
        parts = [read_index_stars(p) for p in self.paths]
        xyz = np.concatenate([p[0] for p in parts])
        mag = np.concatenate([p[1] for p in parts]).astype(np.float64)
        # the same star in two indexes: keep one (positions agree to the kd-tree's ~1e-9 rad)
        q = np.round((xyz + 1.0) * 2e5).astype(np.int64)  # ~1 arcsec cells, 19 bits per axis
        _, first = np.unique((q[:, 0] << 38) | (q[:, 1] << 19) | q[:, 2], return_index=True)
        first.sort()
        self.xyz = np.ascontiguousarray(xyz[first])
        self.mag = mag[first]
        self._cache: OrderedDict[tuple[float, float, float], Stars] = OrderedDict()
        self._cache_fields = cache_fields
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return int(self.mag.size)

    def cone(self, ra_deg: float, dec_deg: float, radius_deg: float) -> Stars:
        """Stars within ``radius_deg`` of (ra, dec), cached per field (to 1e-4 deg)."""
        key = (round(ra_deg % 360.0, 4), round(dec_deg, 4), round(radius_deg, 4))
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        centre = unit_vectors(np.array([ra_deg]), np.array([dec_deg]))[0]
        inside = np.flatnonzero(self.xyz @ centre >= math.cos(math.radians(radius_deg)))
        v = self.xyz[inside]
        stars = Stars(
            np.degrees(np.arctan2(v[:, 1], v[:, 0])) % 360.0,
            np.degrees(np.arcsin(np.clip(v[:, 2], -1.0, 1.0))),
            self.mag[inside],
            np.ones(inside.size, dtype=bool),
        )
        with self._lock:
            self._cache[key] = stars
            while len(self._cache) > self._cache_fields:
                self._cache.popitem(last=False)
        return stars


_DEFAULT: Tycho2 | None = None
_DEFAULT_LOCK = threading.Lock()


def default_tycho2() -> Tycho2:
    """The Tycho-2 stars of the installed index files, loaded once per process (~0.2 s)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = Tycho2()
        return _DEFAULT


# --- the faint sky below Tycho-2 -----------------------------------------------------------

_CELL_DEG = 0.25


def faint_stars(
    ra_deg: float,
    dec_deg: float,
    radius_deg: float,
    *,
    per_deg2: float = 1500.0,
    mag_range: tuple[float, float] = (12.5, 19.0),
    slope: float = 0.35,
    seed: int = 0,
) -> Stars:
    """A seeded random star field (dN/dm ~ 10^(slope m)) that is the same whenever a cell is seen."""
    if per_deg2 <= 0:
        return Stars(np.empty(0), np.empty(0), np.empty(0), np.empty(0, dtype=bool))
    bands = int(180.0 / _CELL_DEG)
    j0 = max(0, math.floor((dec_deg - radius_deg + 90.0) / _CELL_DEG))
    j1 = min(bands - 1, math.floor((dec_deg + radius_deg + 90.0) / _CELL_DEG))
    m0, m1 = mag_range
    span = 10.0 ** (slope * (m1 - m0)) - 1.0
    out_ra: list[FloatArray] = []
    out_dec: list[FloatArray] = []
    out_mag: list[FloatArray] = []
    for j in range(j0, j1 + 1):
        lo, hi = -90.0 + j * _CELL_DEG, -90.0 + (j + 1) * _CELL_DEG
        n_cells = max(1, int(360.0 * math.cos(math.radians((lo + hi) / 2)) / _CELL_DEG))
        width = 360.0 / n_cells
        cos_max = math.cos(math.radians(min(89.9, max(abs(lo), abs(hi)))))
        half = radius_deg / cos_max if abs(dec_deg) + radius_deg < 89.0 else 180.0
        if half >= 180.0:
            cells = range(n_cells)
        else:
            k0, k1 = math.floor((ra_deg - half) / width), math.floor((ra_deg + half) / width)
            cells = range(k0, k1 + 1)
        area = width * (math.degrees(math.sin(math.radians(hi))) - math.degrees(math.sin(math.radians(lo))))
        for k in {c % n_cells for c in cells}:
            rng = np.random.default_rng([seed, j, k])
            n = int(rng.poisson(per_deg2 * area))
            out_ra.append((k + rng.random(n)) * width)
            s_lo, s_hi = math.sin(math.radians(lo)), math.sin(math.radians(hi))
            out_dec.append(np.degrees(np.arcsin(s_lo + rng.random(n) * (s_hi - s_lo))))
            out_mag.append(m0 + np.log10(1.0 + rng.random(n) * span) / slope)
    if not out_ra:
        return Stars(np.empty(0), np.empty(0), np.empty(0), np.empty(0, dtype=bool))
    ra, dec, mag = np.concatenate(out_ra), np.concatenate(out_dec), np.concatenate(out_mag)
    centre = unit_vectors(np.array([ra_deg]), np.array([dec_deg]))[0]
    keep = unit_vectors(ra, dec) @ centre >= math.cos(math.radians(radius_deg))
    return Stars(ra[keep], dec[keep], mag[keep], np.zeros(int(keep.sum()), dtype=bool))
