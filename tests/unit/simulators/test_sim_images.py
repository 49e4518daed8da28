"""Camera images: Tycho-2 stars where the true WCS puts them, a header WCS to solve, calibration frames, transients."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from numpy.typing import NDArray
from pyros_common.clock import SimulatedClock
from pyros_common.domain.sky.sites import get_site
from pyros_simulators import (
    NIR,
    VIS,
    Camera,
    CameraConfig,
    ExposureRequest,
    Sky,
    SkyState,
    Tycho2,
    point_in_error_circle,
)
from pyros_simulators.astro import altaz_to_radec, separation_deg

START = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
SITE = get_site("gft-spm")
# a wide test camera (25.6') so that a field holds a handful of Tycho-2 stars
WIDE = dataclasses.replace(VIS, shape=(1024, 1024), pixel_scale_arcsec=1.5, seeing_fwhm_arcsec=3.0)


def render(
    cam: Camera, req: ExposureRequest, when: datetime, frame: int = 1
) -> tuple[NDArray[np.uint16], fits.Header]:
    exp = cam.observe(req, when, frame)
    data, catalogue = cam.render(exp)
    return data, cam.header(exp, catalogue)


def rich_field(tycho2: Tycho2, clock: SimulatedClock) -> tuple[float, float]:
    """The field high in the sky at START with the most Tycho-2 stars within 10' (deterministic)."""
    best, where = -1, (0.0, 0.0)
    for alt in (60.0, 70.0, 80.0):
        for az in range(0, 360, 15):
            ra, dec = altaz_to_radec(
                alt, float(az), lat_deg=SITE.lat_deg, lon_deg=SITE.lon_deg, when=clock.now()
            )
            n = len(tycho2.cone(ra, dec, 10.0 / 60.0))
            if n > best:
                best, where = n, (ra, dec)
    assert best >= 6, "no field with 6 Tycho-2 stars found"
    return where


def centroid(data: NDArray[np.uint16], x: float, y: float, r: int = 6) -> tuple[float, float]:
    ix, iy = round(x), round(y)
    cut = data[iy - r : iy + r + 1, ix - r : ix + r + 1].astype(np.float64)
    cut = np.clip(cut - np.median(data[iy - 3 * r : iy + 3 * r, ix - 3 * r : ix + 3 * r]), 0, None)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return ix + float((cut * xx).sum() / cut.sum()), iy + float((cut * yy).sum() / cut.sum())


def aperture_flux(data: NDArray[np.uint16], x: float, y: float, r: float = 6.0) -> float:
    yy, xx = np.mgrid[0 : data.shape[0], 0 : data.shape[1]]
    d = np.hypot(xx - x, yy - y)
    sky = float(np.median(data[(d > 15) & (d < 25)]))
    return float((data[d <= r] - sky).sum())


def test_light_frame_stars_sit_where_the_true_wcs_says_not_the_header(tycho2: Tycho2, tmp_path: Path) -> None:
    clock = SimulatedClock(START)
    ra, dec = rich_field(tycho2, clock)
    cam = Camera(clock, WIDE, sky=Sky(site=SITE, catalogue=tycho2))
    data, h = render(cam, ExposureRequest(2.0, tmp_path / "l.fits", ra_deg=ra, dec_deg=dec), clock.now())

    header_wcs, true_wcs = WCS(h), WCS(h, key="T")
    assert (
        h["CTYPE1"] == "RA---TAN" and h["CRVAL1"] == pytest.approx(ra) and h["CRVAL2"] == pytest.approx(dec)
    )
    error_arcmin = separation_deg(h["CRVAL1"], h["CRVAL2"], h["CRVAL1T"], h["CRVAL2T"]) * 60
    assert 1.0 <= error_arcmin <= 4.0  # a few arcmin to solve
    assert (h["TRUERA"], h["TRUEDEC"]) == pytest.approx((h["CRVAL1T"], h["CRVAL2T"]))
    assert 0 < abs(h["TRUEROT"]) <= 0.5
    assert h["STARCAT"] == "Tycho-2"

    stars = tycho2.cone(h["TRUERA"], h["TRUEDEC"], 0.3)
    x, y = true_wcs.all_world2pix(stars.ra_deg, stars.dec_deg, 0)
    ny, nx = data.shape
    on = (x > 20) & (x < nx - 20) & (y > 20) & (y < ny - 20)
    brightest = np.argsort(np.where(on, stars.mag, np.inf))[:5]
    assert on.sum() >= 5
    hx, hy = header_wcs.all_world2pix(stars.ra_deg[brightest], stars.dec_deg[brightest], 0)
    for k, i in enumerate(brightest):
        cx, cy = centroid(data, float(x[i]), float(y[i]))
        assert math.hypot(cx - x[i], cy - y[i]) < 0.5, (stars.mag[i], cx, cy, x[i], y[i])
        assert math.hypot(hx[k] - x[i], hy[k] - y[i]) > 30  # the header WCS is off by arcminutes

    # reproducible per exposure: the same frame number gives the same error, another one another
    _, again = render(cam, ExposureRequest(2.0, tmp_path / "l.fits", ra_deg=ra, dec_deg=dec), clock.now())
    _, other = render(cam, ExposureRequest(2.0, tmp_path / "l.fits", ra_deg=ra, dec_deg=dec), clock.now(), 2)
    assert again["CRVAL1T"] == h["CRVAL1T"] and other["CRVAL1T"] != h["CRVAL1T"]


