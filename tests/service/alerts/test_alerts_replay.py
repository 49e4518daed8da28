"""Acceptance: ``pyros alerts replay`` over the shared corpus, in MANIFEST order."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

PYROS = Path(sys.executable).parent / "pyros"


def _utc(text: str) -> datetime:
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _sentinel(row: dict[str, str]) -> bool:
    """No position, or a sender placeholder: GRM error -1, GBM Alert 0/0/0, SNEWS all-sky 0/0/360."""
    if "" in (row["ra_deg"], row["dec_deg"], row["error_radius_deg"]):
        return True
    ra, dec, err = float(row["ra_deg"]), float(row["dec_deg"]), float(row["error_radius_deg"])
    return err < 0 or err >= 180 or (ra, dec, err) == (0.0, 0.0, 0.0)


def test_replay_corpus_in_manifest_order(voevents_dir: Path) -> None:
    with (voevents_dir / "MANIFEST.tsv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    files = [str(voevents_dir / r["path"]) for r in rows]

    # A subprocess, as an operator runs it (and its logging setup stays out of this process).
    result = subprocess.run(
        [str(PYROS), "alerts", "replay", *files], capture_output=True, text=True, timeout=300
    )

    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == len(rows)
    groups: dict[str, set[str]] = defaultdict(set)
    for row, out in zip(rows, lines, strict=True):
        assert set(out) == {
            "ivorn",
            "accepted",
            "reason",
            "alert_id",
            "action",
            "mission",
            "ra_deg",
            "dec_deg",
            "error_deg",
            "trigger_time",
            "request_id",
        }
        assert out["accepted"] is True, (row["path"], out["reason"])
        assert out["ivorn"] == row["ivorn"]
        assert out["mission"] == row["mission"]
        assert out["action"] in {"created", "updated", "retracted", "ignored", "duplicate"}
        assert abs((_utc(out["trigger_time"]) - _utc(row["isotime"])).total_seconds()) <= 0.001, row["path"]
        cols = (("ra_deg", "ra_deg"), ("dec_deg", "dec_deg"), ("error_deg", "error_radius_deg"))
        for key, col in cols:
            if _sentinel(row):
                assert out[key] is None, (row["path"], key)
            else:
                assert out[key] is not None and abs(out[key] - float(row[col])) <= 1e-4, (row["path"], key)
        if row["same_event_group"]:
            groups[row["same_event_group"]].add(out["alert_id"])
    assert {g: len(ids) for g, ids in groups.items()} == {g: 1 for g in groups}
    for cross in ("EVT20260421_", "GW170817+GRB170817A", "GRB170912_"):
        assert any(g.startswith(cross) for g in groups), cross
    # Distinct groups are distinct alerts.
    all_ids = [next(iter(ids)) for ids in groups.values()]
    assert len(set(all_ids)) == len(all_ids)
    assert "replayed 41 packets: 41 accepted" in result.stderr
