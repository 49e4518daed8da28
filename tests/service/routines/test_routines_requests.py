"""Requests over the API: submission, visibility refusal, quotas, isolation, round trip, events."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from pyros_common.contracts import RequestChanged
from routines_factories import Env, document, m31, make_env

pytestmark = pytest.mark.asyncio


def published(env: Env) -> list[RequestChanged]:
    return [RequestChanged.model_validate_json(raw) for raw in env.bus.log[RequestChanged.topic]]


async def test_submit_m31_is_accepted_with_windows_and_announced(env: Env, client: httpx.AsyncClient) -> None:
    env.program("GRB")
    tok = env.user("alice", programs=("GRB",))
    r = await client.post("/api/v1/requests", json=m31(), headers=env.auth(tok))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["state"] == "accepted" and body["program"] == "GRB" and body["owner"] == "alice"
    seq = body["sequences"][0]
    assert seq["night"] == "2025-10-20"
    assert seq["windows"], "M31 is up most of an October night at San Pedro Mártir"
    assert seq["chosen_window"] is not None
    assert seq["duration_s"] == pytest.approx(90 + 10 + 5 * (60 + 5) + 4 * 8)
    events = published(env)
    assert [(e.action, e.request_id, e.producer) for e in events] == [("accepted", body["id"], "routines")]
    doc = events[0].document
    assert doc is not None and doc.schema_id == "pyros.request/1"
    assert [q.id for q in doc.sequences] == [q["id"] for q in body["sequences"]] == [f"{body['id']}-s1"]


async def test_never_observable_target_is_refused_with_the_reason(
    env: Env, client: httpx.AsyncClient
) -> None:
    env.program("GRB")
    tok = env.user("alice", programs=("GRB",))
    r = await client.post("/api/v1/requests", json=document(dec_deg=-80.0), headers=env.auth(tok))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"] == "urn:pyros:problem:not-observable"
    assert "below 30° all night" in problem["detail"]
    assert problem["errors"][0]["field"] == "sequences.0"
    assert published(env) == []
    listed = await client.get("/api/v1/requests", headers=env.auth(tok))
    assert listed.json()["total"] == 0


async def test_invalid_document_names_the_field(env: Env, client: httpx.AsyncClient) -> None:
    env.program("GRB")
    tok = env.user("alice", programs=("GRB",))
    doc = m31()
    doc["sequences"][0]["albums"][0]["plans"][0]["count"] = 0
    r = await client.post("/api/v1/requests", json=doc, headers=env.auth(tok))
    assert r.status_code == 422
    fields = [e["field"] for e in r.json()["errors"]]
    assert "sequences.0.albums.0.plans.0.count" in fields


async def test_date_more_than_seven_nights_ahead_is_refused(env: Env, client: httpx.AsyncClient) -> None:
    env.program("GRB")
    tok = env.user("alice", programs=("GRB",))
    doc = m31()
    doc["sequences"][0]["date"] = "2025-11-30"
    r = await client.post("/api/v1/requests/validate", json=doc, headers=env.auth(tok))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "sequences.0.date"


async def test_validate_reports_without_storing(env: Env, client: httpx.AsyncClient) -> None:
    env.program("GRB")
    tok = env.user("alice", programs=("GRB",))
    r = await client.post("/api/v1/requests/validate", json=m31(), headers=env.auth(tok))
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["valid"] and report["sequences"][0]["windows"]
    assert report["quotas"][0]["semester"] == "2025B"
    assert (await client.get("/api/v1/requests", headers=env.auth(tok))).json()["total"] == 0
    assert published(env) == []


async def test_quota_accepts_refuses_over_quota_and_gives_back_on_cancel(
    env: Env, client: httpx.AsyncClient
) -> None:
    from pyros_common.domain.programs.quotas import Semester, semester_night_time_s
    from pyros_common.domain.sky.sites import SITES

    night_s = semester_night_time_s(SITES["gft-spm"], Semester(2025, "B"))
    duration = 457.0  # m31.json on the GFT overheads
    env.program("GRB", quota_percent=100 * 1.5 * duration / night_s)  # room for one and a half
    tok = env.user("alice", programs=("GRB",))
    h = env.auth(tok)

    first = await client.post("/api/v1/requests", json=document(name="one"), headers=h)
    assert first.status_code == 201, first.text
    q = (await client.get("/api/v1/programs/GRB/quota", headers=h)).json()
    assert q["semester"] == "2025B"
    assert q["booked_s"] == pytest.approx(duration, abs=0.1)
    assert q["left_s"] == pytest.approx(0.5 * duration, abs=0.5)
    assert q["left_h"] == pytest.approx(q["left_s"] / 3600, abs=1e-3)

    second = await client.post("/api/v1/requests", json=document(name="two"), headers=h)
    assert second.status_code == 409, second.text
    problem = second.json()
    assert problem["type"] == "urn:pyros:problem:over-quota"
    assert "over quota by 228 s" in problem["detail"], problem["detail"]  # 457 - 228.5 left
    assert problem["errors"][0]["field"] == "program"

    cancelled = await client.post(f"/api/v1/requests/{first.json()['id']}/cancel", headers=h)
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert {s["state"] for s in cancelled.json()["sequences"]} == {"cancelled"}
    q = (await client.get("/api/v1/programs/GRB/quota", headers=h)).json()
    assert q["booked_s"] == 0 and q["left_s"] == pytest.approx(1.5 * duration, abs=0.5)

    again = await client.post("/api/v1/requests", json=document(name="two"), headers=h)
    assert again.status_code == 201, again.text
    assert [e.action for e in published(env)] == ["accepted", "cancelled", "accepted"]

    twice = await client.post(f"/api/v1/requests/{first.json()['id']}/cancel", headers=h)
    assert twice.status_code == 409 and "illegal transition cancelled -> cancelled" in twice.json()["detail"]


async def test_user_of_grb_cannot_see_or_cancel_a_request_of_xrb(env: Env, client: httpx.AsyncClient) -> None:
    env.program("GRB")
    env.program("XRB")
    alice = env.user("alice", programs=("GRB",))
    bob = env.user("bob", programs=("XRB",))
    expert = env.user("eve", role="expert")
    r = await client.post("/api/v1/requests", json=document(program="XRB"), headers=env.auth(bob))
    assert r.status_code == 201, r.text
    rid = r.json()["id"]

    for method, path in (
        ("GET", f"/api/v1/requests/{rid}"),
        ("GET", f"/api/v1/requests/{rid}/export"),
        ("POST", f"/api/v1/requests/{rid}/cancel"),
    ):
        resp = await client.request(method, path, headers=env.auth(alice))
        assert resp.status_code == 404, (method, path, resp.text)
        assert resp.headers["content-type"] == "application/problem+json"
    assert (await client.get("/api/v1/requests", headers=env.auth(alice))).json()["total"] == 0
    assert (await client.get("/api/v1/programs/XRB/quota", headers=env.auth(alice))).status_code == 404
    # alice cannot submit into XRB either
    r = await client.post("/api/v1/requests", json=document(program="XRB"), headers=env.auth(alice))
    assert r.status_code == 403 and r.json()["errors"][0]["field"] == "program"
    # the expert sees everything, bob sees his own
    assert (await client.get(f"/api/v1/requests/{rid}", headers=env.auth(expert))).status_code == 200
    assert (await client.get("/api/v1/requests", headers=env.auth(bob))).json()["total"] == 1
    assert (await client.get(f"/api/v1/requests/{rid}", headers=env.auth(bob))).json()["state"] == "accepted"


async def test_unauthenticated_or_forged_token_gets_401(env: Env, client: httpx.AsyncClient) -> None:
    env.program("GRB")
    r = await client.post("/api/v1/requests", json=m31())
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == "Bearer"
    forged = await client.get("/api/v1/requests", headers={"Authorization": "Bearer not.a.token"})
    assert forged.status_code == 401
    # health, docs and openapi stay open
    for path in ("/api/v1/health", "/openapi.json", "/docs", "/healthz", "/metrics"):
        assert (await client.get(path)).status_code == 200, path


async def test_expired_token_is_refused_by_the_clock_port(env: Env, client: httpx.AsyncClient) -> None:
    env.program("GRB")
    tok = env.user("alice", programs=("GRB",))
    assert (await client.get("/api/v1/users/me", headers=env.auth(tok))).status_code == 200
    env.clock.advance(env.ctx.settings.jwt_ttl_s + 1)
    r = await client.get("/api/v1/users/me", headers=env.auth(tok))
    assert r.status_code == 401 and "expired" in r.json()["detail"]


async def test_export_then_import_gives_an_equal_request(env: Env, client: httpx.AsyncClient) -> None:
    env.program("GRB")
    h = env.auth(env.user("alice", programs=("GRB",)))
    submitted = await client.post("/api/v1/requests", json=m31(), headers=h)
    exported = (await client.get(f"/api/v1/requests/{submitted.json()['id']}/export", headers=h)).json()
    assert exported["schema"] == "pyros.request/1"
    imported = await client.post("/api/v1/requests/import", json=exported, headers=h)
    assert imported.status_code == 201, imported.text
    assert imported.json()["id"] != submitted.json()["id"]
    again = (await client.get(f"/api/v1/requests/{imported.json()['id']}/export", headers=h)).json()
    assert again == exported
    original = json.loads(json.dumps(m31()))
    assert {k: exported[k] for k in original} | {"sequences": None} == original | {"sequences": None}
    strip = ["id", "created_at", "updated_at"]
    a = {k: v for k, v in submitted.json().items() if k not in strip}
    b = {k: v for k, v in imported.json().items() if k not in strip}
    for s in a["sequences"] + b["sequences"]:
        s.pop("id")
    assert a == b


async def test_import_of_an_unknown_schema_names_the_field(env: Env, client: httpx.AsyncClient) -> None:
    env.program("GRB")
    h = env.auth(env.user("alice", programs=("GRB",)))
    doc = m31() | {"schema": "pyros.request/2"}
    r = await client.post("/api/v1/requests/import", json=doc, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "schema"


async def test_list_filters_and_paginates(env: Env, client: httpx.AsyncClient) -> None:
    env.program("GRB")
    h = env.auth(env.user("alice", programs=("GRB",)))
    ids = []
    for k in range(3):
        env.clock.advance(1)
        ids.append(
            (await client.post("/api/v1/requests", json=document(name=f"r{k}"), headers=h)).json()["id"]
        )
    await client.post(f"/api/v1/requests/{ids[0]}/cancel", headers=h)
    page = (await client.get("/api/v1/requests?limit=2&offset=0", headers=h)).json()
    assert page["total"] == 3 and [i["id"] for i in page["items"]] == [ids[2], ids[1]]
    page2 = (await client.get("/api/v1/requests?limit=2&offset=2", headers=h)).json()
    assert [i["id"] for i in page2["items"]] == [ids[0]]
    cancelled = (await client.get("/api/v1/requests?state=cancelled", headers=h)).json()
    assert [i["id"] for i in cancelled["items"]] == [ids[0]]
    bad = await client.get("/api/v1/requests?state=bogus", headers=h)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "state"


SITE_FILE = Path(__file__).resolve().parents[3] / "examples" / "sites" / "spm-node.toml"


async def test_a_site_file_as_pyros_site_works_for_submissions(tmp_path: Path) -> None:
    """Issue 9: PYROS_SITE set to a site file gave HTTP 500 (KeyError in OVERHEADS[site.name])."""
    env = make_env(tmp_path, site=str(SITE_FILE))
    env.program("GRB")
    tok = env.user("alice", programs=("GRB",))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=env.app), base_url="http://pyros") as c:
        r = await c.post("/api/v1/requests", json=m31(), headers=env.auth(tok))
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "accepted"
