"""Faults in a simulated night, as an operator would stage them with ``pyros night --fault``:
the telescope disconnected mid-night pauses observing within 2 s of night time and observing
resumes when it reconnects; without the NIR camera, VIS keeps observing."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYROS = Path(sys.executable).parent / "pyros"


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("faults")
    cmd = [
        str(PYROS), "night", "--simulate", "--date", "2026-12-15",
        "--workload", str(ROOT / "examples" / "night.json"),
        "--fault", "telescope:disconnect@03:00", "--fault", "telescope:clear@03:20",
        "--fault", "cam-nir:disconnect@04:00",
        "--report", str(out), "--quiet",
    ]  # fmt: skip
    done = subprocess.run(
        cmd, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report: dict[str, object] = json.loads((out / "report.json").read_text())
    return report


def t(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s)


def test_a_telescope_disconnected_pauses_within_2_s_and_observing_resumes(night: dict[str, object]) -> None:
    pauses = night["pauses"]
    assert isinstance(pauses, list) and len(pauses) == 1, pauses
    p = pauses[0]
    fault = t("2026-12-16T03:00:00+00:00")
    assert 0 <= (t(p["start"]) - fault).total_seconds() < 2.0, p
    assert "telescope offline" in p["reason"]
    assert p["end"] is not None and t(p["end"]) >= t("2026-12-16T03:20:00+00:00"), p
    seqs = night["sequences"]
    assert isinstance(seqs, dict)
    later = [s for s in seqs["list"] if s["started_at"] and t(s["started_at"]) > t(p["end"])]
    assert later and all(s["outcome"] in ("completed", "interrupted", "failed") for s in later)
    assert any(s["images"] > 0 for s in later)  # observing resumed


def test_without_the_nir_camera_vis_keeps_observing(night: dict[str, object]) -> None:
    seqs = night["sequences"]
    assert isinstance(seqs, dict)
    after = [
        s for s in seqs["list"] if s["started_at"] and t(s["started_at"]) > t("2026-12-16T04:00:00+00:00")
    ]
    dropped = [s for s in after if "NIR dropped" in s["reason"]]
    assert dropped, after  # the NIR albums were dropped, with the reason
    assert all(s["outcome"] == "completed" and s["images"] > 0 for s in dropped)  # VIS went on
