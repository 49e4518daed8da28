"""Submit a VOEvent to a VTP broker's receiver (Comet): length-prefixed packet, then its ack."""

from __future__ import annotations

import asyncio
import struct


async def submit(host: str, port: int, packet: bytes, *, timeout_s: float = 10.0) -> bytes:
    """Send one packet; return the broker's Transport reply; ValueError on a nak."""

    async def go() -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(struct.pack("!I", len(packet)) + packet)
            await writer.drain()
            try:
                size = struct.unpack("!I", await reader.readexactly(4))[0]
                if size > 1 << 20:
                    raise ValueError(f"VTP reply of {size} bytes: not a VTP peer")
                reply = await reader.readexactly(size)
            except asyncio.IncompleteReadError:
                raise ValueError(
                    "VTP broker refused the packet: it closed the connection without an ack"
                ) from None
        finally:
            writer.close()
            await writer.wait_closed()
        if b'role="nak"' in reply:
            raise ValueError(f"VTP broker refused the packet: {reply[:300]!r}")
        return reply

    return await asyncio.wait_for(go(), timeout_s)
