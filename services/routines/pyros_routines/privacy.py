"""Programs stay apart: what a plain user may see of answers that mix programs.

A user who is neither expert nor admin sees their programs' requests and sequences; another
program's scheduled slot stays in the schedule as busy time (telescope, start, end) with no
name, target, program or id, and another program's unscheduled or interrupted items are left out.
The night (``GET /night``) shows another program's running sequence as busy time the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from pyros_common.auth import CurrentUser
from pyros_common.db import Database
from pyros_common.db.models import Request as RequestRow
from pyros_common.db.models import Sequence as SequenceRow
from sqlalchemy import select

_ID = re.compile(r"[A-Za-z0-9_.:/-]+")
BUSY_KEYS = ("telescope", "start", "end")


def schedule_ids(body: dict[str, Any]) -> set[str]:
    """Every request or sequence id a schedule answer mentions (its items, trigger, interruption)."""
    doc = body.get("schedule") or {}
    ids: set[str] = set()
    for item in [*doc.get("scheduled", []), *doc.get("unscheduled", [])]:
        ids.add(str(item.get("sequence", "")))
    ids.update(str(i) for i in doc.get("interrupted", []) or [])
    for pair in doc.get("scheduled_ids", []) or []:
        ids.update(str(v) for v in pair.values())
    if doc.get("interrupted_id"):
        ids.add(str(doc["interrupted_id"]))
    for trigger in (body.get("trigger"), doc.get("trigger")):
        ids.update(_ID.findall(str(trigger or "")))
    ids.discard("")
    return ids


def redact_schedule(body: dict[str, Any], *, visible: set[str]) -> dict[str, Any]:
    """``body`` as seen by a user who may see only the ids in ``visible`` (requests and sequences)."""
    out = dict(body)
    doc = dict(out.get("schedule") or {})
    scheduled = []
    for item in doc.get("scheduled", []):
        if str(item.get("sequence", "")) in visible:
            scheduled.append(item)
        else:
            scheduled.append({k: item[k] for k in BUSY_KEYS if k in item} | {"busy": True})
    doc["scheduled"] = scheduled
    doc["unscheduled"] = [u for u in doc.get("unscheduled", []) if str(u.get("sequence", "")) in visible]
    doc["interrupted"] = [i for i in doc.get("interrupted", []) or [] if str(i) in visible]
    if "scheduled_ids" in doc:
        doc["scheduled_ids"] = [p for p in doc["scheduled_ids"] or [] if str(p.get("sequence_id")) in visible]
    if doc.get("interrupted_id") and str(doc["interrupted_id"]) not in visible:
        doc["interrupted_id"] = None
    for holder in (out, doc):
        trigger = holder.get("trigger")
        if trigger and _names_hidden(str(trigger), visible):
            holder["trigger"] = "replanned"
    out["schedule"] = doc
    return out


def _names_hidden(trigger: str, visible: set[str]) -> bool:
    # Triggers read "request <id> accepted", "alert <id> retracted", "majordome: <reason>".
    words = trigger.split()
    return len(words) >= 2 and words[0] in ("request", "alert", "sequence") and words[1] not in visible


def visible_ids(*, db: Database, user: CurrentUser, ids: Iterable[str]) -> set[str]:
    """Those of ``ids`` (request or sequence ids) that belong to the user's programs."""
    wanted = sorted(set(ids))
    if not wanted or not user.programs:
        return set()
    programs = sorted(user.programs)
    with db.session() as s:
        seqs = s.execute(
            select(SequenceRow.id, SequenceRow.request_id)
            .join(RequestRow, RequestRow.id == SequenceRow.request_id)
            .where(SequenceRow.id.in_(wanted), RequestRow.program_code.in_(programs))
        ).all()
        reqs = s.scalars(
            select(RequestRow.id).where(RequestRow.id.in_(wanted), RequestRow.program_code.in_(programs))
        ).all()
        alerts = s.scalars(
            select(RequestRow.alert_id).where(
                RequestRow.alert_id.in_(wanted), RequestRow.program_code.in_(programs)
            )
        ).all()
    return {sid for sid, _ in seqs} | {rid for _, rid in seqs} | set(reqs) | {a for a in alerts if a}


def schedule_view(db: Callable[[], Database]) -> Callable[[dict[str, Any], CurrentUser], dict[str, Any]]:
    """The schedule answer as ``user`` may see it: whole for experts and admins, redacted otherwise."""

    def view(body: dict[str, Any], user: CurrentUser) -> dict[str, Any]:
        if user.sees_all:
            return body
        return redact_schedule(body, visible=visible_ids(db=db(), user=user, ids=schedule_ids(body)))

    return view


_NAMED = re.compile(r"\b(dispatch|interrupting) ([A-Za-z0-9_.:/-]+)")
DISPATCH_BUSY_KEYS = ("kind", "telescope_id", "planned_start", "planned_end")


def _own(seq_id: str, visible: set[str]) -> bool:
    return seq_id in visible or seq_id.startswith("calibration-")


def night_ids(body: dict[str, Any]) -> set[str]:
    """The sequence and request ids the night answer mentions (its dispatch and its reasons)."""
    ids: set[str] = set()
    dispatch = body.get("last_dispatch") or {}
    for key in ("request_id", "sequence_id", "preempts"):
        if dispatch.get(key):
            ids.add(str(dispatch[key]))
    for text in [body.get("reason", ""), *(h.get("reason", "") for h in body.get("history", []))]:
        ids.update(m.group(2) for m in _NAMED.finditer(str(text)))
    return ids


def redact_night(body: dict[str, Any], *, visible: set[str]) -> dict[str, Any]:
    """``body`` (``GET /night``) as seen by a user who may see only the ids in ``visible``."""
    out = dict(body)
    dispatch = out.get("last_dispatch")
    if dispatch and not _own(str(dispatch.get("sequence_id", "")), visible):
        out["last_dispatch"] = {k: dispatch[k] for k in DISPATCH_BUSY_KEYS if k in dispatch} | {"busy": True}
    elif dispatch and dispatch.get("preempts") and not _own(str(dispatch["preempts"]), visible):
        out["last_dispatch"] = dict(dispatch) | {"preempts": "another program's sequence"}

    def hide(text: str) -> str:
        return _NAMED.sub(
            lambda m: m.group(0) if _own(m.group(2), visible) else f"{m.group(1)} another program's sequence",
            text,
        )

    out["reason"] = hide(str(out.get("reason", "")))
    out["history"] = [h | {"reason": hide(str(h.get("reason", "")))} for h in out.get("history", [])]
    return out


def night_view(db: Callable[[], Database]) -> Callable[[dict[str, Any], CurrentUser], dict[str, Any]]:
    """The night answer as ``user`` may see it: whole for experts and admins, redacted otherwise."""

    def view(body: dict[str, Any], user: CurrentUser) -> dict[str, Any]:
        if user.sees_all:
            return body
        return redact_night(body, visible=visible_ids(db=db(), user=user, ids=night_ids(body)))

    return view
