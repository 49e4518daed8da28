"""schemathesis over /openapi.json of the whole gateway, with an admin token.

The gateway is built in process (every service's routes, SQLite in tmp_path, in-process bus).
No operation may answer 5xx, an undocumented status or content type, or a body or headers
that break its own schema.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from pyros_cli.registry import SERVICE_CLASSES, service_class
from schemathesis import checks
from schemathesis import checks as checks_module

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service" / "routines"))
from routines_factories import Env, make_env

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


def _gateway() -> Env:
    others = tuple(service_class(n) for n in SERVICE_CLASSES if n != "routines")
    env = make_env(Path(_TMP.name), extra_services=others)
    env.program("GRB")
    env.user("root", role="admin", programs=("GRB",))
    return env


# Built at import: schemathesis needs the schema to generate the test cases.
_TMP = tempfile.TemporaryDirectory(prefix="pyros-schemathesis-")
GATEWAY = _gateway()
schema = schemathesis.openapi.from_asgi("/openapi.json", GATEWAY.app)


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    GATEWAY.db.dispose()
    _TMP.cleanup()


ROUTINES = r"^/api/v1/(login|users|programs|requests|ephemerides|health)"
SETTINGS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _call(case: schemathesis.Case) -> None:
    checks = CHECKS
    if case.path == "/readyz":
        # Not ready is a documented 503: the in-process gateway here hosts routes, not running services.
        checks = [c for c in CHECKS if c is not checks_module.not_a_server_error]
    case.call_and_validate(headers={"Authorization": f"Bearer {GATEWAY.token('root')}"}, checks=checks)


@schema.include(path_regex=ROUTINES).parametrize()
@SETTINGS
def test_routines_api_conforms_to_its_openapi(case: schemathesis.Case) -> None:
    _call(case)


@schema.exclude(path_regex=ROUTINES).parametrize()
@SETTINGS
def test_other_services_api_conforms_to_its_openapi(case: schemathesis.Case) -> None:
    _call(case)
