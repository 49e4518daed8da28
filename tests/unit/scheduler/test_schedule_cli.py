"""`pyros schedule` on the example workload: the file, the reasons and the plot."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from pyros_cli.main import app
from pyros_scheduler import book
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[3]
ALLOWED = (
    "never visible",
    "Moon constraint",
    "quota exhausted",
    "displaced by higher-weight sequence",
    "outside night",
    "mandatory sibling failed",
    "no longer visible",
)


def test_schedule_command_writes_the_plan_and_the_plot(tmp_path: Path) -> None:
    out, png = tmp_path / "schedule.json", tmp_path / "gantt.png"
    args = ["schedule", "--site", "gft-spm", "--night", "2026-12-15", "--requests"]
    args += [str(ROOT / "examples" / "workload.json"), "--out", str(out), "--plot", str(png)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "placed" in res.output and "objective" in res.output
    doc = json.loads(out.read_text())
    assert set(doc) >= {"night", "scheduled", "unscheduled", "objective", "runtime_s", "solver"}
    assert doc["night"]["start"].endswith("Z") and doc["night"]["end"].endswith("Z")
    assert len(doc["scheduled"]) + len(doc["unscheduled"]) == 38
    for s in doc["scheduled"]:
        assert set(s) >= {"request", "sequence", "telescope", "start", "end", "weight"}
        assert doc["night"]["start"] <= s["start"] < s["end"] <= doc["night"]["end"]
    reasons = {u["request"]: u["reason"] for u in doc["unscheduled"]}
    assert all(r.startswith(ALLOWED) for r in reasons.values()), reasons
    assert reasons["Galactic centre flare"] == "never visible"
    assert reasons["blazar 3C 454.3"] == "Moon constraint"
    assert any(s["request"] == "GRB 261216A" for s in doc["scheduled"])
    assert png.stat().st_size > 10_000 and not list(tmp_path.glob("*.tmp*"))


def test_bad_night_is_refused(tmp_path: Path) -> None:
    args = ["schedule", "--night", "tomorrow", "--requests", str(ROOT / "examples" / "workload.json")]
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "x.json")])
    assert res.exit_code == 2


def test_a_node_from_a_site_file_runs_each_sequence_on_one_telescope(tmp_path: Path) -> None:
    out = tmp_path / "schedule.json"
    site = ROOT / "examples" / "sites" / "spm-node.toml"
    args = ["schedule", "--site", str(site), "--telescopes", "3", "--night", "2026-12-15", "--requests"]
    res = CliRunner().invoke(app, [*args, str(ROOT / "examples" / "workload.json"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "on 3 telescope(s) (gft, spm-b, spm-c)" in res.output
    doc = json.loads(out.read_text())
    keys = [(s["request"], s["sequence"]) for s in doc["scheduled"]]
    assert len(keys) == len(set(keys))
    used = {s["telescope"] for s in doc["scheduled"]}
    assert used <= {"gft", "spm-b", "spm-c"} and len(used) >= 2
    for tel in used:
        rows = sorted((s["start"], s["end"]) for s in doc["scheduled"] if s["telescope"] == tel)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(rows))


def test_more_telescopes_than_the_site_lists_is_refused(tmp_path: Path) -> None:
    args = ["schedule", "--site", "gft-spm", "--telescopes", "2", "--night", "2026-12-15"]
    args += ["--requests", str(ROOT / "examples" / "workload.json"), "--out", str(tmp_path / "x.json")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2
    assert "lists 1 telescope(s) (gft); 2 asked" in res.output


def test_a_small_night_is_solved_exactly(tmp_path: Path) -> None:
    data = json.loads((ROOT / "examples" / "workload.json").read_text())
    data["requests"] = data["requests"][:6]
    small, out = tmp_path / "small.json", tmp_path / "schedule.json"
    small.write_text(json.dumps(data))
    args = ["schedule", "--night", "2026-12-15", "--requests", str(small), "--out", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert "then CP-SAT: optimal" in doc["solver"], doc["solver"]
    assert doc["scheduled"]


def test_improve_runs_the_services_polish(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--improve: the plan the scheduler service ends with (CP-SAT after the heuristic). On the
    example workload it places 3 more sequences."""
    monkeypatch.setattr(book, "LNS_DET_S", 1.0)  # a short search (CP-SAT's deterministic time)
    args = ["schedule", "--site", "gft-spm", "--night", "2026-12-15", "--requests"]
    args += [str(ROOT / "examples" / "workload.json")]
    quick, better = tmp_path / "quick.json", tmp_path / "better.json"
    assert CliRunner().invoke(app, [*args, "--out", str(quick)]).exit_code == 0
    res = CliRunner().invoke(app, [*args, "--out", str(better), "--improve"])
    assert res.exit_code == 0, res.output
    a, b = json.loads(quick.read_text()), json.loads(better.read_text())
    assert b["objective"] > a["objective"] and len(b["scheduled"]) > len(a["scheduled"])
    assert "CP-SAT improvement" in b["solver"] and "CP-SAT raised it by" in res.output
    assert len(b["scheduled"]) + len(b["unscheduled"]) == 38
