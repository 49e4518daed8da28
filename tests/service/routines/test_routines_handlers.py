"""Routines' consumers on the in-process bus: alert requests stored, observations settle quotas."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pyros_common.contracts import ObservationChanged, RequestChanged
from pyros_common.runtime.host import ServiceHost
from routines_factories import Env, document

pytestmark = pytest.mark.asyncio


async def started(env: Env) -> ServiceHost:
    host = ServiceHost(env.ctx, env.services)
    await host.start()
    for _ in range(100):
        if all(s.state.value == "ENABLED" for s in env.services):
            break
        await asyncio.sleep(0.02)
    return host


async def test_alert_requests_are_stored_and_their_cancellation_followed(
    env: Env, client: httpx.AsyncClient
) -> None:
    env.program("GRB")
    h = env.auth(env.user("alice", programs=("GRB",)))
    host = await started(env)
    try:
        doc = document(name="GRB 251020A") | {"kind": "alert", "alert_id": "sb25102001"}
        ev = RequestChanged(
            request_id="sb25102001-r1",
            action="submitted",
            state="submitted",
            kind="alert",
            program="GRB",
            owner="alerts",
            document=doc,
        ).stamped(producer="alerts", sent_at=env.clock.now())
        await env.bus.publish(RequestChanged.topic, ev)
        await env.bus.publish(RequestChanged.topic, ev)  # redelivery: handled once
        await env.bus.drain()
        r = await client.get("/api/v1/requests?kind=alert", headers=h)
        assert r.json()["total"] == 1
        item = r.json()["items"][0]
        assert item["id"] == "sb25102001-r1" and item["state"] == "submitted" and item["owner"] == "alerts"
        cancel = RequestChanged(
            request_id="sb25102001-r1",
            action="cancelled",
            state="cancelled",
            kind="alert",
            reason="retracted",
        ).stamped(producer="alerts", sent_at=env.clock.now())
        await env.bus.publish(RequestChanged.topic, cancel)
        await env.bus.drain()
        r = await client.get("/api/v1/requests/sb25102001-r1", headers=h)
        assert r.json()["state"] == "cancelled" and r.json()["reason"] == "retracted"
    finally:
        await host.stop()


async def test_completed_sequence_is_used_and_failed_one_gives_time_back(
    env: Env, client: httpx.AsyncClient
) -> None:
    env.program("GRB")
    h = env.auth(env.user("alice", programs=("GRB",)))
    host = await started(env)
    try:
        ids = []
        for name in ("done", "lost"):
            r = await client.post("/api/v1/requests", json=document(name=name), headers=h)
            ids.append(r.json()["id"])
        booked = (await client.get("/api/v1/programs/GRB/quota", headers=h)).json()["booked_s"]
        assert booked == pytest.approx(2 * 457, abs=0.5)

        def obs(rid: str, action: str) -> ObservationChanged:
            return ObservationChanged(sequence_id=f"{rid}-s1", request_id=rid, action=action).stamped(  # type: ignore[arg-type]
                producer="observer", sent_at=env.clock.now()
            )

        for ev in (
            obs(ids[0], "started"),
            obs(ids[0], "completed"),
            obs(ids[1], "started"),
            obs(ids[1], "failed"),
        ):
            await env.bus.publish(ObservationChanged.topic, ev)
        await env.bus.drain()
        q = (await client.get("/api/v1/programs/GRB/quota", headers=h)).json()
        assert q["booked_s"] == 0 and q["used_s"] == pytest.approx(457, abs=0.5)
        states = [(await client.get(f"/api/v1/requests/{i}", headers=h)).json()["state"] for i in ids]
        assert states == ["completed", "failed"]
        actions = [RequestChanged.model_validate_json(b).action for b in env.bus.log[RequestChanged.topic]]
        assert actions == ["accepted", "accepted", "completed", "failed"]
    finally:
        await host.stop()