def test_standard_headers(tmp_path: Path) -> None:
    clock = SimulatedClock(START)
    cfg = dataclasses.replace(VIS, shape=(128, 128))
    cam = Camera(clock, cfg, sky=Sky(site=SITE, faint_per_deg2=0.0))
    ra, dec = altaz_to_radec(70.0, 100.0, lat_deg=SITE.lat_deg, lon_deg=SITE.lon_deg, when=START)
    req = ExposureRequest(
        5.0, tmp_path / "h.fits", filter="r", object="GRB 260301A", ra_deg=ra, dec_deg=dec,
        request_id="R1", sequence_id="S2", album_id="A3", plan_id="P4", frame=7,
    )  # fmt: skip
    _, h = render(cam, req, START)
    for key in ("DATE-OBS", "EXPTIME", "FILTER", "OBJECT", "RA", "DEC", "AIRMASS", "TELESCOP", "INSTRUME"):
        assert key in h, key
    assert h["IMAGETYP"] == "light" and h["REQUEST"] == "R1" and h["SEQUENCE"] == "S2"
    assert h["ALBUM"] == "A3" and h["PLAN"] == "P4" and h["FRAME"] == 7
    assert h["AIRMASS"] == pytest.approx(1 / math.sin(math.radians(70.0)), abs=0.05)
    assert h["MOONALT"] > 0  # a bright Moon is up at START


def test_bias_dark_and_flat_levels() -> None:
    clock = SimulatedClock(START)
    cfg = dataclasses.replace(NIR, shape=(256, 256), prnu=0.0)
    cam = Camera(clock, cfg, sky=Sky(site=SITE))
    adu = 1.0 / cfg.gain_e_per_adu

    bias, _ = render(cam, ExposureRequest(0.0, Path("b.fits"), image_type="bias"), START)
    assert float(np.median(bias)) == pytest.approx(cfg.bias_adu, abs=1.0)
    assert float(np.std(bias)) == pytest.approx(cfg.read_noise_e * adu, rel=0.05)

    dark, hd = render(cam, ExposureRequest(600.0, Path("d.fits"), image_type="dark"), START)
    level = cfg.dark_e_per_s * 600.0 * adu  # at the set point, no light
    assert float(np.median(dark)) - cfg.bias_adu == pytest.approx(level, rel=0.03)
    assert "CRVAL1" not in hd and hd["IMAGETYP"] == "dark"

    flat, _ = render(cam, ExposureRequest(4.0, Path("f.fits"), image_type="flat"), START)
    centre = float(np.median(flat[118:138, 118:138])) - cfg.bias_adu
    corner = float(np.median(flat[:8, :8])) - cfg.bias_adu
    assert centre == pytest.approx((cfg.flat_e_per_s * 4.0 + cfg.dark_e_per_s * 4.0) * adu, rel=0.02)
    assert corner / centre == pytest.approx(1.0 - cfg.vignetting, abs=0.02)
    assert float(np.std(flat[118:138, 118:138])) < 0.02 * centre  # uniform, no stars


def test_sky_background_brightens_with_the_moon_and_twilight() -> None:
    dark = SkyState(sun_alt_deg=-40.0, moon_alt_deg=-10.0, moon_illumination=1.0)
    assert dark.brightening() == 1.0
    assert SkyState(-40.0, 60.0, 0.95).brightening() > 10
    assert SkyState(-40.0, 60.0, 0.05).brightening() < 1.1
    assert 10 < SkyState(-12.0, -10.0, 0.0).brightening() < 1000
    sky = Sky(site=SITE)
    assert sky.state(START).moon_alt_deg > 40  # the test night has a bright Moon high up
    assert sky.state(START + timedelta(hours=9)).sun_alt_deg > -18


