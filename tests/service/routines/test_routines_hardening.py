"""Issue 10, the API side: bounded bodies, strict types, tokens that die, throttled logins,
programs kept apart in the schedule, the listing's cost and the ephemerides cache.

Each test reproduces one row of the issue's table against the gateway app (routines, scheduler
routes) on SQLite and the in-process bus.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import httpx
import pytest
import structlog
from pyros_common.db.models import Schedule
from routines_factories import PASSWORD, Env, document, m31
from sqlalchemy import event

pytestmark = pytest.mark.asyncio


def _fields(r: httpx.Response) -> list[str]:
    return [e["field"] for e in r.json()["errors"]]


# --- row 2: bodies are bounded before they are read whole ------------------------------------


async def test_a_body_over_the_route_limit_is_413_problem_json(env: Env, client: httpx.AsyncClient) -> None:
    big = b'{"username": "' + b"x" * 200_000 + b'", "password": "long enough"}'
    r = await client.post("/api/v1/login/register", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "urn:pyros:problem:body-too-large"

    async def chunks() -> Any:  # no Content-Length: counted while it arrives
        for _ in range(100):
            yield b"x" * 10_000

    r = await client.post(
        "/api/v1/login/register", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413 and "more was sent" in r.json()["detail"]


# --- row 3: a huge list fails fast, at its length ----------------------------------------------


async def test_a_document_with_too_many_sequences_is_refused_at_the_count(
    env: Env, client: httpx.AsyncClient
) -> None:
    env.program("GRB")
    tok = env.user("alice", programs=("GRB",))
    doc = m31()
    seq = doc["sequences"][0]
    doc["sequences"] = [dict(copy.deepcopy(seq), name=f"s{i}") for i in range(3000)]
    doc["sequences"][-1]["target"]["ra_deg"] = "not a number"
    r = await client.post("/api/v1/requests", json=doc, headers=env.auth(tok))
    assert r.status_code == 422, r.text
    # Only the count is reported: the items were never validated (the last one is invalid).
    assert _fields(r) == ["sequences"]
    assert "at most 100 items, not 3000" in r.json()["detail"]

    doc["sequences"] = [dict(copy.deepcopy(seq), name=f"s{i}") for i in range(100_000)]
    r = await client.post("/api/v1/requests", json=doc, headers=env.auth(tok))
    assert r.status_code == 413, r.text[:300]


# --- row 4: wrong types are 422 naming the field, never coerced ------------------------------


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("sequences", 0, "target", "ra_deg"), "10.6847", "sequences.0.target.ra_deg"),
        (("sequences", 0, "albums", 0, "plans", 0, "count"), True, "sequences.0.albums.0.plans.0.count"),
        (
            ("sequences", 0, "albums", 0, "plans", 0, "exposure_s"),
            "60",
            "sequences.0.albums.0.plans.0.exposure_s",
        ),
        (("sequences", 0, "mandatory"), 1, "sequences.0.mandatory"),
        (("sequences", 0, "priority_offset"), 1.0, "sequences.0.priority_offset"),
        (("name",), "M31\x00deep", "name"),
        (("sequences", 0, "target", "name"), "M\x0031", "sequences.0.target.name"),
    ],
)
async def test_request_fields_of_the_wrong_type_are_refused(
    env: Env, client: httpx.AsyncClient, path: tuple[Any, ...], value: Any, field: str
) -> None:
    env.program("GRB")
    tok = env.user("alice", programs=("GRB",))
    doc: Any = m31()
    holder = doc
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = value
    for route in ("/api/v1/requests", "/api/v1/requests/validate", "/api/v1/requests/import"):
        r = await client.post(route, json=doc, headers=env.auth(tok))
        assert r.status_code == 422, (route, r.text)
        assert field in _fields(r), (route, r.json())
    listed = await client.get("/api/v1/requests", headers=env.auth(tok))
    assert listed.json()["total"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"quota_percent": False}, "quota_percent"),
        ({"quota_percent": "5"}, "quota_percent"),
        ({"name": "nul\x00name"}, "name"),
        ({"grade": 1}, "grade"),
    ],
)
async def test_program_changes_of_the_wrong_type_are_refused(
    env: Env, client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    env.program("EXO", quota_percent=12.0)
    admin = env.auth(env.user("root", role="admin"))
    r = await client.patch("/api/v1/programs/EXO", json=body, headers=admin)
    assert r.status_code == 422, r.text
    assert _fields(r) == [field]
    assert (await client.get("/api/v1/programs/EXO", headers=admin)).json()["quota_percent"] == 12.0


async def test_account_fields_of_the_wrong_type_are_refused(env: Env, client: httpx.AsyncClient) -> None:
    admin = env.auth(env.user("root", role="admin"))
    alice = env.user("alice")
    uid = (await client.get("/api/v1/users/me", headers=env.auth(alice))).json()["id"]
    r = await client.patch(f"/api/v1/users/{uid}", json={"active": 0}, headers=admin)
    assert r.status_code == 422 and _fields(r) == ["active"]
    r = await client.post("/api/v1/login/register", json={"username": "bob", "password": "long enough\x00pw"})
    assert r.status_code == 422 and _fields(r) == ["password"]


# --- row 5: a password or role change ends the older tokens ---------------------------------


async def _login(client: httpx.AsyncClient, name: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/v1/login/access-token", data={"username": name, "password": password})


async def _token(client: httpx.AsyncClient, name: str, password: str = PASSWORD) -> dict[str, str]:
    r = await _login(client, name, password)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def test_own_password_change_ends_the_older_tokens(env: Env, client: httpx.AsyncClient) -> None:
    env.user("alice")
    old = await _token(client, "alice")
    r = await client.post(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": "another long pw"},
        headers=old,
    )
    assert r.status_code == 200, r.text
    r = await client.get("/api/v1/users/me", headers=old)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    new = await _token(client, "alice", "another long pw")
    assert (await client.get("/api/v1/users/me", headers=new)).status_code == 200


async def test_admin_password_change_reset_and_role_change_end_the_older_tokens(
    env: Env, client: httpx.AsyncClient
) -> None:
    admin = env.auth(env.user("root", role="admin"))
    env.user("alice")
    uid = (await client.get("/api/v1/users/me", headers=await _token(client, "alice"))).json()["id"]
    me = "/api/v1/users/me"

    before = await _token(client, "alice")
    r = await client.patch(f"/api/v1/users/{uid}", json={"password": "set by the admin"}, headers=admin)
    assert r.status_code == 200
    assert (await client.get(me, headers=before)).status_code == 401

    before = await _token(client, "alice", "set by the admin")
    reset = (await client.post(f"/api/v1/users/{uid}/reset-token", headers=admin)).json()["token"]
    r = await client.post(
        "/api/v1/login/reset-password", json={"token": reset, "new_password": "after the reset"}
    )
    assert r.status_code == 200
    assert (await client.get(me, headers=before)).status_code == 401

    before = await _token(client, "alice", "after the reset")
    r = await client.patch(f"/api/v1/users/{uid}", json={"role": "expert"}, headers=admin)
    assert r.status_code == 200
    assert (await client.get(me, headers=before)).status_code == 401
    after = await _token(client, "alice", "after the reset")
    assert (await client.get(me, headers=after)).json()["role"] == "expert"


async def test_a_token_without_a_version_is_refused(env: Env, client: httpx.AsyncClient) -> None:
    from pyros_common.auth import create_access_token

    env.user("alice")
    bare = create_access_token("alice", settings=env.ctx.settings, now=env.clock.now())
    r = await client.get("/api/v1/users/me", headers=env.auth(bare))
    assert r.status_code == 401


# --- row 6: logins are throttled and failures logged; names unique regardless of case -----------


async def test_wrong_passwords_are_throttled_per_user_and_logged(env: Env, client: httpx.AsyncClient) -> None:
    env.user("alice")
    codes = []
    with structlog.testing.capture_logs() as logs:
        for _ in range(30):
            codes.append((await _login(client, "alice", "wrong password")).status_code)
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}, codes
    r = await _login(client, "alice", "wrong password")
    assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json"
    wait = int(r.headers["Retry-After"])
    assert 0 < wait <= 300
    # Even the right password waits: the guesser must not learn it is right.
    assert (await _login(client, "alice")).status_code == 429
    failed = [e for e in logs if e["event"] == "login failed"]
    assert len(failed) == 5 and all(e["user"] == "alice" and e["address"] for e in failed)
    assert any(e["event"] == "login throttled" for e in logs)
    env.clock.advance(wait + 1)
    assert (await _login(client, "alice")).status_code == 200


async def test_failed_logins_from_one_address_are_throttled_whatever_the_name(
    env: Env, client: httpx.AsyncClient
) -> None:
    env.user("alice")
    codes = [(await _login(client, f"guess{i}", "wrong password")).status_code for i in range(25)]
    assert codes[:20] == [401] * 20 and set(codes[20:]) == {429}, codes
    assert (await _login(client, "alice")).status_code == 429


async def test_usernames_are_unique_regardless_of_case(env: Env, client: httpx.AsyncClient) -> None:
    env.user("carol")
    for name in ("Carol", "CAROL"):
        r = await client.post("/api/v1/login/register", json={"username": name, "password": "long enough pw"})
        assert r.status_code == 409, r.text
        assert _fields(r) == ["username"]


# --- row 7: a plain user sees other programs' slots as busy time only ----------------------------


async def test_schedule_shows_other_programs_as_busy_time_only(env: Env, client: httpx.AsyncClient) -> None:
    env.program("EXO")
    env.program("GAL")
    exo = env.auth(env.user("emma", programs=("EXO",)))
    gal = env.auth(env.user("gus", programs=("GAL",)))
    expert = env.auth(env.user("eve", role="expert"))
    mine = (await client.post("/api/v1/requests", json=document("EXO", name="exo-req"), headers=exo)).json()
    theirs = (
        await client.post("/api/v1/requests", json=document("GAL", name="gal-secret"), headers=gal)
    ).json()
    mine_seq, their_seq = mine["sequences"][0]["id"], theirs["sequences"][0]["id"]

    def item(req: dict[str, Any], seq: str, program: str, start: str, end: str) -> dict[str, Any]:
        return {
            "request": req["name"],
            "sequence": seq,
            "telescope": "gft",
            "start": start,
            "end": end,
            "weight": 3.0,
            "program": program,
            "target": "M31",
        }

    doc = {
        "night": {"date": "2025-10-20", "start": "2025-10-21T02:00:00Z", "end": "2025-10-21T13:00:00Z"},
        "scheduled": [
            item(mine, mine_seq, "EXO", "2025-10-21T03:00:00Z", "2025-10-21T03:10:00Z"),
            item(theirs, their_seq, "GAL", "2025-10-21T04:00:00Z", "2025-10-21T04:10:00Z"),
        ],
        "unscheduled": [{"request": "gal-secret", "sequence": their_seq, "reason": "x", "detail": "y"}],
        "interrupted": [their_seq],
        "objective": 1.0,
        "runtime_s": 0.1,
        "solver": "test",
        "version": 1,
        "telescope": "gft",
        "trigger": f"request {theirs['id']} accepted",
        "interrupted_id": their_seq,
        "scheduled_ids": [
            {"request_id": mine["id"], "sequence_id": mine_seq},
            {"request_id": theirs["id"], "sequence_id": their_seq},
        ],
    }
    with env.db.session() as s:
        s.add(
            Schedule(
                telescope_id="gft",
                night=dt.date(2025, 10, 20),
                version=1,
                trigger=doc["trigger"],
                created_at=env.clock.now(),
                objective=1.0,
                solver="test",
                document=doc,
            )
        )

    r = await client.get("/api/v1/schedule", headers=exo)
    assert r.status_code == 200, r.text
    text = r.text
    for secret in (theirs["id"], their_seq, "gal-secret", "GAL"):
        assert secret not in text, secret
    sched = r.json()["schedule"]
    assert sched["scheduled"][0]["sequence"] == mine_seq and sched["scheduled"][0]["target"] == "M31"
    assert sched["scheduled"][1] == {
        "telescope": "gft",
        "start": "2025-10-21T04:00:00Z",
        "end": "2025-10-21T04:10:00Z",
        "busy": True,
    }
    assert sched["unscheduled"] == [] and sched["interrupted"] == []
    # Experts see everything.
    full = (await client.get("/api/v1/schedule", headers=expert)).json()
    assert full["schedule"] == doc


# --- row 13: the listing's cost does not grow per row; ephemerides are computed once a night -----


async def test_listing_does_a_fixed_number_of_queries_and_loads_no_documents(
    env: Env, client: httpx.AsyncClient
) -> None:
    env.program("GRB")
    tok = env.auth(env.user("alice", programs=("GRB",)))
    for i in range(6):
        assert (
            await client.post("/api/v1/requests", json=document(name=f"r{i}"), headers=tok)
        ).status_code == 201
    statements: list[str] = []

    def seen(_conn: Any, _cur: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(env.db.engine, "before_cursor_execute", seen)
    try:
        r = await client.get("/api/v1/requests?limit=3", headers=tok)
        few = list(statements)
        statements.clear()
        r = await client.get("/api/v1/requests?limit=6", headers=tok)
        more = list(statements)
    finally:
        event.remove(env.db.engine, "before_cursor_execute", seen)
    assert r.status_code == 200 and len(r.json()["items"]) == 6
    assert len(few) == len(more), (few, more)
    listing = [s for s in more if "FROM requests" in s and "count(" not in s]
    assert listing, more
    # The stored documents (the request as asked) are not read to list requests.
    assert all("requests.document" not in s for s in listing), listing


async def test_ephemerides_are_computed_once_per_site_and_night_even_when_asked_at_once(
    env: Env, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from pyros_routines.api import ephemerides as route

    calls: list[tuple[str, dt.date]] = []
    real = route.night_ephemerides

    def counting(site: Any, night: dt.date) -> Any:
        calls.append((site.name, night))
        return real(site, night)

    monkeypatch.setattr(route, "night_ephemerides", counting)
    getattr(route, "clear_cache", getattr(route._ephemerides, "cache_clear", lambda: None))()
    tok = env.auth(env.user("alice"))
    answers = await asyncio.gather(
        *(
            client.get(f"/api/v1/ephemerides?night={n}", headers=tok)
            for n in ["2025-10-22"] * 6 + ["2025-10-23"]
        )
    )
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
    assert len({r.text for r in answers[:6]}) == 1
    again = await client.get("/api/v1/ephemerides?night=2025-10-22", headers=tok)
    assert again.text == answers[0].text
    assert sorted(calls) == [("gft-spm", dt.date(2025, 10, 22)), ("gft-spm", dt.date(2025, 10, 23))]


async def test_listing_is_an_index_scan_without_a_sort(env: Env, client: httpx.AsyncClient) -> None:
    env.program("GRB")
    user = env.auth(env.user("alice", programs=("GRB",)))
    admin = env.auth(env.user("root", role="admin"))
    assert (await client.post("/api/v1/requests", json=document(), headers=user)).status_code == 201
    for headers in (user, admin):
        captured: list[tuple[str, Any]] = []

        def seen(
            _conn: Any, _cur: Any, statement: str, params: Any, *_: Any, out: list[tuple[str, Any]] = captured
        ) -> None:
            if "FROM requests" in statement and "ORDER BY" in statement and "count(" not in statement:
                out.append((statement, params))

        event.listen(env.db.engine, "before_cursor_execute", seen)
        try:
            assert (await client.get("/api/v1/requests", headers=headers)).status_code == 200
        finally:
            event.remove(env.db.engine, "before_cursor_execute", seen)
        assert len(captured) == 1, captured
        statement, params = captured[0]
        with env.db.engine.connect() as conn:
            plan = " | ".join(
                str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)
            )
        assert "USING INDEX ix_requests_" in plan or "USING COVERING INDEX ix_requests_" in plan, plan
        assert "TEMP B-TREE" not in plan, plan


async def test_the_night_shows_another_programs_running_sequence_as_busy_time(env: Env) -> None:
    from pyros_common.contracts import Dispatch, SystemChanged
    from pyros_gateway.app import GatewayService
    from pyros_gateway.routes import ROUTES

    env.program("EXO")
    env.program("GAL")
    exo = env.auth(env.user("emma", programs=("EXO",)))
    gal = env.auth(env.user("gus", programs=("GAL",)))
    gw = GatewayService(env.ctx, ROUTES)
    app = gw.create_app([gw])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pyros") as c:
        theirs = (
            await c.post("/api/v1/requests", json=document("GAL", name="gal-secret"), headers=gal)
        ).json()
        seq = theirs["sequences"][0]["id"]
        start = env.clock.now()
        dispatch = Dispatch(
            kind="sequence",
            request_id=theirs["id"],
            sequence_id=seq,
            planned_start=start,
            planned_end=start + dt.timedelta(minutes=10),
            schedule_version=1,
        )
        await gw.system.on_system(
            SystemChanged(
                state="running", reason=f"dispatch {seq}", night=dt.date(2025, 10, 20), dispatch=dispatch
            )
        )
        seen = await c.get("/api/v1/night", headers=exo)
        full = await c.get("/api/v1/night", headers=gal)
    assert seen.status_code == 200, seen.text
    assert theirs["id"] not in seen.text and seq not in seen.text
    assert seen.json()["last_dispatch"]["busy"] is True
    assert seen.json()["last_dispatch"]["planned_start"] == full.json()["last_dispatch"]["planned_start"]
    assert full.json()["last_dispatch"]["sequence_id"] == seq and full.json()["reason"] == f"dispatch {seq}"


async def test_each_route_has_its_own_body_limit(env: Env, client: httpx.AsyncClient) -> None:
    admin = env.auth(env.user("root", role="admin"))
    xml = {"Content-Type": "application/xml"} | admin
    two_mb = b"<VOEvent>" + b" " * 2_000_000 + b"</VOEvent>"
    r = await client.post("/api/v1/alerts/voevents", content=two_mb, headers=xml)
    assert r.status_code == 413 and "1048576 bytes" in r.json()["detail"]
    # A request document may be larger than a VOEvent (then refused for what it says, not its size).
    doc = m31() | {"padding": " " * 2_000_000}
    r = await client.post("/api/v1/requests/validate", json=doc, headers=admin)
    assert r.status_code == 422 and _fields(r) == ["padding"], r.text[:300]
    r = await client.patch("/api/v1/programs/X", json={"name": "x" * 100_000}, headers=admin)
    assert r.status_code == 413
