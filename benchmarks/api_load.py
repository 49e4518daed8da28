"""The REST API under load, against a real ``pyros up`` on this machine.

    .venv/bin/python benchmarks/api_load.py [--requests 50] [--n 200] [--submits 40]
        [--out benchmarks/results/api_load.json]

Starts ``pyros up`` on a free port and a fresh data directory, makes an admin and a plain user
of one program, stores ``--requests`` requests, then measures, at 1 and at 20 concurrent clients:

- ``health``: ``GET /healthz`` (no token, no database): the bare HTTP hop, the baseline;
- ``list``: ``GET /api/v1/requests?limit=50`` as the plain user (``--requests`` items);
- ``read``: ``GET /api/v1/requests/{id}``;
- ``submit``: ``POST /api/v1/requests`` (visibility computed, time booked).

For each: requests per second, p50/p99/mean/max latency [ms] and the CPU time the ``pyros up``
process spent per request [ms]. The file is written ``.tmp`` and renamed.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import commit, machine  # noqa: E402

OUT = Path(__file__).parent / "results" / "api_load.json"
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from e2e_support import ROUTINE_PROGRAM, start_pyros_up  # noqa: E402

USER, PASSWORD = "bench-user", "bench-user-password"
CONCURRENCY = (1, 20)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def document(i: int) -> dict[str, Any]:
    doc: dict[str, Any] = copy.deepcopy(json.loads((ROOT / "examples" / "m31.json").read_text()))
    doc["program"], doc["name"] = ROUTINE_PROGRAM, f"bench-{i}"
    return doc


async def scenario(
    url: str,
    pid: int,
    name: str,
    method: str,
    paths: list[str],
    headers: dict[str, str],
    bodies: list[Any] | None,
    clients: int,
    ok: int,
) -> dict[str, Any]:
    """Send ``len(paths)`` requests with ``clients`` of them in flight at a time."""
    latencies: list[float] = []
    errors: list[str] = []
    queue = list(enumerate(paths))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120, limits=limits) as http:

        async def worker() -> None:
            while queue:
                i, path = queue.pop(0)
                t0 = time.perf_counter()
                r = await http.request(method, path, json=None if bodies is None else bodies[i])
                latencies.append((time.perf_counter() - t0) * 1000)
                if r.status_code != ok:
                    errors.append(f"{r.status_code} {r.text[:200]}")

        cpu0, wall0 = cpu_s(pid), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall, cpu = time.perf_counter() - wall0, cpu_s(pid) - cpu0
    n = len(latencies)
    out = {
        "scenario": name,
        "clients": clients,
        "n": n,
        "errors": len(errors),
        "rps": round(n / wall, 1),
        "p50_ms": round(_pct(latencies, 0.5), 2),
        "p99_ms": round(_pct(latencies, 0.99), 2),
        "mean_ms": round(statistics.fmean(latencies), 2),
        "max_ms": round(max(latencies), 2),
        "server_cpu_ms_per_request": round(1000 * cpu / n, 2),
    }
    if errors:
        out["first_error"] = errors[0]
    print(
        f"{name:>7} x{clients:<2}  {out['rps']:8.1f} req/s  p50 {out['p50_ms']:8.2f} ms  p99 {out['p99_ms']:8.2f} ms"
        f"  server CPU {out['server_cpu_ms_per_request']:7.2f} ms/req  errors {len(errors)}",
        flush=True,
    )
    return out


async def measure(url: str, pid: int, token: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    h = {"Authorization": f"Bearer {token}"}
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=url, headers=h, timeout=120) as http:
        for i in range(args.requests):
            r = await http.post("/api/v1/requests", json=document(i))
            if r.status_code != 201:
                raise SystemExit(f"could not store request {i}: {r.status_code} {r.text[:300]}")
            ids.append(r.json()["id"])
        warm = await http.get("/api/v1/requests?limit=50")
        assert warm.json()["total"] == args.requests, warm.text[:300]
    results = []
    seq = iter(range(args.requests, 10**9))
    for clients in CONCURRENCY:
        results.append(
            await scenario(url, pid, "health", "GET", ["/healthz"] * args.n, {}, None, clients, 200)
        )
        results.append(
            await scenario(
                url, pid, "list", "GET", ["/api/v1/requests?limit=50"] * args.n, h, None, clients, 200
            )
        )
        paths = [f"/api/v1/requests/{ids[i % len(ids)]}" for i in range(args.n)]
        results.append(await scenario(url, pid, "read", "GET", paths, h, None, clients, 200))
        bodies = [document(next(seq)) for _ in range(args.submits)]
        results.append(
            await scenario(
                url, pid, "submit", "POST", ["/api/v1/requests"] * args.submits, h, bodies, clients, 201
            )
        )
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=50, help="requests stored before measuring (listed)")
    ap.add_argument("--n", type=int, default=200, help="calls per read scenario and concurrency")
    ap.add_argument("--submits", type=int, default=40, help="submissions per concurrency")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        up = start_pyros_up(Path(tmp))
        try:
            assert up.proc.popen is not None
            admin = up.api
            r = admin.post(
                "/users",
                json={"username": USER, "password": PASSWORD, "role": "user", "programs": [ROUTINE_PROGRAM]},
            )
            assert r.status_code == 201, admin.last
            token = admin.login(USER, PASSWORD)
            results = asyncio.run(measure(up.url, up.proc.popen.pid, token, args))
        finally:
            up.api.close()
            up.proc.stop()
    report = {
        "benchmark": "api_load",
        "what": "pyros up (one process, SQLite, in-process bus); GET /healthz is the bare-hop baseline",
        "commit": commit(),
        "arguments": vars(args) | {"out": str(args.out)},
        "machine": machine(),
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(args.out.suffix + ".tmp")
    tmp_out.write_text(json.dumps(report, indent=2) + "\n")
    tmp_out.replace(args.out)
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
