"""Programs stay apart: what a plain user may see of answers that mix programs (the schedule).

A user who is neither expert nor admin sees their programs' requests and sequences; another
program's scheduled slot stays in the schedule as busy time (telescope, start, end) with no
name, target, program or id, and another program's unscheduled or interrupted items are left out.
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