def test_an_injected_transient_appears_and_fades(tycho2: Tycho2, tmp_path: Path) -> None:
    clock = SimulatedClock(START)
    sky = Sky(site=SITE, catalogue=tycho2)
    cam = Camera(clock, VIS, sky=sky)
    ra, dec = altaz_to_radec(75.0, 200.0, lat_deg=SITE.lat_deg, lon_deg=SITE.lon_deg, when=START)
    t_ra, t_dec = point_in_error_circle(ra, dec, 1.0 / 60.0, seed="ivo://nasa.gsfc.gcn/SVOM#test")
    assert separation_deg(ra, dec, t_ra, t_dec) <= 1.0 / 60.0
    assert point_in_error_circle(ra, dec, 1.0 / 60.0, seed="ivo://nasa.gsfc.gcn/SVOM#test") == (t_ra, t_dec)
    sky.inject_transient(t_ra, t_dec, 14.0, START - timedelta(minutes=10), decay_index=1.0, name="GRB")

    fluxes = []
    for frame, when in ((1, START), (2, START + timedelta(hours=2))):
        req = ExposureRequest(60.0, tmp_path / f"t{frame}.fits", ra_deg=ra, dec_deg=dec)
        data, h = render(cam, req, when, frame)
        x, y = WCS(h, key="T").all_world2pix([[t_ra, t_dec]], 0)[0]
        assert h["INJRA1"] == pytest.approx(t_ra) and "INJMAG1" in h
        cx, cy = centroid(data, float(x), float(y), r=5)
        assert math.hypot(cx - x, cy - y) < 0.5
        fluxes.append(aperture_flux(data, float(x), float(y)))
    assert fluxes[1] < fluxes[0]
    expected = (10 * 60 + 30) / (130 * 60 + 30)  # (t - t0)^-1 at mid-exposure
    assert fluxes[1] / fluxes[0] == pytest.approx(expected, rel=0.3)


async def test_expose_records_what_it_injected(tycho2: Tycho2, tmp_path: Path) -> None:
    clock = SimulatedClock(START)
    sky = Sky(site=SITE, catalogue=tycho2)
    cam = Camera(clock, dataclasses.replace(VIS, shape=(512, 512), pointing_error_arcmin=(0.0, 0.1)), sky=sky)
    ra, dec = altaz_to_radec(75.0, 200.0, lat_deg=SITE.lat_deg, lon_deg=SITE.lon_deg, when=START)
    sky.inject_transient(ra, dec, 15.0, START - timedelta(minutes=5))
    sky.inject_transient((ra + 5.0) % 360, dec, 15.0, START - timedelta(minutes=5))  # elsewhere
    task = asyncio.create_task(cam.expose(ExposureRequest(1.0, tmp_path / "r.fits", ra_deg=ra, dec_deg=dec)))
    for _ in range(5):
        await asyncio.sleep(0)
    clock.advance(1.0 + VIS.readout_s)
    await task
    assert len(sky.injected) == 1
    inj = sky.injected[0]
    assert (inj.ra_deg, inj.dec_deg) == (ra, dec) and inj.image.endswith("r.fits")
    assert inj.mag == pytest.approx(15.0 + 2.5 * math.log10(300.5 / 60.0), abs=1e-6)


def test_a_2048_frame_is_a_full_uint16_picture(tycho2: Tycho2) -> None:
    """The GFT's VIS frame at full size (how fast it renders is benchmarks/night.py's business,
    not a test's)."""
    clock = SimulatedClock(START)
    cam = Camera(clock, VIS, sky=Sky(site=SITE, catalogue=tycho2))
    assert VIS.shape == (2048, 2048) and VIS.field_arcmin[0] == pytest.approx(12.97, abs=0.01)
    ra, dec = altaz_to_radec(60.0, 90.0, lat_deg=SITE.lat_deg, lon_deg=SITE.lon_deg, when=START)
    exp = cam.observe(ExposureRequest(30.0, Path("s.fits"), ra_deg=ra, dec_deg=dec), START, 1)
    data, _ = cam.render(exp)
    assert data.shape == (2048, 2048) and data.dtype == np.uint16
    assert int(data.max()) > int(np.median(data))  # stars above the sky, not a flat frame


def test_a_config_is_a_camera(tmp_path: Path) -> None:
    cfg = CameraConfig(detector="VIS", shape=(100, 200), pixel_scale_arcsec=0.5)
    assert cfg.field_arcmin == (200 * 0.5 / 60, 100 * 0.5 / 60)
