"""A small Python client of the PyROS REST API (httpx), used by the ``pyros`` commands."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx

__all__ = ["ApiError", "NoServer", "PyrosClient", "load_token", "save_token", "token_path"]


class ApiError(Exception):
    """An error answer of the API, carrying its RFC 9457 problem details."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        detail = problem.get("detail") or problem.get("title") or "error"
        fields = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in problem.get("errors", []))
        super().__init__(
            f"HTTP {status}: {detail}" + (f" [{fields}]" if fields and fields not in detail else "")
        )


class NoServer(Exception):
    """Nothing answers at the URL (refused, unreachable, timed out), or it is not a PyROS API."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"no PyROS at {url} ({reason}); start it with `pyros up` (or `make up`)")


def _reason(exc: httpx.TransportError) -> str:
    text = str(exc)
    if isinstance(exc, httpx.ConnectError) and ("refused" in text.lower() or "errno 111" in text.lower()):
        return "connection refused"
    if isinstance(exc, httpx.TimeoutException):
        return "no answer: timed out"
    return text or type(exc).__name__


def token_path() -> Path:
    """Where ``pyros login`` keeps the token: $XDG_CONFIG_HOME/pyros/token.json (~/.config by default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "pyros" / "token.json"


def save_token(url: str, token: str, user: str) -> Path:
    """Write the token file with mode 0600 (created that way, never world-readable)."""
    path = token_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"url": url, "user": user, "access_token": token}, f)
    tmp.replace(path)
    return path


def load_token() -> dict[str, str] | None:
    """The saved token file, or None."""
    path = token_path()
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # unreadable or damaged: as if not logged in
    return data if isinstance(data, dict) else None


class PyrosClient:
    """The REST API under ``<url>/api/v1``; pass ``http`` to use another transport (tests)."""

    def __init__(self, url: str, token: str | None = None, http: httpx.Client | None = None) -> None:
        self.url = url.rstrip("/")
        self.http = http or httpx.Client(base_url=self.url, timeout=60)
        self.token = token

    @classmethod
    def from_saved(cls, url: str | None = None, http: httpx.Client | None = None) -> PyrosClient:
        """A client with the token saved by ``pyros login``."""
        saved = load_token() or {}
        return cls(url or saved.get("url") or "http://127.0.0.1:8000", saved.get("access_token"), http)

    def _call(
        self, method: str, path: str, headers_extra: dict[str, str] | None = None, **kwargs: Any
    ) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers.update(headers_extra or {})
        try:
            r = self.http.request(method, f"{self.url}/api/v1{path}", headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise NoServer(self.url, _reason(exc)) from None
        if r.status_code >= 400:
            try:
                problem = r.json()
            except ValueError:
                problem = {"detail": r.text}
            raise ApiError(r.status_code, problem if isinstance(problem, dict) else {"detail": str(problem)})
        try:
            return r.json()
        except ValueError:
            raise NoServer(self.url, f"HTTP {r.status_code} without JSON: not a PyROS API") from None

    def send_voevent(self, packet: bytes) -> dict[str, Any]:
        """Post one VOEvent packet to the HTTP intake (admins and experts)."""
        result: dict[str, Any] = self._call(
            "POST", "/alerts/voevents", content=packet, headers_extra={"Content-Type": "application/xml"}
        )
        return result

    def get_alert(self, alert_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/alerts/{alert_id}")
        return result

    def login(self, username: str, password: str) -> str:
        """Get a bearer token (OAuth2 password flow) and keep it on this client."""
        data = self._call("POST", "/login/access-token", data={"username": username, "password": password})
        self.token = str(data["access_token"])
        return self.token

    def submit(self, document: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/requests", json=document)
        return result

    def validate(self, document: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/requests/validate", json=document)
        return result

    def import_document(self, document: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/requests/import", json=document)
        return result

    def list_requests(self, **filters: Any) -> dict[str, Any]:
        params = {k: v for k, v in filters.items() if v is not None}
        result: dict[str, Any] = self._call("GET", "/requests", params=params)
        return result

    def get_schedule(self, **query: Any) -> dict[str, Any]:
        params = {k: v for k, v in query.items() if v is not None}
        result: dict[str, Any] = self._call("GET", "/schedule", params=params)
        return result

    def get_request(self, request_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/requests/{request_id}")
        return result

    def export(self, request_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/requests/{request_id}/export")
        return result

    def cancel(self, request_id: str, reason: str = "") -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/requests/{request_id}/cancel", json={"reason": reason})
        return result

    def quota(self, program: str, semester: str | None = None) -> dict[str, Any]:
        params = {"semester": semester} if semester else {}
        result: dict[str, Any] = self._call("GET", f"/programs/{program}/quota", params=params)
        return result
