"""Calibration masters on disk: built from the night's frames, versioned by camera and night.

``MASTERS/<camera>/<night>/master-<kind>[-<filter>].fits`` (float32, written .tmp and renamed)
with provenance keywords: MASTERTY, CAMERA, NIGHT, NCOMBINE, COMBINE, SRCn (input frames),
BIASUSED / DARKUSED (the masters it was built on). An image gets the latest night's master
not after its own night.
"""

from __future__ import annotations

import os
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from pyros_analyzer.domain.calibration import (
    CalibrationError,
    Master,
    MasterKind,
    master_bias,
    master_dark_rate,
    master_flat,
)


def night_of(when: datetime) -> str:
    """The night an instant belongs to (its evening's date, noon to noon UTC)."""
    return (when - timedelta(hours=12)).date().isoformat()


class MasterStore:
    def __init__(self, root: Path, *, min_frames: int = 3, max_frames: int = 20) -> None:
        self.root = root
        self.min_frames = min_frames
        self.max_frames = max_frames
        self._frames: dict[tuple[str, str, str, str], list[tuple[Path, float]]] = defaultdict(list)
        self._cache: dict[Path, Master] = {}

    def path(self, kind: str, camera: str, night: str, filter: str = "") -> Path:
        name = f"master-{kind}" + (f"-{filter}" if filter else "") + ".fits"
        return self.root / camera / night / name

    def latest(self, kind: MasterKind, camera: str, night: str, filter: str = "") -> Master | None:
        """The master of the latest night up to ``night`` (None when there is none)."""
        folder = self.root / camera
        if not folder.is_dir():
            return None
        nights = sorted((p.name for p in folder.iterdir() if p.is_dir() and p.name <= night), reverse=True)
        for n in nights:
            p = self.path(kind, camera, n, filter if kind == "flat" else "")
            if p.is_file():
                return self._load(p)
        return None

    def _load(self, p: Path) -> Master:
        hit = self._cache.get(p)
        if hit is not None:
            return hit
        from astropy.io import fits

        with fits.open(p, memmap=True) as hdul:
            h = hdul[0].header
            data = np.array(hdul[0].data, dtype=np.float32)
        m = Master(
            kind=str(h["MASTERTY"]),  # type: ignore[arg-type]
            data=data,
            camera=str(h["CAMERA"]),
            night=str(h["NIGHT"]),
            n_frames=int(h["NCOMBINE"]),
            filter=str(h.get("FILTER", "")),
        )
        self._cache[p] = m
        return m

    def add_frame(
        self, kind: MasterKind, camera: str, when: datetime, path: Path, exposure_s: float, filter: str = ""
    ) -> Master | None:
        """Remember one calibration frame; (re)build and return the master once there are enough."""
        night = night_of(when)
        frames = self._frames[(kind, camera, night, filter if kind == "flat" else "")]
        if path in {p for p, _ in frames}:
            return None
        frames.append((path, exposure_s))
        if len(frames) < self.min_frames:
            return None
        return self.build(kind, camera, night, frames[-self.max_frames :], filter)

    def build(
        self, kind: MasterKind, camera: str, night: str, frames: list[tuple[Path, float]], filter: str = ""
    ) -> Master:
        from astropy.io import fits

        data = []
        for p, _ in frames:
            with fits.open(p, memmap=False) as hdul:
                data.append(np.asarray(hdul[0].data, dtype=np.float32))
        exps = [t for _, t in frames]
        used: dict[str, str] = {}
        if kind == "bias":
            pixels = master_bias(data)
        else:
            bias = self.latest("bias", camera, night)
            if bias is None:
                raise CalibrationError(f"no master bias for {camera} to build its {kind}")
            used["BIASUSED"] = f"{bias.night}/{bias.key}"
            if kind == "dark":
                pixels = master_dark_rate(data, exps, bias.data)
            else:
                dark = self.latest("dark", camera, night)
                if dark is not None:
                    used["DARKUSED"] = f"{dark.night}/{dark.key}"
                pixels = master_flat(data, exps, bias.data, dark.data if dark is not None else None)
        m = Master(
            kind,
            pixels,
            camera,
            night,
            len(frames),
            filter if kind == "flat" else "",
            tuple(p.name for p, _ in frames),
        )
        self.write(m, used)
        return m

    def write(self, m: Master, used: dict[str, str] | None = None) -> Path:
        from astropy.io import fits

        h = fits.Header()
        h["MASTERTY"] = (m.kind, "bias, dark (ADU/s) or flat (median 1)")
        h["CAMERA"] = (m.camera, "detector")
        h["NIGHT"] = (m.night, "version: night of the frames")
        h["NCOMBINE"] = (m.n_frames, "frames combined")
        h["COMBINE"] = ("3-sigma MAD-clipped mean", "combination")
        if m.filter:
            h["FILTER"] = (m.filter, "filter of the flat")
        h["BUNIT"] = ("adu/s" if m.kind == "dark" else ("" if m.kind == "flat" else "adu"), "unit")
        for k, v in (used or {}).items():
            h[k] = v
        for i, name in enumerate(m.sources[:99], start=1):
            h[f"SRC{i}"] = name
        h["CREATOR"] = "pyros-analyzer"
        p = self.path(m.kind, m.camera, m.night, m.filter)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        fits.PrimaryHDU(m.data, h).writeto(tmp, overwrite=True)
        os.replace(tmp, p)
        self._cache.pop(p, None)
        return p
