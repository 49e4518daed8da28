"""Reference stars for astrometry and photometry: the ``Catalogue`` port and its two adapters."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class Stars:
    ra_deg: F64
    dec_deg: F64
    mag: F64

    def __len__(self) -> int:
        return int(self.ra_deg.size)


class Catalogue(Protocol):
    name: str

    def cone(self, ra_deg: float, dec_deg: float, radius_deg: float) -> Stars: ...


class CatalogueUnavailable(RuntimeError):
    """The catalogue cannot be read (index files or tools missing)."""


class Tycho2Index:
    """Tycho-2 from Debian's astrometry.net index files, queried with astrometry.net's query-starkd."""

    name = "Tycho-2"

    def __init__(self, index_dir: str | Path = "/usr/share/astrometry") -> None:
        self.paths = sorted(Path(index_dir).glob("index-tycho2-*.fits"))

    def cone(self, ra_deg: float, dec_deg: float, radius_deg: float) -> Stars:
        from astropy.io import fits

        if not self.paths:
            raise CatalogueUnavailable("no index-tycho2-*.fits (scripts/astrometry.sh ensure)")
        ra: list[F64] = []
        dec: list[F64] = []
        mag: list[F64] = []
        with tempfile.TemporaryDirectory(prefix="pyros-starkd-") as tmp:
            for k, p in enumerate(self.paths):
                out = Path(tmp) / f"{k}.fits"
                cmd = [
                    "query-starkd",
                    "-r",
                    f"{ra_deg:.8f}",
                    "-d",
                    f"{dec_deg:.8f}",
                    "-R",
                    f"{radius_deg:.6f}",
                ]
                try:
                    subprocess.run(
                        [*cmd, "-t", "MAG_VT", "-o", str(out), str(p)],
                        check=True,
                        capture_output=True,
                        timeout=30,
                    )
                except (OSError, subprocess.SubprocessError) as exc:
                    raise CatalogueUnavailable(f"query-starkd on {p.name}: {exc}") from exc
                if not out.exists():
                    continue
                with fits.open(out) as hdul:
                    d: Any = hdul[1].data
                    if d is None or len(d) == 0:
                        continue
                    ra.append(np.asarray(d["RA"], dtype=np.float64))
                    dec.append(np.asarray(d["DEC"], dtype=np.float64))
                    mag.append(np.asarray(d["MAG_VT"], dtype=np.float64))
        if not ra:
            return Stars(np.empty(0), np.empty(0), np.empty(0))
        r, d2, m = np.concatenate(ra), np.concatenate(dec), np.concatenate(mag)
        # the two indexes share stars: one per arcsecond cell
        key = np.round(r * 3600.0 * np.cos(np.radians(d2))).astype(np.int64) * 10_000_000 + np.round(
            d2 * 3600
        ).astype(np.int64)
        _, first = np.unique(key, return_index=True)
        return Stars(r[first], d2[first], m[first])


class SimulatedSkyCatalogue:
    """The simulated world's deep catalogue: the simulators' Tycho-2 stars and seeded faint field.

    A real node plugs in Gaia here; in simulation the faint field *is* the sky's content below
    Tycho-2, so this catalogue knows every star but never an injected transient.
    """

    name = "simulated-sky"

    def __init__(self, sky: Any = None) -> None:
        if sky is None:
            from pyros_simulators.sky import Sky

            sky = Sky(site=None)
        self.sky = sky

    def cone(self, ra_deg: float, dec_deg: float, radius_deg: float) -> Stars:
        s = self.sky.stars(ra_deg, dec_deg, radius_deg)
        return Stars(np.asarray(s.ra_deg), np.asarray(s.dec_deg), np.asarray(s.mag))


def make_catalogue(kind: str, index_dir: str, sky: Any = None) -> Catalogue:
    if kind == "simulated-sky":
        return SimulatedSkyCatalogue(sky)
    return Tycho2Index(index_dir)
