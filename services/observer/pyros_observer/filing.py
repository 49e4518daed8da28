"""The data layout's effects on disk: folders opened and closed (``_active``), images moved in, links.

Every name comes from ``domain.layout``; every move is an ``os.replace`` inside the data directory,
so a reader sees an image whole or not at all.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import shutil
from collections.abc import Set as AbstractSet
from pathlib import Path, PurePosixPath
from typing import Any

import structlog

from pyros_observer.domain import layout

log = structlog.get_logger("pyros.observer")


class FilingError(Exception):
    """An image could not be filed; the message says which and why."""


def _replace_file(src: Path, dest: Path) -> None:
    """Atomic move; across file systems a copy written ``.tmp`` then renamed (the source removed)."""
    try:
        os.replace(src, dest)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        tmp = dest.with_name(dest.name + ".tmp")
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        src.unlink()


def _unique(path: Path) -> Path:
    """``path``, or ``<stem>-<n><suffix>`` when taken: an image is never overwritten."""
    if not path.exists() and not path.is_symlink():
        return path
    n = 1
    while True:
        cand = path.with_name(f"{path.stem}-{n}{path.suffix}")
        if not cand.exists() and not cand.is_symlink():
            return cand
        n += 1


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


class Filing:
    """The observer's writer of the data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir)

    def abs(self, rel: PurePosixPath) -> Path:
        return self.root.joinpath(*rel.parts)

    def rel(self, path: Path) -> PurePosixPath:
        return PurePosixPath(path.relative_to(self.root).as_posix())

    def prepare(self) -> None:
        """PRODUCED_DATA and EXTERNAL_ENTITIES/{GIC,FSC}/{TO,FROM}."""
        self.abs(PurePosixPath(layout.PRODUCED)).mkdir(parents=True, exist_ok=True)
        for d in layout.external_dirs():
            self.abs(d).mkdir(parents=True, exist_ok=True)

    # --- folders ------------------------------------------------------------------------

    def _open(self, parent: Path, name: str) -> Path:
        """``parent/<name>_active``: made, or renamed back from ``<name>`` (a resumed part)."""
        running, ended = parent / layout.active(name), parent / name
        if running.is_dir():
            return running
        if ended.is_dir():
            os.replace(ended, running)
            self._relink(running)
            return running
        running.mkdir(parents=True, exist_ok=True)
        return running

    def _close(self, parent: Path, name: str) -> Path | None:
        """``parent/<name>_active`` renamed ``<name>`` (idempotent); links follow the images."""
        running, ended = parent / layout.active(name), parent / name
        if not running.is_dir():
            return ended if ended.is_dir() else None
        if ended.exists():  # both forms (a crash between two renames): merge into the ended one
            self._merge(running, ended)
        else:
            os.replace(running, ended)
        self._relink(ended)
        return ended

    def _merge(self, src: Path, dest: Path) -> None:
        for child in src.iterdir():
            target = dest / child.name
            if child.is_dir() and target.is_dir():
                self._merge(child, target)
            else:
                _replace_file(child, _unique(target))
        with contextlib.suppress(OSError):
            src.rmdir()

    def request_parent(self) -> Path:
        return self.abs(PurePosixPath(layout.PRODUCED))

    def find_request(self, request_id: str) -> Path | None:
        """The request's folder, running or ended."""
        name = layout.safe_name(request_id)
        for cand in (self.request_parent() / layout.active(name), self.request_parent() / name):
            if cand.is_dir():
                return cand
        return None

    def open_request(self, request_id: str, *, owner: str, program: str) -> Path:
        folder = self._open(self.request_parent(), layout.safe_name(request_id))
        self.write_manifest(folder, request_id=request_id, owner=owner, program=program)
        return folder

    def write_manifest(self, folder: Path, *, request_id: str, owner: str, program: str) -> None:
        _write_json(folder / layout.MANIFEST, {"request_id": request_id, "owner": owner, "program": program})

    def update_owner(self, request_id: str, *, owner: str, program: str) -> None:
        folder = self.find_request(request_id)
        if folder is not None:
            self.write_manifest(folder, request_id=request_id, owner=owner, program=program)

    def close_request(self, request_id: str) -> Path | None:
        return self._close(self.request_parent(), layout.safe_name(request_id))

    def close_requests(self, *, keep: AbstractSet[str] = frozenset()) -> list[Path]:
        """Every running request folder closed (the night is over), but those of ``keep`` (ids)."""
        kept = {layout.safe_name(k) for k in keep}
        out: list[Path] = []
        parent = self.request_parent()
        if not parent.is_dir():
            return out
        for folder in sorted(parent.iterdir()):
            name = layout.strip_active(folder.name)
            if folder.is_dir() and folder.name.endswith(layout.ACTIVE) and name not in kept:
                closed = self._close(parent, name)
                if closed is not None:
                    out.append(closed)
        return out

    def open_sequence(self, request_id: str, sequence_id: str, *, owner: str, program: str) -> Path:
        req = self.open_request(request_id, owner=owner, program=program)
        return self._open(req, layout.safe_name(sequence_id))

    def close_sequence(self, request_id: str, sequence_id: str) -> Path | None:
        req = self.find_request(request_id)
        if req is None:
            return None
        return self._close(req, layout.safe_name(sequence_id))

    # --- images -------------------------------------------------------------------------

    def file_image(self, written: str, dest: PurePosixPath) -> PurePosixPath:
        """Move the image device-gateway wrote (``written``, relative) to ``dest``; the path it got."""
        src_rel = layout.inside(written)
        if src_rel is None:
            raise FilingError(f"image path {written!r} is outside the data directory")
        src = self.abs(src_rel)
        if not src.is_file():
            raise FilingError(f"image {written} not found in the data directory")
        target = _unique(self.abs(dest))
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            _replace_file(src, target)
        except OSError as exc:
            raise FilingError(f"cannot file image {written} as {dest}: {exc.strerror or exc}") from exc
        return self.rel(target)

    def link_gic(self, image: PurePosixPath) -> PurePosixPath:
        """``EXTERNAL_ENTITIES/GIC/TO/<image name>`` -> the image (relative symlink, made atomically)."""
        link = layout.gic_link(image)
        self._symlink(link, image)
        return link

    def _symlink(self, link: PurePosixPath, target: PurePosixPath) -> None:
        path = self.abs(link)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        os.symlink(layout.link_target(link, target), tmp)
        os.replace(tmp, path)

    def _relink(self, folder: Path) -> None:
        """After a rename: the GIC links of the images in ``folder`` point at their new place.

        Only links still there are renewed (the GIC removes those it has taken)."""
        for image in folder.rglob("*.fits"):
            rel = self.rel(image)
            link = self.abs(layout.gic_link(rel))
            if link.is_symlink():
                self._symlink(layout.gic_link(rel), rel)

    # --- read side (the download route; it may run in another process) ----------------------

    # --- the accepted requests the observer knows (taken up again after a restart) ---------

    def _known(self, request_id: str) -> Path:
        return self.root / layout.KNOWN_REQUESTS / f"{layout.safe_name(request_id)}.json"

    def keep_known(self, request_id: str, body: dict[str, Any]) -> None:
        """Remember an accepted request's document (written .tmp and renamed)."""
        path = self._known(request_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_json(path, {"request_id": request_id, **body})

    def known(self, request_id: str) -> dict[str, Any] | None:
        """What ``keep_known`` remembered of the request, if anything."""
        try:
            return dict(json.loads(self._known(request_id).read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None

    def forget_known(self, request_id: str) -> None:
        self._known(request_id).unlink(missing_ok=True)


def request_owner(root: Path, request_id: str) -> str | None:
    """Owner recorded for ``request_id`` by the observer, or None when it has no folder."""
    folder = Filing(root).find_request(request_id)
    if folder is None:
        return None
    try:
        data = json.loads((folder / layout.MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    owner = data.get("owner") if isinstance(data, dict) else None
    return owner if isinstance(owner, str) else None


def request_images(root: Path, request_id: str) -> list[Path]:
    """Every image of ``request_id`` on disk, sorted."""
    folder = Filing(root).find_request(request_id)
    if folder is None:
        return []
    return sorted(p for p in folder.rglob("*.fits") if p.is_file())


def gather_download(root: Path, request_id: str, now: dt.datetime) -> tuple[PurePosixPath, int]:
    """Hard links of the request's images in ``DOWNLOAD/<request>-<stamp>/`` (built ``.tmp``, renamed).

    Hard links, not symlinks: they follow an image through the ``_active`` renames and cost no
    space. Across file systems (never inside one data directory) the image is copied.
    """
    filing = Filing(root)
    folder = filing.find_request(request_id)
    images = request_images(root, request_id)
    attempt = 0
    while True:
        rel = layout.download_dir(request_id, now, attempt)
        final = filing.abs(rel)
        if not final.exists():
            break
        attempt += 1
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for image in images:
            assert folder is not None
            inner = PurePosixPath(image.relative_to(folder).as_posix())
            dest = tmp.joinpath(*(layout.strip_active(p) for p in inner.parts))
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(image, dest)
            except OSError:
                shutil.copy2(image, dest)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return rel, len(images)
