"""``pyros users``, ``pyros programs`` (direct database), ``pyros login`` and ``pyros request`` (API)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from pyros_cli.local import DATA_DIR_ENV, DEFAULT_DATA_DIR, NoLocalDatabase, local_database_url

if TYPE_CHECKING:
    import datetime as dt

    from sqlalchemy.orm import Session

    from pyros_cli.client import PyrosClient

# Only typer and the standard library at import: ``pyros --help`` must not load httpx, SQLAlchemy,
# pydantic or astropy. Each command imports what it needs.

_DIRECT = "direct database: `pyros up`'s <data-dir>/pyros.db, or PYROS_DATABASE_URL when set"
users_app = typer.Typer(no_args_is_help=True, help=f"User accounts ({_DIRECT}).")
programs_app = typer.Typer(no_args_is_help=True, help=f"Scientific programs ({_DIRECT}).")
request_app = typer.Typer(no_args_is_help=True, help="Requests through the REST API (after `pyros login`).")

T = TypeVar("T")
DEFAULT_URL = "http://127.0.0.1:8000"


def _saved_client(url: str | None) -> PyrosClient:
    from pyros_cli.client import PyrosClient

    return PyrosClient.from_saved(url)


# Tests replace this to run the commands against an in-process app.
client_factory: Callable[[str | None], PyrosClient] = _saved_client

DataDirOpt = Annotated[
    Path,
    typer.Option(
        envvar=DATA_DIR_ENV,
        help="Data directory of `pyros up`, whose pyros.db is used when PYROS_DATABASE_URL is unset.",
    ),
]


def _fail(msg: str, code: int = 1) -> typer.Exit:
    typer.echo(f"pyros: {msg}", err=True)
    return typer.Exit(code)


def _read_password(password_stdin: bool, prompt: str = "password: ") -> str:
    if not password_stdin:
        if not sys.stdin.isatty():
            raise _fail("give the password on standard input with --password-stdin", 2)
        import getpass

        password = getpass.getpass(prompt)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise _fail("empty password on standard input", 2)
    return password


def _database_url(data_dir: Path) -> str:
    """``pyros up``'s database: PYROS_DATABASE_URL when set, else ``<data_dir>/pyros.db`` (must exist)."""
    try:
        return local_database_url(data_dir)
    except NoLocalDatabase as exc:
        raise _fail(str(exc), 2) from None


def _db_call(fn: Callable[..., T], url: str, **kwargs: Any) -> T:
    """Run a routines service function in one transaction on the database at ``url``."""
    from pyros_common.clock import SystemClock
    from pyros_common.db import Database
    from pyros_common.problem import ProblemError

    db = Database(url)
    try:
        db.check()
        with db.session() as s:
            return fn(session=s, now=SystemClock().now(), **kwargs)
    except ProblemError as exc:
        raise _fail(exc.detail) from None
    except RuntimeError as exc:  # unreachable or not migrated: one sentence
        raise _fail(str(exc)) from None
    finally:
        db.dispose()


@users_app.command("create")
def users_create(
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Option(help="admin, expert or user.")] = "user",
    program: Annotated[list[str] | None, typer.Option(help="Program code (repeatable).")] = None,
    email: Annotated[str, typer.Option(help="Contact address.")] = "",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
) -> None:
    """Create an active user directly in the database (`pyros up` makes the first admin)."""
    if role not in ("admin", "expert", "user"):
        raise _fail(f"role must be admin, expert or user, not {role!r}", 2)
    url = _database_url(data_dir)
    password = _read_password(password_stdin)
    if len(password) < 8:
        raise _fail("the password needs at least 8 characters", 2)
    from pyros_routines import users

    user = _db_call(
        users.create_user,
        url,
        username=name,
        password=password,
        role=role,
        email=email,
        active=True,
        programs=list(program or []),
    )
    typer.echo(f"user {user.username} (id {user.id}, {user.role}) created")


