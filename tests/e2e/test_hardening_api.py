"""Issue 10 row 2 against ``pyros up``: 8 concurrent 50 MB bodies without a token.

Each is answered 413 problem+json before it is read whole, and the process's peak RSS (VmHWM)
grows by less than 100 MB. The bodies are sent over raw sockets, as a hostile client would:
with a Content-Length announcing them, and chunked (nothing announced, counted while read).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from e2e_support import PyrosUp

BODY_BYTES = 50 * 1024 * 1024
CHUNK = 256 * 1024
CLIENTS = 8
MAX_GROWTH_MB = 100.0


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    """One whole HTTP response: the head, then exactly its Content-Length (one read() may stop
    after the head, and the body would then look empty)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return head + await reader.readexactly(length)


async def _send_big(port: int, path: str, *, chunked: bool) -> tuple[int, str, int]:
    """POST a 50 MB JSON-looking body; stop sending once the server answers. (status, body, sent)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    head += "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {BODY_BYTES}\r\n"
    writer.write((head + "\r\n").encode())
    answer = asyncio.create_task(_read_response(reader))
    sent = 0
    block = b'{"username": "' + b"x" * (CHUNK - 14)
    try:
        while sent < BODY_BYTES and not answer.done():
            piece = block[: min(CHUNK, BODY_BYTES - sent)]
            writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
            sent += len(piece)
            await asyncio.wait_for(writer.drain(), 30)
        if chunked and not answer.done():
            writer.write(b"0\r\n\r\n")
            await writer.drain()
    except (ConnectionError, OSError):
        pass  # the server answered and closed while we were still sending: what we want
    raw = await asyncio.wait_for(answer, 60)
    writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    body = rest.partition(b"\r\n\r\n")[2].decode(errors="replace")
    return int(status_line.split()[1]), body, sent


async def _burst(port: int, chunked: bool) -> list[tuple[int, str, int]]:
    return await asyncio.gather(
        *(_send_big(port, "/api/v1/login/register", chunked=chunked) for _ in range(CLIENTS))
    )


def test_eight_concurrent_50_mb_bodies_are_413_and_memory_stays_flat(pyros_up: PyrosUp) -> None:
    assert pyros_up.proc.popen is not None
    pid = pyros_up.proc.popen.pid
    assert pyros_up.api.get("/health").status_code == 200
    small = pyros_up.api.post("/login/register", json={"username": "warm", "password": "long enough pw"})
    assert small.status_code in (201, 409), small.text
    before_kib = _kib(pid, "VmHWM")

    for chunked in (False, True):
        answers = asyncio.run(_burst(pyros_up.port, chunked))
        for status, body, sent in answers:
            assert status == 413, (chunked, status, body[:300])
            problem = json.loads(body)
            assert problem["status"] == 413 and problem["type"] == "urn:pyros:problem:body-too-large"
            assert sent <= BODY_BYTES
    growth_mb = (_kib(pid, "VmHWM") - before_kib) / 1024
    print(
        f"\n{2 * CLIENTS} bodies of {BODY_BYTES / 2**20:.0f} MB (8 with Content-Length, 8 chunked): "
        f"all 413; peak RSS {before_kib / 1024:.0f} MB -> {_kib(pid, 'VmHWM') / 1024:.0f} MB, "
        f"growth {growth_mb:.1f} MB (limit {MAX_GROWTH_MB:.0f} MB)"
    )
    assert growth_mb < MAX_GROWTH_MB
    # and the process still answers
    assert pyros_up.api.get("/health").status_code == 200
