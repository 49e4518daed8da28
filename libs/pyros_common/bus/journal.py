"""The in-process bus's journal: what ``pyros up`` has published survives a crash of the process.

Kafka keeps every event until each consumer group has committed past it; ``pyros up`` has no
broker, so without this an acknowledged packet still in the in-process queue died with the
process (issue 10, row 1). The journal is one SQLite file beside the database:

- ``publish`` writes the event (topic, key, value) before it is queued, so an intake that
  answers 202 after publishing has it on disk;
- each (topic, group) keeps a committed position, written after the handler's effect, exactly
  as a Kafka consumer commits its offset;
- at start, every (topic, group) gets again what it had not committed: at-least-once, like
  Kafka, and the handlers are idempotent.

WAL mode with ``synchronous=NORMAL``: a commit survives the death of the process (``kill -9``),
not a power cut; production runs on Kafka (acks=all) for that. Events every group has
committed are pruned.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

PRUNE_EVERY = 2000  # publishes between two prunes


class BusJournal:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS events (
                seq INTEGER PRIMARY KEY, topic TEXT NOT NULL, key BLOB, value BLOB
            );
            CREATE INDEX IF NOT EXISTS events_topic ON events (topic, seq);
            CREATE TABLE IF NOT EXISTS positions (
                topic TEXT NOT NULL, grp TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (topic, grp)
            );
            """
        )
        self._since_prune = 0

    def append(self, topic: str, key: bytes | None, value: bytes | None) -> int:
        """Store one event; its sequence number (the journal's offset)."""
        cur = self._db.execute("INSERT INTO events (topic, key, value) VALUES (?, ?, ?)", (topic, key, value))
        self._since_prune += 1
        seq = cur.lastrowid
        assert seq is not None
        return seq

    def commit(self, topic: str, group: str, seq: int) -> None:
        """``group`` has handled every event of ``topic`` up to ``seq``."""
        self._db.execute(
            "INSERT INTO positions (topic, grp, seq) VALUES (?, ?, ?) "
            "ON CONFLICT (topic, grp) DO UPDATE SET seq = max(seq, excluded.seq)",
            (topic, group, seq),
        )

    def pending(self, topic: str, group: str) -> list[tuple[int, bytes | None, bytes | None]]:
        """What ``group`` had not committed on ``topic``, oldest first."""
        row = self._db.execute(
            "SELECT seq FROM positions WHERE topic = ? AND grp = ?", (topic, group)
        ).fetchone()
        after = int(row[0]) if row else 0
        return [
            (int(seq), key, value)
            for seq, key, value in self._db.execute(
                "SELECT seq, key, value FROM events WHERE topic = ? AND seq > ? ORDER BY seq", (topic, after)
            )
        ]

    def pending_high(self) -> int:
        """The newest sequence number on disk (0: empty)."""
        return int(self._db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])

    def due_prune(self) -> bool:
        return self._since_prune >= PRUNE_EVERY

    def prune(self, subscriptions: Iterable[tuple[str, str]]) -> int:
        """Drop the events every subscribed group has committed (and those nobody reads)."""
        self._since_prune = 0
        by_topic: dict[str, list[str]] = {}
        for topic, group in subscriptions:
            by_topic.setdefault(topic, []).append(group)
        removed = 0
        for topic, groups in by_topic.items():
            marks = [
                self._db.execute(
                    "SELECT seq FROM positions WHERE topic = ? AND grp = ?", (topic, g)
                ).fetchone()
                for g in groups
            ]
            if any(m is None for m in marks):
                continue
            low = min(int(m[0]) for m in marks if m is not None)
            removed += self._db.execute(
                "DELETE FROM events WHERE topic = ? AND seq <= ?", (topic, low)
            ).rowcount
        read = set(by_topic)
        unread = [t for (t,) in self._db.execute("SELECT DISTINCT topic FROM events") if t not in read]
        for topic in unread:
            removed += self._db.execute("DELETE FROM events WHERE topic = ?", (topic,)).rowcount
        return removed

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM events").fetchone()[0])

    def close(self) -> None:
        self._db.close()
