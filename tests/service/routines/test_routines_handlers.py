"""Routines' consumers on the in-process bus: alert requests stored, observations settle quotas."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

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


def alert_event(action: str, doc: dict[str, Any], env: Env, rid: str = "sb25102001-r1") -> RequestChanged:
    return RequestChanged(
        request_id=rid,
        action=action,  # type: ignore[arg-type]
        state="submitted",
        kind="alert",
        program="GRB",
        owner="alerts",
        document=doc,
    ).stamped(producer="alerts", sent_at=env.clock.now())


def published(env: Env) -> list[RequestChanged]:
    out = [RequestChanged.model_validate_json(b) for b in env.bus.log[RequestChanged.topic]]
    return [e for e in out if e.producer == "routines"]


async def test_alert_requests_are_admitted_like_any_other_and_their_cancellation_followed(
    env: Env, client: httpx.AsyncClient
) -> None:
    """Routines is the one admission gate: an alert request is checked, stored accepted with
    sequence ids, and announced (issue 9: it stayed 'submitted' for ever)."""
    env.program("GRB")
    h = env.auth(env.user("alice", programs=("GRB",)))
    host = await started(env)
    try:
        doc = document(name="GRB 251020A") | {"kind": "alert", "alert_id": "sb25102001"}
        ev = alert_event("submitted", doc, env)
        await env.bus.publish(RequestChanged.topic, ev)
        await env.bus.publish(RequestChanged.topic, ev)  # redelivery: handled once
        await env.bus.drain()
        r = await client.get("/api/v1/requests?kind=alert", headers=h)
        assert r.json()["total"] == 1
        item = r.json()["items"][0]
        assert item["id"] == "sb25102001-r1" and item["state"] == "accepted" and item["owner"] == "alerts"
        assert [q["id"] for q in item["sequences"]] == ["sb25102001-r1-s1"]
        assert item["sequences"][0]["windows"]
        out = published(env)
        assert [e.action for e in out] == ["accepted"] and out[0].grade == "A"
        assert out[0].document is not None and out[0].document.sequences[0].id == "sb25102001-r1-s1"
        booked = (await client.get("/api/v1/programs/GRB/quota", headers=h)).json()["booked_s"]
        assert booked == pytest.approx(457, abs=0.5)
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
        assert [e.action for e in published(env)] == ["accepted", "cancelled"]
        assert (await client.get("/api/v1/programs/GRB/quota", headers=h)).json()["booked_s"] == 0
    finally:
        await host.stop()


async def test_a_better_position_revises_the_request_and_keeps_its_sequence_ids(
    env: Env, client: httpx.AsyncClient
) -> None:
    env.program("GRB")
    h = env.auth(env.user("alice", programs=("GRB",)))
    host = await started(env)
    try:
        doc = document(name="GRB 251020A") | {"kind": "alert", "alert_id": "sb25102001"}
        await env.bus.publish(RequestChanged.topic, alert_event("submitted", doc, env))
        await env.bus.drain()
        better = copy.deepcopy(doc)
        better["sequences"][0]["target"] = {"name": "GRB 251020A", "ra_deg": 10.70, "dec_deg": 41.30}
        await env.bus.publish(RequestChanged.topic, alert_event("changed", better, env))
        await env.bus.drain()
        r = (await client.get("/api/v1/requests/sb25102001-r1", headers=h)).json()
        assert r["state"] == "accepted"
        assert r["sequences"][0]["id"] == "sb25102001-r1-s1"
        assert (r["sequences"][0]["ra_deg"], r["sequences"][0]["dec_deg"]) == (10.70, 41.30)
        out = published(env)
        assert [e.action for e in out] == ["accepted", "changed"]
        assert out[1].document is not None and out[1].document.sequences[0].target.ra_deg == 10.70
        booked = (await client.get("/api/v1/programs/GRB/quota", headers=h)).json()["booked_s"]
        assert booked == pytest.approx(457, abs=0.5)  # re-booked, not booked twice
    finally:
        await host.stop()


async def test_alert_quota_override_is_booked_and_a_refusal_has_a_reason(
    env: Env, client: httpx.AsyncClient
) -> None:
    env.program("GRB", quota_percent=0.0)
    h = env.auth(env.user("alice", programs=("GRB",)))
    host = await started(env)
    try:
        base = document(name="GRB 251020A") | {"kind": "alert", "alert_id": "sb25102001"}
        await env.bus.publish(RequestChanged.topic, alert_event("submitted", base, env, rid="no-override"))
        over = base | {"quota_override": True, "alert_id": "sb25102002"}
        await env.bus.publish(RequestChanged.topic, alert_event("submitted", over, env, rid="override"))
        south = document(name="GRB south", dec_deg=-85.0) | {"kind": "alert", "alert_id": "sb25102003"}
        await env.bus.publish(RequestChanged.topic, alert_event("submitted", south, env, rid="south"))
        await env.bus.drain()
        verdicts = {e.request_id: e for e in published(env)}
        assert verdicts["no-override"].action == "rejected"
        assert "over quota" in verdicts["no-override"].reason
        assert verdicts["override"].action == "accepted"
        assert verdicts["south"].action == "rejected" and "never observable" in verdicts["south"].reason
        rows = {
            i: (await client.get(f"/api/v1/requests/{i}", headers=h)).json()
            for i in ("no-override", "override", "south")
        }
        assert rows["no-override"]["state"] == "rejected" and "over quota" in rows["no-override"]["reason"]
        assert rows["override"]["state"] == "accepted"
        booked = (await client.get("/api/v1/programs/GRB/quota", headers=h)).json()["booked_s"]
        assert booked == pytest.approx(457, abs=0.5)  # the override is booked all the same
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
