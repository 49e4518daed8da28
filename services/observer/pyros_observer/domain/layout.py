"""The data layout on disk: pure naming, every path relative to the data directory.

    PRODUCED_DATA/<request>_active/<sequence>_active/<album>/plan-<n>-<filter>/<image>.fits
    PRODUCED_DATA/calibration/<night>/<detector>/<type>/<image>.fits
    EXTERNAL_ENTITIES/{GIC,FSC}/{TO,FROM}/          (GIC/TO: one symlink per finished image)
    DOWNLOAD/<request>-<timestamp>/                 (hard links of a request's images)
    OBSERVER/requests/<request>.json                (the accepted requests the observer knows)

A folder carries ``_active`` while its part runs; the suffix goes when it ends. A name made by
``safe_name`` never ends in ``_active``, so removing the suffix is never ambiguous.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import posixpath
import re
from pathlib import PurePosixPath

ACTIVE = "_active"
PRODUCED = "PRODUCED_DATA"
CALIBRATION = "calibration"
EXTERNAL = "EXTERNAL_ENTITIES"
DOWNLOAD = "DOWNLOAD"
MANIFEST = "request.json"
KNOWN_REQUESTS = "OBSERVER/requests"
ENTITIES = ("GIC", "FSC")
DIRECTIONS = ("TO", "FROM")
MAX_NAME = 100  # per name; a file name joins a few of them and stays under 255 bytes

SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9._-]")


def safe_name(text: str) -> str:
    """A file-system safe name for ``text`` (an id, a filter): itself when it already is one.

    Anything else is cleaned and given a hash of the original, so that two different ids never
    share a folder ('a:b' and 'a/b' both clean to 'a_b').
    """
    if SAFE.match(text) and not text.endswith(ACTIVE):
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    cleaned = _UNSAFE_CHAR.sub("_", text)
    cleaned = cleaned.lstrip("._-")[: MAX_NAME - 9] or "x"
    return f"{cleaned}-{digest}"


def active(name: str) -> str:
    """The running form of a folder name."""
    return strip_active(name) + ACTIVE


def strip_active(name: str) -> str:
    """The finished form of a folder name (idempotent: every trailing ``_active`` goes)."""
    while name.endswith(ACTIVE):
        name = name[: -len(ACTIVE)]
    return name


def settled(path: PurePosixPath) -> PurePosixPath:
    """Where an image written under ``_active`` folders lies once its sequence and request ended."""
    return PurePosixPath(*(strip_active(p) for p in path.parts))


def candidates(path: PurePosixPath) -> list[PurePosixPath]:
    """Every place a produced image may be now: as written, sequence ended, request ended too."""
    parts = path.parts
    if len(parts) < 3 or parts[0] != PRODUCED:
        return [path]
    req, seq, rest = parts[1], parts[2], parts[3:]
    out: list[PurePosixPath] = []
    for r in (req, strip_active(req)):
        for s in (seq, strip_active(seq)):
            p = PurePosixPath(PRODUCED, r, s, *rest)
            if p not in out:
                out.append(p)
    return out


def request_dir(request_id: str, *, running: bool) -> PurePosixPath:
    name = safe_name(request_id)
    return PurePosixPath(PRODUCED, active(name) if running else name)


def sequence_dir(request_id: str, sequence_id: str, *, request_running: bool, running: bool) -> PurePosixPath:
    name = safe_name(sequence_id)
    return request_dir(request_id, running=request_running) / (active(name) if running else name)


def plan_dir(plan_index: int, filter_name: str) -> str:
    """``plan-1-r``: the plan's number (from 1) and its filter."""
    if plan_index < 0:
        raise ValueError("plan_index must be >= 0")
    return f"plan-{plan_index + 1}-{safe_name(filter_name)}"


def image_name(
    *, request_id: str, sequence_id: str, album: str, plan_index: int, filter_name: str, frame: int
) -> str:
    """The file name of one science image: unique in the whole data directory (it names the request)."""
    if frame < 0 or plan_index < 0:
        raise ValueError("frame and plan_index must be >= 0")
    return (
        f"{safe_name(request_id)}_{safe_name(sequence_id)}_{safe_name(album)}"
        f"_p{plan_index + 1}_{safe_name(filter_name)}_{frame:04d}.fits"
    )


def image_path(
    *, request_id: str, sequence_id: str, album: str, plan_index: int, filter_name: str, frame: int
) -> PurePosixPath:
    """Where a science image is filed while its sequence runs."""
    return (
        sequence_dir(request_id, sequence_id, request_running=True, running=True)
        / safe_name(album)
        / plan_dir(plan_index, filter_name)
        / image_name(
            request_id=request_id,
            sequence_id=sequence_id,
            album=album,
            plan_index=plan_index,
            filter_name=filter_name,
            frame=frame,
        )
    )


def calibration_path(
    *, night: dt.date, detector: str, image_type: str, sequence_id: str, frame: int
) -> PurePosixPath:
    """``PRODUCED_DATA/calibration/<night>/<detector>/<type>/<sequence>_<detector>_<type>_<frame>.fits``."""
    det, kind = safe_name(detector), safe_name(image_type)
    name = f"{safe_name(sequence_id)}_{det}_{kind}_{frame:04d}.fits"
    return PurePosixPath(PRODUCED, CALIBRATION, night.isoformat(), det, kind, name)


def external_dirs() -> list[PurePosixPath]:
    """``EXTERNAL_ENTITIES/{GIC,FSC}/{TO,FROM}``, created at start."""
    return [PurePosixPath(EXTERNAL, e, d) for e in ENTITIES for d in DIRECTIONS]


def gic_link(image: PurePosixPath) -> PurePosixPath:
    """The link announcing a finished image to the GIC (named as the image)."""
    return PurePosixPath(EXTERNAL, "GIC", "TO", image.name)


def link_target(link: PurePosixPath, target: PurePosixPath) -> str:
    """The relative text of a symlink at ``link`` pointing at ``target`` (the data dir can move)."""
    return posixpath.relpath(str(target), str(link.parent))


def download_dir(request_id: str, when: dt.datetime, attempt: int = 0) -> PurePosixPath:
    """``DOWNLOAD/<request>-<YYYYmmddTHHMMSSZ>`` (``-<n>`` for a second one in the same second)."""
    stamp = when.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    suffix = f"-{attempt}" if attempt else ""
    return PurePosixPath(DOWNLOAD, f"{safe_name(request_id)}-{stamp}{suffix}")


def inside(relative: str) -> PurePosixPath | None:
    """``relative`` as a path inside the data directory, or None when it is absolute or climbs out."""
    if not relative or "\x00" in relative:
        return None
    p = PurePosixPath(relative)
    if p.is_absolute():
        return None
    norm = posixpath.normpath(relative)
    if norm in (".", "") or norm == ".." or norm.startswith("../"):
        return None
    return PurePosixPath(norm)


def night_of(when: dt.datetime, lon_deg: float) -> dt.date:
    """The night a time belongs to, named by the local date of its evening (local noon to noon)."""
    local = when.astimezone(dt.UTC) + dt.timedelta(hours=lon_deg / 15.0) - dt.timedelta(hours=12)
    return local.date()
