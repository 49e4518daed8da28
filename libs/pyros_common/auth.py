"""Authentication shared by every route: argon2 passwords, JWT bearer tokens, role checks.

Tokens are signed with ``settings.jwt_secret``. In development without one, a random secret
is made once and kept in ``<data_dir>/.jwt_secret`` (mode 0600) so tokens survive a restart.
Expiry is checked against the clock port, never the wall clock.

A token carries its user's version (``ver``): a digest of the password hash and the role, so a
password change, a reset or a role change makes every older token of that user answer 401.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import select

from pyros_common.settings import Settings

__all__ = [
    "ROLES",
    "TOKEN_URL",
    "AuthError",
    "CurrentUser",
    "create_access_token",
    "current_user",
    "decode_access_token",
    "decode_claims",
    "hash_password",
    "hash_token",
    "jwt_secret",
    "new_reset_token",
    "oauth2_scheme",
    "require_role",
    "token_for",
    "token_version",
    "verify_password",
]

ROLES = ("admin", "expert", "user")
TOKEN_URL = "/api/v1/login/access-token"
ALGORITHM = "HS256"
_hasher = PasswordHasher()
# Verified against when the user does not exist, so an unknown name costs the same time.
_DUMMY_HASH = _hasher.hash("pyros-no-such-user")

oauth2_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


class AuthError(Exception):
    """A token that cannot be trusted: bad signature, expired, malformed."""


# --- passwords -------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """The argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """Whether ``password`` matches ``password_hash`` (False for a missing or unreadable hash)."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_reset_token() -> tuple[str, str]:
    """A single-use password reset token and the hash to store (the token itself is never stored)."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    """SHA-256 of a reset token (it is random and long, so no salt or slow hash is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


# --- JWT -------------------------------------------------------------------------------

_dev_secrets: dict[Path, str] = {}


def jwt_secret(settings: Settings) -> str:
    """The signing secret: the configured one, or in development one persisted in the data dir."""
    if settings.jwt_secret is not None and settings.jwt_secret.get_secret_value():
        return settings.jwt_secret.get_secret_value()
    if settings.env == "production":  # Settings already refuses this; never sign with a made-up key
        raise RuntimeError("PYROS_JWT_SECRET must be set in production")
    path = (Path(settings.data_dir) / ".jwt_secret").resolve()
    cached = _dev_secrets.get(path)
    if cached is not None:
        return cached
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_text().strip()
    else:
        secret = secrets.token_urlsafe(48)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
    if len(secret) < 32:
        raise RuntimeError(f"{path} holds a secret shorter than 32 characters; delete it to make a new one")
    _dev_secrets[path] = secret
    return secret


def token_version(password_hash: str, role: str) -> str:
    """The version of a user's tokens: it changes with the password (argon2 salts every hash anew,
    so even the same password set again changes it) and with the role."""
    return hashlib.sha256(f"{password_hash}\x00{role}".encode()).hexdigest()[:16]


def create_access_token(subject: str, *, settings: Settings, now: datetime, version: str = "") -> str:
    """A bearer token for user ``subject`` valid ``settings.jwt_ttl_s`` seconds from ``now``;
    ``version``: the user's ``token_version`` (a token without it is refused by ``current_user``)."""
    payload = {
        "sub": subject,
        "ver": version,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=settings.jwt_ttl_s)).timestamp()),
    }
    return jwt.encode(payload, jwt_secret(settings), algorithm=ALGORITHM)


def token_for(db: Any, username: str, *, settings: Settings, now: datetime) -> str:
    """A token for an existing user, with the user's current version (in-process callers)."""
    from pyros_common.db.models import User

    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            raise LookupError(f"no user {username}")
        version = token_version(user.password_hash, user.role)
    return create_access_token(username, settings=settings, now=now, version=version)


def decode_access_token(token: str, *, settings: Settings, now: datetime) -> str:
    """The user name in ``token``; AuthError if the token is forged, malformed or expired."""
    return decode_claims(token, settings=settings, now=now)[0]


def decode_claims(token: str, *, settings: Settings, now: datetime) -> tuple[str, str]:
    """The user name and token version in ``token``; AuthError if forged, malformed or expired."""
    try:
        # PyJWT checks expiry against the wall clock; we check it against the clock port below.
        payload: dict[str, Any] = jwt.decode(
            token,
            jwt_secret(settings),
            algorithms=[ALGORITHM],
            options={"verify_exp": False, "verify_iat": False, "require": ["sub", "exp"]},
        )
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid token: {exc}") from None
    exp, sub, ver = payload.get("exp"), payload.get("sub"), payload.get("ver", "")
    if not isinstance(exp, int | float) or not isinstance(sub, str) or not sub or not isinstance(ver, str):
        raise AuthError("invalid token: bad 'sub', 'exp' or 'ver' claim")
    if now.timestamp() >= exp:
        raise AuthError("token expired")
    return sub, ver


# --- FastAPI dependencies --------------------------------------------------------------


@dataclass(frozen=True)
class CurrentUser:
    """The authenticated caller, detached from any database session."""

    id: int
    username: str
    role: str
    programs: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def sees_all(self) -> bool:
        """Experts and admins see every program's requests."""
        return self.role in ("admin", "expert")

    def sees_program(self, program: str) -> bool:
        """Whether the caller may see a request of ``program`` ("" unknown: experts and admins)."""
        return self.sees_all or (bool(program) and program in self.programs)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


def _load_user(request: Request, username: str, version: str) -> CurrentUser | None:
    from pyros_common.db.models import ProgramMember, User

    db = request.app.state.ctx.db
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None or not user.active:
            return None
        if not secrets.compare_digest(version, token_version(user.password_hash, user.role)):
            raise _unauthorized("token revoked: the password or the role changed since it was issued")
        codes = s.scalars(select(ProgramMember.program_code).where(ProgramMember.user_id == user.id))
        return CurrentUser(id=user.id, username=user.username, role=user.role, programs=frozenset(codes))


async def current_user(request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]) -> CurrentUser:
    """The user behind the bearer token; 401 when missing, invalid, expired or not (any more) active."""
    if not token:
        raise _unauthorized("not authenticated: send 'Authorization: Bearer <token>'")
    ctx = request.app.state.ctx
    try:
        username, version = decode_claims(token, settings=ctx.settings, now=ctx.clock.now())
    except AuthError as exc:
        raise _unauthorized(str(exc)) from None
    from starlette.concurrency import run_in_threadpool

    user = await run_in_threadpool(_load_user, request, username, version)
    if user is None:
        raise _unauthorized("unknown or inactive user")
    return user


def require_role(*roles: str) -> Callable[..., Awaitable[CurrentUser]]:
    """A dependency admitting only users with one of ``roles`` (403 otherwise)."""
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"roles must be among {ROLES}, got {roles}")

    async def dependency(user: Annotated[CurrentUser, Depends(current_user)]) -> CurrentUser:
        if user.role not in roles:
            raise HTTPException(
                status_code=status.HTTP_403_FORBIDDEN,
                detail=f"this needs role {' or '.join(roles)}; you are {user.role}",
            )
        return user

    return dependency