@users_app.command("passwd")
def users_passwd(
    name: Annotated[str, typer.Argument(help="User name.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the new password from stdin.")
    ] = False,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
) -> None:
    """Set a user's password directly in the database (e.g. the first admin's one-time one)."""
    url = _database_url(data_dir)
    password = _read_password(password_stdin, "new password: ")
    if len(password) < 8:
        raise _fail("the password needs at least 8 characters", 2)

    def work(*, session: Session, now: dt.datetime) -> None:
        from pyros_common.auth import hash_password
        from pyros_common.db.models import User
        from pyros_common.problem import ProblemError
        from sqlalchemy import select

        user = session.scalar(select(User).where(User.username == name))
        if user is None:
            raise ProblemError(404, f"no user {name}", kind="not-found")
        user.password_hash = hash_password(password)

    _db_call(work, url)
    typer.echo(f"password of {name} changed")


@programs_app.command("create")
def programs_create(
    code: Annotated[str, typer.Argument(help="Program code, e.g. GRB.")],
    grade: Annotated[str, typer.Option(help="TAC grade A, B or C.")] = "B",
    quota_percent: Annotated[float, typer.Option(help="Share of each semester's night time [%].")] = 10.0,
    name: Annotated[str, typer.Option(help="Long name.")] = "",
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
) -> None:
    """Create a scientific program directly in the database."""
    url = _database_url(data_dir)
    from pyros_routines import programs

    p = _db_call(
        programs.create_program,
        url,
        code=code,
        grade=grade.upper(),
        quota_percent=quota_percent,
        name=name,
    )
    typer.echo(f"program {p.code} (grade {p.grade}, quota {p.quota_percent:g} %) created")


def login(
    url: Annotated[str, typer.Option(help="Gateway URL.")] = DEFAULT_URL,
    user: Annotated[str, typer.Option(help="User name.")] = "",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Log in and keep the token in $XDG_CONFIG_HOME/pyros/token.json (mode 0600)."""
    from pyros_cli.client import ApiError, NoServer, save_token

    if not user:
        raise _fail("--user is required", 2)
    password = _read_password(password_stdin)
    client = client_factory(url)
    client.url = url.rstrip("/")
    try:
        token = client.login(user, password)
    except (ApiError, NoServer) as exc:
        raise _fail(str(exc)) from None
    path = save_token(url, token, user)
    typer.echo(f"logged in as {user}; token saved in {path}")


def _api(call: Callable[[PyrosClient], Any], url: str | None) -> Any:
    """Run ``call`` on a logged-in client; every failure is one line on stderr and exit 1."""
    from pyros_cli.client import ApiError, NoServer

    client = client_factory(url)
    try:
        return call(client)
    except NoServer as exc:
        raise _fail(str(exc)) from None
    except ApiError as exc:
        if exc.status == 401:
            again = f"run `pyros login --url {client.url} --user NAME`"
            if client.token:
                raise _fail(f"{client.url} refused the saved token (expired?): {again}") from None
            raise _fail(f"not logged in: {again} first") from None
        raise _fail(str(exc)) from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise _fail(f"{path} does not hold a JSON object")
    return data


UrlOpt = Annotated[str | None, typer.Option(help="Gateway URL (default: the one of `pyros login`).")]


@request_app.command("submit")
def request_submit(
    file: Annotated[Path, typer.Argument(help="Request document (JSON).")], url: UrlOpt = None
) -> None:
    """Submit a request document; prints the new request id."""
    doc = _read_json(file)
    r = _api(lambda c: c.submit(doc), url)
    typer.echo(f"{r['id']} {r['state']} ({r['duration_s']:.0f} s)")


@request_app.command("validate")
def request_validate(
    file: Annotated[Path, typer.Argument(help="Request document (JSON).")], url: UrlOpt = None
) -> None:
    """Check a request document as a submission would, without storing it."""
    doc = _read_json(file)
    typer.echo(json.dumps(_api(lambda c: c.validate(doc), url), indent=2))


@request_app.command("import")
def request_import(
    file: Annotated[Path, typer.Argument(help="Exported document (JSON).")], url: UrlOpt = None
) -> None:
    """Import an exported request document as a new request."""
    doc = _read_json(file)
    r = _api(lambda c: c.import_document(doc), url)
    typer.echo(f"{r['id']} {r['state']} ({r['duration_s']:.0f} s)")


@request_app.command("list")
def request_list(
    program: Annotated[str | None, typer.Option(help="Program code.")] = None,
    state: Annotated[str | None, typer.Option(help="State.")] = None,
    limit: Annotated[int, typer.Option(help="Page size.")] = 50,
    offset: Annotated[int, typer.Option(help="Skip this many.")] = 0,
    url: UrlOpt = None,
) -> None:
    """List the requests you may see, newest first."""
    page = _api(lambda c: c.list_requests(program=program, state=state, limit=limit, offset=offset), url)
    for r in page["items"]:
        name = "" if r["name"] == r["id"] else f"  {r['name']}"
        why = (
            f"  ({r['reason']})" if r["state"] in ("rejected", "cancelled", "failed") and r["reason"] else ""
        )
        typer.echo(f"{r['id']}  {r['state']:<10} {r['program']:<8} {r['owner']:<12}{name}{why}")
    typer.echo(f"({len(page['items'])} of {page['total']})")


@request_app.command("show")
def request_show(
    request_id: Annotated[str, typer.Argument(help="Request id.")],
    url: UrlOpt = None,
) -> None:
    """A request's state, reason and sequences (ids, states, targets, visibility windows)."""
    r = _api(lambda c: c.get_request(request_id), url)
    typer.echo(f"{r['id']}  {r['name']}")
    typer.echo(f"  state    {r['state']}" + (f"  ({r['reason']})" if r["reason"] else ""))
    typer.echo(f"  program  {r['program']}   owner {r['owner']}   kind {r['kind']}   {r['duration_s']:.0f} s")
    for q in r["sequences"]:
        typer.echo(
            f"  {q['id']}  {q['state']:<10} {q['target_name']} "
            f"(RA {q['ra_deg']:.4f}, Dec {q['dec_deg']:+.4f})  night {q['night'] or '-'}"
        )
        for w in q["windows"]:
            typer.echo(f"      window {w['start']} .. {w['end']}  ({w['duration_s'] / 60:.0f} min)")


@request_app.command("export")
def request_export(
    request_id: Annotated[str, typer.Argument(help="Request id.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")
    ] = None,
    url: UrlOpt = None,
) -> None:
    """Print (or write) the request document of a request."""
    text = json.dumps(_api(lambda c: c.export(request_id), url), indent=2, ensure_ascii=False) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)


