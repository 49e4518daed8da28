"""Users and auth: login, self-registration validated by an admin, roles, password reset."""

from __future__ import annotations

import httpx
import pytest
from routines_factories import PASSWORD, Env

pytestmark = pytest.mark.asyncio


async def login(client: httpx.AsyncClient, name: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/v1/login/access-token", data={"username": name, "password": password})


async def test_login_gives_a_token_that_works_and_a_wrong_password_gets_401(
    env: Env, client: httpx.AsyncClient
) -> None:
    env.user("alice")
    r = await login(client, "alice")
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    me = await client.get("/api/v1/users/me", headers=env.auth(token))
    assert me.json()["username"] == "alice" and me.json()["role"] == "user"
    bad = await login(client, "alice", "wrong password")
    assert bad.status_code == 401 and bad.headers["content-type"] == "application/problem+json"
    assert (await login(client, "nobody")).status_code == 401


async def test_self_registration_waits_for_an_admin(env: Env, client: httpx.AsyncClient) -> None:
    env.program("GRB")
    admin = env.auth(env.user("root", role="admin"))
    r = await client.post("/api/v1/login/register", json={"username": "carol", "password": "long enough pw"})
    assert r.status_code == 201 and r.json()["active"] is False
    refused = await login(client, "carol", "long enough pw")
    assert refused.status_code == 403 and "validation" in refused.json()["detail"]
    waiting = (await client.get("/api/v1/users?active=false", headers=admin)).json()
    assert [u["username"] for u in waiting["items"]] == ["carol"]
    uid = r.json()["id"]
    ok = await client.patch(f"/api/v1/users/{uid}", json={"active": True, "programs": ["GRB"]}, headers=admin)
    assert ok.status_code == 200 and ok.json()["programs"] == ["GRB"]
    assert (await login(client, "carol", "long enough pw")).status_code == 200
    dup = await client.post(
        "/api/v1/login/register", json={"username": "carol", "password": "long enough pw"}
    )
    assert dup.status_code == 409 and dup.json()["errors"][0]["field"] == "username"


async def test_only_admins_administer(env: Env, client: httpx.AsyncClient) -> None:
    user = env.auth(env.user("alice"))
    expert = env.auth(env.user("eve", role="expert"))
    admin = env.auth(env.user("root", role="admin"))
    for h in (user, expert):
        assert (await client.get("/api/v1/users", headers=h)).status_code == 403
        r = await client.post(
            "/api/v1/programs", json={"code": "X", "grade": "A", "quota_percent": 5}, headers=h
        )
        assert r.status_code == 403
    r = await client.post(
        "/api/v1/programs", json={"code": "X", "grade": "C", "quota_percent": 5}, headers=admin
    )
    assert r.status_code == 201 and r.json()["priority"] == "low"
    r = await client.patch("/api/v1/programs/X", json={"grade": "B"}, headers=admin)
    assert r.json()["priority"] == "medium"
    me = (await client.get("/api/v1/users/me", headers=admin)).json()
    demote = await client.patch(f"/api/v1/users/{me['id']}", json={"active": False}, headers=admin)
    assert demote.status_code == 409


async def test_password_reset_token_is_single_use_and_expires(env: Env, client: httpx.AsyncClient) -> None:
    admin = env.auth(env.user("root", role="admin"))
    env.user("alice")
    uid = next(
        u
        for u in (await client.get("/api/v1/users", headers=admin)).json()["items"]
        if u["username"] == "alice"
    )["id"]
    token = (await client.post(f"/api/v1/users/{uid}/reset-token", headers=admin)).json()["token"]
    r = await client.post(
        "/api/v1/login/reset-password", json={"token": token, "new_password": "brand new pw"}
    )
    assert r.status_code == 200
    assert (await login(client, "alice", "brand new pw")).status_code == 200
    assert (await login(client, "alice")).status_code == 401
    again = await client.post(
        "/api/v1/login/reset-password", json={"token": token, "new_password": "another pw!"}
    )
    assert again.status_code == 400 and again.json()["errors"] == [
        {"field": "token", "message": "already used"}
    ]
    late = (await client.post(f"/api/v1/users/{uid}/reset-token", headers=admin)).json()["token"]
    env.clock.advance(25 * 3600)
    r = await client.post("/api/v1/login/reset-password", json={"token": late, "new_password": "another pw!"})
    assert r.status_code == 400 and "expired" in r.json()["detail"]


async def test_deactivated_user_token_stops_working(env: Env, client: httpx.AsyncClient) -> None:
    admin = env.auth(env.user("root", role="admin"))
    tok = env.user("alice")
    uid = (await client.get("/api/v1/users/me", headers=env.auth(tok))).json()["id"]
    await client.patch(f"/api/v1/users/{uid}", json={"active": False}, headers=admin)
    assert (await client.get("/api/v1/users/me", headers=env.auth(tok))).status_code == 401


async def test_ephemerides_of_a_night(env: Env, client: httpx.AsyncClient) -> None:
    h = env.auth(env.user("alice"))
    r = await client.get("/api/v1/ephemerides?night=2025-10-20", headers=h)
    assert r.status_code == 200, r.text
    e = r.json()
    assert e["site"] == "gft-spm" and e["night"] == "2025-10-20"
    assert e["sunset"] < e["astronomical_dusk"] < e["astronomical_dawn"] < e["sunrise"]
    assert {p["name"] for p in e["planets"]} >= {"venus", "mars", "jupiter", "saturn"}
    assert 0 <= e["moon_illumination"] <= 1
    assert (await client.get("/api/v1/ephemerides?night=2025-13-01", headers=h)).status_code == 422
    assert (await client.get("/api/v1/ephemerides")).status_code == 401
