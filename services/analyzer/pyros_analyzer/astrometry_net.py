"""astrometry.net's solve-field on our source list, hinted by the header WCS (the real component).

Debian's Tycho-2 index files hold quads of 30'-42' (4108) and 42'-60' (4109): solve-field can only
solve a field whose diagonal reaches the smallest quad, so ``solvable`` says when to try it; the
GFT's 13' VIS field never is (see docs/analyzer.md), a wide camera is.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from pyros_analyzer.domain.astrometry import SolveFailed, TanWcs

F64 = NDArray[np.float64]
SMALLEST_QUAD_ARCMIN = 30.0  # index-4108 (SCALE_L = 0.00873 rad)
INDEX_MAG_LIMIT = 12.5  # Tycho-2
MIN_INDEX_STARS = 8


def available() -> bool:
    return shutil.which("solve-field") is not None


def solvable(shape: tuple[int, int], scale_arcsec: float, catalogue_mag: F64) -> bool:
    """Worth trying: the frame's diagonal holds the smallest quad with room (x 1.2) and the field has
    at least ``MIN_INDEX_STARS`` stars as bright as the index's (a quad is four of them)."""
    ny, nx = shape
    wide = math.hypot(nx, ny) * scale_arcsec / 60.0 >= 1.2 * SMALLEST_QUAD_ARCMIN
    return wide and int(np.sum(catalogue_mag < INDEX_MAG_LIMIT)) >= MIN_INDEX_STARS


def solve_field(
    x: F64,
    y: F64,
    flux: F64,
    shape: tuple[int, int],
    guess: TanWcs,
    *,
    radius_deg: float,
    timeout_s: float = 20.0,
    max_sources: int = 60,
) -> TanWcs:
    """The WCS solve-field finds for these sources (0-based pixels); SolveFailed with its reason."""
    from astropy.io import fits

    if not available():
        raise SolveFailed("solve-field missing", "install astrometry.net (scripts/astrometry.sh ensure)")
    ny, nx = shape
    order = np.argsort(flux)[::-1][:max_sources]
    centre = guess.pix2world(np.array([(nx - 1) / 2.0]), np.array([(ny - 1) / 2.0]))
    scale = guess.scale_arcsec
    with tempfile.TemporaryDirectory(prefix="pyros-solve-") as tmp:
        xyls = Path(tmp) / "sources.xyls"
        cols = [
            fits.Column("X", "D", array=x[order] + 1.0),
            fits.Column("Y", "D", array=y[order] + 1.0),
            fits.Column("FLUX", "D", array=flux[order]),
        ]
        fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(xyls)
        cmd = [
            "solve-field",
            str(xyls),
            "--dir",
            tmp,
            "--overwrite",
            "--no-plots",
            "--no-remove-lines",
            "--width",
            str(nx),
            "--height",
            str(ny),
            "--x-column",
            "X",
            "--y-column",
            "Y",
            "--sort-column",
            "FLUX",
            "--scale-units",
            "arcsecperpix",
            "--scale-low",
            f"{scale * 0.95:.5f}",
            "--scale-high",
            f"{scale * 1.05:.5f}",
            "--ra",
            f"{float(centre[0][0]):.6f}",
            "--dec",
            f"{float(centre[1][0]):.6f}",
            "--radius",
            f"{radius_deg:.4f}",
            "--crpix-center",
            "--tweak-order",
            "1",
            "--cpulimit",
            str(max(1, int(timeout_s))),
            "--new-fits",
            "none",
            "--corr",
            "none",
            "--rdls",
            "none",
            "--match",
            "none",
            "--index-xyls",
            "none",
            "--solved",
            "none",
        ]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s + 10, check=False)
        except subprocess.TimeoutExpired:
            raise SolveFailed("solve-field timeout", f"{timeout_s:g} s") from None
        wcs_file = Path(tmp) / "sources.wcs"
        if not wcs_file.exists():
            tail = (done.stdout + done.stderr).strip().splitlines()[-1:] or [""]
            raise SolveFailed("solve-field found no solution", tail[0][:200])
        h = fits.getheader(wcs_file)
    try:
        return TanWcs.from_header(dict(h.items()))
    except ValueError as exc:
        raise SolveFailed("solve-field wrote no TAN WCS", str(exc)) from None
