"""Where ``pyros up`` keeps its data, so that the direct-database commands find it (stdlib only)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "DATABASE_URL_ENV",
    "DATA_DIR_ENV",
    "DEFAULT_DATA_DIR",
    "NoLocalDatabase",
    "embedded_database_url",
    "local_database_url",
]

DATA_DIR_ENV = "PYROS_DATA_DIR"
DATABASE_URL_ENV = "PYROS_DATABASE_URL"
DEFAULT_DATA_DIR = Path("var")


class NoLocalDatabase(Exception):
    """``PYROS_DATABASE_URL`` is unset and ``pyros up`` has not created its SQLite file yet."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"no PyROS database at {path}: run `pyros up` first (or give its --data-dir), "
            f"or set {DATABASE_URL_ENV}"
        )


def _sqlite_path(data_dir: Path) -> Path:
    return data_dir.resolve() / "pyros.db"


def embedded_database_url(data_dir: Path) -> str:
    """The database of ``pyros up``: ``PYROS_DATABASE_URL`` if set, else ``<data-dir>/pyros.db``."""
    return os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{_sqlite_path(data_dir)}"


def local_database_url(data_dir: Path) -> str:
    """The database a direct-database command opens: the one ``pyros up`` uses, which must exist.

    Raises :class:`NoLocalDatabase` when ``PYROS_DATABASE_URL`` is unset and the SQLite file is
    missing (rather than creating an empty one or trying a PostgreSQL server that is not there).
    """
    url = os.environ.get(DATABASE_URL_ENV)
    if url:
        return url
    path = _sqlite_path(data_dir)
    if not path.is_file():
        raise NoLocalDatabase(path)
    return f"sqlite:///{path}"
