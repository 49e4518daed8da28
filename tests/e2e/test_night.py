"""``pyros night --simulate`` as a user runs it: a whole night of every service on the virtual
clock, with examples/night.json and one Swift GRB at 06:10 UTC; the report and the disk agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYROS = Path(sys.executable).parent / "pyros"
SWIFT = ROOT / "tests" / "data" / "voevents" / "swift" / "bat_grb_pos_1125809.xml"


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("night")
    cmd = [
        str(PYROS),
        "night",
        "--simulate",
        "--site",
        "gft-spm",
        "--date",
        "2026-12-15",
        "--workload",
        str(ROOT / "examples" / "night.json"),
        "--alert",
        f"{SWIFT}@06:10",
        "--speed",
        "max",
        "--report",
        str(out),
    ]
    env = {**os.environ, "PYROS_LOG_FORMAT": "console"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    report["_stdout"] = done.stdout
    report["_out"] = str(out)
    return report


def test_every_scheduled_sequence_ends_with_a_reason(night: dict[str, object]) -> None:
    seqs = night["sequences"]
    assert isinstance(seqs, dict)
    assert seqs["scheduled"] >= 5
    assert seqs["completed"] >= 1
    for s in seqs["list"]:
        assert s["outcome"] in ("completed", "interrupted", "failed") and s["reason"], s
    assert seqs["scheduled"] == seqs["completed"] + seqs["interrupted"] + seqs["failed"]


def test_the_alert_is_slewed_to_within_a_second_of_night_time(night: dict[str, object]) -> None:
    alerts = night["alerts"]
    assert isinstance(alerts, list) and len(alerts) == 1
    a = alerts[0]
    assert a["received_at"].startswith("2026-12-16T06:10")
    assert a["slew_command_at"] is not None, a
    assert 0 <= a["alert_to_slew_s"] < 1.0, a
    assert a["first_image_at"] is not None
    inj = a["injected"]  # the simulated afterglow, inside the alert's error circle
    assert (
        inj is not None
        and abs(inj["dec_deg"] - a["position"]["dec_deg"]) <= a["position"]["error_deg"] + 1e-9
    )


def test_the_disk_holds_what_the_report_says(night: dict[str, object]) -> None:
    data = Path(str(night["data_dir"]))
    produced = data / "PRODUCED_DATA"
    names = [p for p in produced.rglob("*")]
    assert not [p for p in names if p.name.endswith(".tmp") or "_active" in p.name], "unfinished names left"
    light = [p for p in produced.rglob("*.fits") if "calibration" not in p.parts]
    assert len(light) == night["images"] > 0
    seqs = night["sequences"]
    assert isinstance(seqs, dict)
    assert sum(s["images"] for s in seqs["list"]) == night["images"]
    for s in seqs["list"]:
        assert s["images"] == s["images_reported"], s  # the observer's count is what is on disk
        if s["outcome"] == "completed":
            assert s["images"] == s["images_planned"], s  # every exposure of every plan
    assert (Path(str(night["_out"])) / "report.html").stat().st_size > 10_000