@request_app.command("cancel")
def request_cancel(
    request_id: Annotated[str, typer.Argument(help="Request id.")],
    reason: Annotated[str, typer.Option(help="Why.")] = "",
    url: UrlOpt = None,
) -> None:
    """Cancel a request; its unobserved time goes back to the program."""
    r = _api(lambda c: c.cancel(request_id, reason), url)
    typer.echo(f"{r['id']} {r['state']}")


def plan(
    night: Annotated[
        str | None, typer.Option(help="Night (local date of its evening); default: tonight.")
    ] = None,
    version: Annotated[int | None, typer.Option(help="Schedule version; default: the latest.")] = None,
    telescope: Annotated[str | None, typer.Option(help="Telescope id; default: the site's first.")] = None,
    url: UrlOpt = None,
) -> None:
    """The schedule a running PyROS follows: planned sequences and why the others are left out."""
    doc = _api(lambda c: c.get_schedule(night=night, version=version, telescope=telescope), url)
    sched = doc["schedule"]
    n = sched["night"]
    typer.echo(
        f"{doc['telescope']}  night {n['date']} ({n['start']} .. {n['end']})  version {doc['version']}"
        f" of {doc['latest_version']}: {doc['trigger']}"
    )

    def name(q: dict[str, Any]) -> str:
        seq = str(q["sequence"])
        return seq if seq.startswith(str(q["request"])) else f"{str(q['request'])[:24]}/{seq}"

    for q in sched["scheduled"]:
        typer.echo(
            f"  {q['start'][11:19]}-{q['end'][11:19]}  {name(q):<40} {q['target']}  (w {q['weight']:g})"
        )
    for q in sched["unscheduled"]:
        why = q["reason"] + (f" ({q['detail']})" if q.get("detail") else "")
        typer.echo(f"  not planned        {name(q):<40} {why}")
