"""Simulated frames for the analyzer's unit tests (the simulators' camera, no devices, no clock)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from numpy.typing import NDArray
from pyros_common.clock import SimulatedClock
from pyros_simulators import VIS, Camera, CameraConfig, ExposureRequest, Sky

START = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
# a quarter-size VIS frame keeps the tests fast (1024 x 1024 at 0.38"/px: 6.5')
SMALL = dataclasses.replace(VIS, shape=(1024, 1024))


@dataclasses.dataclass
class Shot:
    data: NDArray[np.uint16]
    header: fits.Header
    path: Path


class Rig:
    """A camera on a seeded sky; frames rendered straight to FITS."""

    def __init__(self, tmp: Path, config: CameraConfig = SMALL, seed: int = 0) -> None:
        self.tmp = tmp
        self.clock = SimulatedClock(START)
        self.sky = Sky(site=None, seed=seed)
        self.cam = Camera(self.clock, config, sky=self.sky)
        self.n = 0

    def shot(
        self,
        ra: float,
        dec: float,
        *,
        when: datetime = START,
        exposure_s: float = 30.0,
        image_type: Any = "light",
        **kw: Any,
    ) -> Shot:
        self.n += 1
        p = self.tmp / f"f{self.n:03d}.fits"
        req = ExposureRequest(exposure_s, p, ra_deg=ra, dec_deg=dec, image_type=image_type, **kw)
        exp = self.cam.observe(req, when, self.n)
        data, cat = self.cam.render(exp)
        h = self.cam.header(exp, cat)
        fits.PrimaryHDU(data, h).writeto(p)
        return Shot(data, h, p)

    def afterglow(self, ra: float, dec: float, mag60: float = 14.0, t0: datetime | None = None) -> None:
        self.sky.inject_transient(ra, dec, mag60, t0 or START - timedelta(seconds=60), 1.0)


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)
