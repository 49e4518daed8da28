"""Pure pieces of auth and the request lifecycle helper."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr
from pyros_common.auth import (
    AuthError,
    create_access_token,
    decode_access_token,
    hash_password,
    jwt_secret,
    require_role,
    verify_password,
)
from pyros_common.domain.requests.states import IllegalTransition, advance
from pyros_common.settings import Settings

T0 = dt.datetime(2025, 10, 20, 18, 0, tzinfo=dt.UTC)


def test_argon2_hash_verifies_only_the_right_password() -> None:
    h = hash_password("s3cret-pw")
    assert h.startswith("$argon2id$")
    assert verify_password("s3cret-pw", h)
    assert not verify_password("S3cret-pw", h)
    assert not verify_password("s3cret-pw", None)
    assert not verify_password("s3cret-pw", "not a hash")


def test_token_round_trip_expiry_and_forgery() -> None:
    s = Settings(jwt_secret=SecretStr("k" * 40), jwt_ttl_s=60)
    tok = create_access_token("alice", settings=s, now=T0)
    assert decode_access_token(tok, settings=s, now=T0 + dt.timedelta(seconds=59)) == "alice"
    with pytest.raises(AuthError, match="expired"):
        decode_access_token(tok, settings=s, now=T0 + dt.timedelta(seconds=60))
    other = Settings(jwt_secret=SecretStr("z" * 40))
    with pytest.raises(AuthError, match="invalid token"):
        decode_access_token(tok, settings=other, now=T0)


def test_development_secret_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path / "var")
    secret = jwt_secret(s)
    path = tmp_path / "var" / ".jwt_secret"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text().strip() == secret and len(secret) >= 32
    assert jwt_secret(Settings(data_dir=tmp_path / "var")) == secret


def test_require_role_refuses_unknown_roles() -> None:
    with pytest.raises(ValueError, match="roles must be among"):
        require_role("superuser")


def test_advance_walks_the_state_table_and_refuses_what_it_does_not_allow() -> None:
    assert advance("draft", "accepted") == "accepted"
    assert advance("accepted", "completed") == "completed"  # via scheduled, executing
    with pytest.raises(IllegalTransition, match="cancelled -> accepted"):
        advance("cancelled", "accepted")
