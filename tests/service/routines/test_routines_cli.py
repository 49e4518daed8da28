"""The commands: users/programs on the database, then login, submit, list, export, import via the API."""

from __future__ import annotations

import json
import os
import stat
import warnings
from pathlib import Path

import pytest
from pyros_cli import routines_cmd
from pyros_cli.client import PyrosClient, save_token
from pyros_cli.main import app
from routines_factories import make_env
from typer.testing import CliRunner

with warnings.catch_warnings():  # starlette asks for httpx2, not installed here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ROOT = Path(__file__).resolve().parents[3]


def test_round_trip_through_the_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path)
    monkeypatch.setenv("PYROS_DATABASE_URL", env.db.url)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    runner = CliRunner()

    r = runner.invoke(app, ["programs", "create", "GRB", "--grade", "A", "--quota-percent", "30"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["programs", "create", "GRB", "--grade", "A", "--quota-percent", "30"])
    assert r.exit_code == 1 and "program GRB exists" in r.output
    r = runner.invoke(
        app,
        ["users", "create", "alice", "--role", "user", "--program", "GRB", "--password-stdin"],
        input="s3cret-pw\n",
    )
    assert r.exit_code == 0 and "user alice" in r.output, r.output

    with TestClient(env.app, base_url="http://pyros") as http:
        monkeypatch.setattr(
            routines_cmd, "client_factory", lambda url: PyrosClient.from_saved(url, http=http)
        )
        r = runner.invoke(
            app,
            ["login", "--url", "http://pyros", "--user", "alice", "--password-stdin"],
            input="nope-nope\n",
        )
        assert r.exit_code == 1 and "incorrect user name or password" in r.output
        r = runner.invoke(
            app,
            ["login", "--url", "http://pyros", "--user", "alice", "--password-stdin"],
            input="s3cret-pw\n",
        )
        assert r.exit_code == 0, r.output
        token_file = tmp_path / "config" / "pyros" / "token.json"
        assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600

        r = runner.invoke(app, ["request", "submit", str(ROOT / "examples" / "m31.json")])
        assert r.exit_code == 0, r.output
        rid = r.output.split()[0]
        r = runner.invoke(app, ["request", "list"])
        assert rid in r.output and "(1 of 1)" in r.output
        exported = tmp_path / "m31-export.json"
        r = runner.invoke(app, ["request", "export", rid, "--out", str(exported)])
        assert r.exit_code == 0, r.output
        r = runner.invoke(app, ["request", "import", str(exported)])
        assert r.exit_code == 0, r.output
        rid2 = r.output.split()[0]
        r = runner.invoke(app, ["request", "export", rid2])
        assert json.loads(r.output) == json.loads(exported.read_text())
        assert json.loads(r.output)["sequences"][0]["target"] == {
            "name": "M31",
            "ra_deg": 10.6847,
            "dec_deg": 41.269,
        }

        bad = tmp_path / "south.json"
        doc = json.loads((ROOT / "examples" / "m31.json").read_text())
        doc["sequences"][0]["target"]["dec_deg"] = -80
        bad.write_text(json.dumps(doc))
        r = runner.invoke(app, ["request", "submit", str(bad)])
        assert r.exit_code == 1 and "below 30° all night" in r.output


def test_client_commands_say_to_log_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    runner = CliRunner()
    with TestClient(env.app, base_url="http://pyros") as http:
        monkeypatch.setattr(
            routines_cmd, "client_factory", lambda url: PyrosClient.from_saved(url, http=http)
        )
        r = runner.invoke(app, ["request", "list", "--url", "http://pyros"])
        assert r.exit_code == 1, r.output
        assert (
            r.output.strip() == "pyros: not logged in: run `pyros login --url http://pyros --user NAME` first"
        )
        save_token("http://pyros", "not-a-token", "alice")
        r = runner.invoke(app, ["request", "submit", str(ROOT / "examples" / "m31.json")])
        assert r.exit_code == 1, r.output
        assert "refused the saved token" in r.output and "pyros login --url http://pyros" in r.output
        assert "Traceback" not in r.output
