"""Sequence ids: made once, when routines accepts a request, and the same everywhere after."""

from __future__ import annotations

from pyros_common.domain.requests import Request


def with_sequence_ids(request: Request, request_id: str, keep: dict[str, str] | None = None) -> Request:
    """``request`` with every sequence id set: ``keep`` (name -> id) first, else ``<request>-s<n>``.

    Ids are made here once, at acceptance; a revision keeps the id of each sequence it keeps.
    """
    keep = keep or {}
    used = set(keep.values()) | {s.id for s in request.sequences if s.id}
    n, seqs = 0, []
    for seq in request.sequences:
        sid = keep.get(seq.name) or (seq.id if seq.id and seq.id.startswith(f"{request_id}-s") else None)
        while sid is None:
            n += 1
            candidate = f"{request_id}-s{n}"
            if candidate not in used:
                sid = candidate
        used.add(sid)
        seqs.append(seq if seq.id == sid else seq.model_copy(update={"id": sid}))
    return request.model_copy(update={"sequences": seqs})
