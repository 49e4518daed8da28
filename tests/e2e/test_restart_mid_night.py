"""``pyros up --simulate`` killed (``kill -9``) in the middle of the night and started again on the
same data directory goes on observing the requests accepted before the kill.

Routines announces a request's document once, when it accepts it; the observer used to keep it in
memory only, so after a restart every dispatch of an earlier request failed ("no accepted request
carries sequence ...") and no image came any more. The analyzer's afterglow state had the same
flaw; its service test covers it (tests/service/analyzer).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from e2e_support import PYROS, STARTED, Api, Proc, base_env, free_port, poll, wait_healthy

SPEED = "60"  # night time per second: a sequence ends within seconds
NIGHT_TIMEOUT_S = 150.0


def light_images(data_dir: Path) -> set[str]:
    """The science images on disk (not the dawn's calibration frames), by name."""
    produced = data_dir / "PRODUCED_DATA"
    if not produced.is_dir():
        return set()
    return {p.name for p in produced.rglob("*.fits") if "calibration" not in p.parts}


def failures(log: Path, since: int) -> list[str]:
    """The reasons of the sequences that failed, from the JSON log lines after byte ``since``."""
    out = []
    with log.open("rb") as f:
        f.seek(since)
        for line in f.read().decode(errors="replace").splitlines():
            if '"sequence ended"' not in line:
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if doc.get("outcome") == "failed":
                out.append(str(doc.get("reason", "")))
    return out


def test_a_night_killed_and_restarted_goes_on_with_the_requests_accepted_before(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    proc = Proc(
        name="pyros up --simulate",
        argv=[
            str(PYROS),
            "up",
            "--simulate",
            "--speed",
            SPEED,
            "--port",
            str(port),
            "--data-dir",
            str(data),
        ],
        env=base_env(XDG_CONFIG_HOME=str(tmp_path / "home")),
        log_path=tmp_path / "pyros-up.log",
    )
    api = Api(f"http://127.0.0.1:{port}")
    try:
        proc.start()
        wait_healthy(api, [proc])
        first = poll(
            "the first images of the demo night",
            lambda: light_images(data) or None,
            timeout_s=NIGHT_TIMEOUT_S,
            report=proc.tail,
        )
        assert proc.popen is not None
        os.killpg(proc.popen.pid, signal.SIGKILL)  # mid-sequence: nothing gets to finish
        proc.popen.wait(30)
        proc.exit_codes.append(proc.popen.returncode)
        before = light_images(data)
        assert first <= before

        mark = proc.log_path.stat().st_size
        proc.start()  # the same night again from dusk; no demo workload this time (not a new database)
        wait_healthy(api, [proc])
        after = poll(
            "new images after the restart",
            lambda: (light_images(data) - before) or None,
            timeout_s=NIGHT_TIMEOUT_S,
            report=lambda: "\n".join(failures(proc.log_path, mark)[:5]) + "\n" + proc.tail(),
        )
        assert after
        lost = [r for r in failures(proc.log_path, mark) if "no accepted request carries" in r]
        assert not lost, lost
    finally:
        api.close()
        proc.stop()
        if proc in STARTED:
            STARTED.remove(proc)
