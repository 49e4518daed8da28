"""schedule() and reschedule(): constructive pass, gap filling, large-neighbourhood search."""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Container
from typing import ParamSpec, TypeVar

import numpy as np

from pyros_scheduler.kernel._state import EPS, INF, BoolArray, Gap, IntArray, Prep, State
from pyros_scheduler.kernel.model import KernelInput, KernelResult, Placement, Reason, Unscheduled

DEFAULT_ITERATIONS = 40
CANDIDATES_PER_MOVE = 24
# The improvement phase stops once this many moves in a row brought no strict gain.
PATIENCE = 8
# Sequences at or above this weight are alerts: placed first, each at its earliest start,
# and never moved by the improvement moves (priority.ALERT_BASE is 1000).
CRITICAL_WEIGHT = 1000.0
# reschedule() also rebuilds the future from scratch up to this many sequences.
REBUILD_MAX = 400


_P = ParamSpec("_P")
_R = TypeVar("_R")


def without_cycle_collector(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``fn`` with Python's cyclic garbage collector paused, then let it run.

    The kernel allocates many short-lived objects, freed by reference counting, and makes no
    reference cycles: a collection falling inside a replan only walks the process's live heap
    (the service's pool, its modules), which is not the kernel's work. A full pass took 61-72 ms
    in the benchmark's process; at 10,000 sequences three fell inside seven timed runs, so the
    run's time grew faster than its work. Only the caller that paused the collector resumes
    it, so concurrent replans (the improvement thread) never leave it paused.
    """

    @functools.wraps(fn)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        if not gc.isenabled():
            return fn(*args, **kwargs)
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            gc.enable()

    return run


def _critical(p: Prep) -> set[int]:
    """Time-critical sequences: alerts (by weight) and those with a decaying value."""
    return {k for k, w in enumerate(p.w) if w >= CRITICAL_WEIGHT} | set(p.tc)


def _order(p: Prep, idx: IntArray) -> IntArray:
    """Priority order: weight (value per second) first, then the least flexible."""
    if idx.size == 0:
        return idx
    out: IntArray = idx[np.lexsort((idx, p.winlen[idx], -p.w_a[idx]))]
    return out


def _place_group(st: State, members: list[int], lo: float, sibling: dict[int, str]) -> None:
    """Place a request's sequences together; an essential failure withdraws the whole request."""
    p = st.p
    todo = sorted(members, key=lambda k: (not p.essential[k], -p.w[k], k))
    done: list[int] = []
    for k in todo:
        if st.placed[k] or k in st.fixed:
            continue
        ok = k not in p.static and st.quota_ok(k) and st.place(k, lo=lo)
        if ok:
            done.append(k)
        elif p.essential[k]:
            for d in done:
                st.remove(d)
            for m in members:
                if m != k and not st.placed[m]:
                    sibling[m] = p.ids[k]
            return


def _construct(st: State, sibling: dict[int, str], lo: float) -> None:
    p = st.p
    key_w = p.w_a.copy()
    key_len = p.winlen.copy()
    for members in p.groups:
        key_w[members] = key_w[members].max()
        key_len[members] = key_len[members].min()
    idx = np.arange(p.n, dtype=np.intp)
    order = idx[np.lexsort((idx, key_len, -key_w))].tolist()
    seen_group: set[int] = set()
    # Once the night fills up most sequences no longer fit anywhere: after `refresh` failed
    # tries in a row, a vectorised pass over all windows marks those that still fit some free
    # gap, and the others are not searched one by one (they stay unplaced either way; the
    # gap filling at the end looks at every sequence again).
    refresh = 12
    alive: BoolArray | None = None
    fails = 0
    for i in order:
        g = p.group[i]
        if g >= 0:
            if g not in seen_group:
                seen_group.add(g)
                _place_group(st, p.groups[g], lo, sibling)
        elif i not in p.static and not st.placed[i] and st.quota_ok(i):
            if fails >= refresh:
                fails = 0
                alive = np.zeros(p.n, dtype=bool)
                alive[st.candidates_for(st.free_gaps(lo), ~st.placed)] = True
            if alive is None or alive[i]:
                fails = 0 if st.place(i, lo=lo) else fails + 1


def _eligible(p: Prep, exclude: set[int]) -> BoolArray:
    """Sequences the repair moves may add or remove: not in a request group, not static."""
    e = np.asarray(p.group, dtype=np.intp) < 0 if p.n else np.zeros(0, dtype=bool)
    bad = list(p.static) + list(exclude)
    if bad:
        e[np.asarray(bad, dtype=np.intp)] = False
    return e


def _gap_fill(
    st: State, eligible: BoolArray, lo: float, near: list[tuple[float, float]] | None = None
) -> int:
    """Place candidates into idle time after ``lo`` (only the gaps touching ``near`` if given).

    After each placement the remaining candidates are filtered again against the shrunk gaps,
    so the sequences that no longer fit are never tried.
    """

    def gaps() -> list[Gap]:
        out = st.free_gaps(lo)
        if near is not None:
            out = [g for g in out if any(g[0] <= y + EPS and x <= g[1] + EPS for x, y in near)]
        return out

    cand = _order(st.p, st.candidates_for(gaps(), eligible)).tolist()
    n = 0
    while cand:
        for pos, i in enumerate(cand):
            if st.quota_ok(i) and st.place(i, lo=lo):
                n += 1
                mask = np.zeros(st.p.n, dtype=bool)
                mask[cand[pos + 1 :]] = True
                cand = _order(st.p, st.candidates_for(gaps(), mask)).tolist()
                break
        else:
            break
    return n


def _improve(
    st: State,
    eligible: BoolArray,
    lo: float,
    iterations: int,
    rng: np.random.Generator,
    patience: int | None = PATIENCE,
) -> tuple[int, int]:
    """Ruin and recreate: empty a stretch of one telescope and refill it, keep it if no worse.

    At most ``iterations`` moves; stops early after ``patience`` moves in a row without a
    strict gain (None: never). Returns (accepted, moves made).
    """
    p = st.p
    lo = max(lo, p.night[0])
    hi_night = p.night[1]
    accepted = 0
    stall = 0
    done = 0
    for _ in range(iterations):
        if patience is not None and stall >= patience:
            break
        done += 1
        stall += 1
        tel = int(rng.integers(st.n_tel))
        idx = st.idx[tel]
        m = len(idx)
        j = int(rng.integers(0, m + 1))
        take: list[int] = []
        for k in idx[j : j + int(rng.integers(1, 4))]:
            if not eligible[k] or k in st.fixed or st.where[k][1] < lo:
                break
            take.append(k)
        a = st.ends[tel][j - 1] if j > 0 else lo
        jj = j + len(take)
        b = st.starts[tel][jj] if jj < m else hi_night
        a = max(a, lo)
        if b - a <= EPS:
            continue
        before = st.value
        old = [(k, *st.remove(k)) for k in take]
        before_k = idx[j - 1] if j > 0 and st.ends[tel][j - 1] >= a - EPS else -1
        after_k = idx[jj] if jj < len(idx) else -1
        cand = st.candidates_for([(a, b, before_k, after_k)], eligible)
        if cand.size == 0:
            for k, t0, s0 in old:
                st.put_back(k, t0, s0)
            continue
        noise = (0.0, 0.15, 0.5)[int(rng.integers(3))]
        key = p.w_a[cand] * (1.0 + noise * rng.random(cand.size))
        if int(rng.integers(4)) == 0:
            key = key * p.dur_a[cand]
        if cand.size > CANDIDATES_PER_MOVE:
            top = np.argpartition(-key, CANDIDATES_PER_MOVE)[:CANDIDATES_PER_MOVE]
            keep = np.zeros(cand.size, dtype=bool)
            keep[top] = True
            if take:
                pos = np.searchsorted(cand, np.asarray(take, dtype=np.intp))
                pos = pos[pos < cand.size]
                keep[pos[np.isin(cand[pos], take)]] = True
            cand, key = cand[keep], key[keep]
        inserted: list[int] = []
        # [a, b] is empty now; what is inserted uses it up: a longer candidate cannot fit.
        room = b - a
        dur = p.dur
        for i in cand[np.argsort(-key, kind="stable")].tolist():
            if dur[i] <= room + EPS and st.quota_ok(i) and st.place(i, lo=a, hi=b, tels=(tel,)):
                inserted.append(i)
                room -= dur[i]
        delta = st.value - before
        if delta > EPS:
            stall = 0
        if delta > EPS or (delta > -EPS and rng.random() < 0.3):
            accepted += 1
        else:
            for i in inserted:
                st.remove(i)
            for k, t0, s0 in old:
                st.put_back(k, t0, s0)
    return accepted, done


def _placements(st: State) -> tuple[Placement, ...]:
    p = st.p
    out: list[Placement] = []
    for tel in range(st.n_tel):
        for s, e, k in zip(st.starts[tel], st.ends[tel], st.idx[tel], strict=True):
            out.append(Placement(p.ids[k], tel, s, e))
    return tuple(out)


@without_cycle_collector
def schedule(inp: KernelInput, *, iterations: int | None = None, seed: int = 0) -> KernelResult:
    """Plan the night: priority-ordered construction, gap filling, then ``iterations`` LNS moves.

    Deterministic for a given ``seed``. ``iterations`` defaults to min(40, 2 × sequences),
    stopping early after ``PATIENCE`` moves in a row without a gain; an explicit
    ``iterations`` runs exactly that many moves.
    """
    prep = Prep.of(inp)
    st = State(prep, inp)
    sibling: dict[int, str] = {}
    lo = prep.night[0]
    _construct(st, sibling, lo)
    eligible = _eligible(prep, _critical(prep))
    n_iter = min(DEFAULT_ITERATIONS, 2 * prep.n) if iterations is None else iterations
    rng = np.random.default_rng(seed)
    # Adaptive by default (early stop on no gain); an explicit ``iterations`` runs them all.
    accepted, n_iter = _improve(st, eligible, lo, n_iter, rng, PATIENCE if iterations is None else None)
    filled = _gap_fill(st, eligible, lo)
    unplaced = np.flatnonzero(~st.placed).tolist()
    unscheduled = st.reasons(unplaced, sibling)
    stats = {
        "sequences": float(prep.n),
        "placed": float(len(st.where)),
        "lns_iterations": float(n_iter),
        "lns_accepted": float(accepted),
        "gap_filled": float(filled),
    }
    return KernelResult(_placements(st), unscheduled, st.value, (), stats, prep)


ALERT_HORIZON_S = 1800.0  # lower-weight work cleared at first beyond the alert's end [s]


def _alert_slot(
    st: State, a: int, now: float, running: dict[int, int]
) -> tuple[tuple[float, int, int] | None, tuple[int, tuple[float, int, int]] | None, list[Found]]:
    """The alert's earliest slot in the current state, and the one it gets by interrupting a
    lower-weight running sequence (if earlier); the state is left as it was. Also every slot
    asked for (telescope asked, answer), so that the caller can tell what blocked them."""
    p = st.p
    wa = p.w[a]
    best = st.find(a, lo=now)
    asked: list[Found] = [(None, best)]
    option: tuple[int, tuple[float, int, int]] | None = None
    for tel, r in running.items():
        if p.w[r] >= wa or st.length.get(r, 0.0) <= 0.0:
            continue
        _, t_r = st.remove(r)
        st.put_back(r, tel, t_r, end=now)
        got = st.find(a, lo=now, tels=(tel,))
        asked.append((tel, got))
        if got is not None and (best is None or got[0] < best[0] - EPS):
            if option is None or got[0] < option[1][0] - EPS:
                option = (tel, got)
        st.remove(r)
        st.put_back(r, tel, t_r)
    return best, option, asked


Found = tuple[int | None, tuple[float, int, int] | None]


def _insert_alert(
    st: State, a: int, now: float, running: dict[int, int], interrupted: dict[int, str]
) -> list[int]:
    """Put alert ``a`` at its earliest feasible start: only fixed work (what ran, what runs) and
    work of at least its weight stand in its way; a lower-weight running sequence is
    interrupted when that lets the alert start earlier. Lower-weight work it overlaps is
    displaced (returned); the rest stays where it was.

    Only the lower-weight work that starts before a horizon is lifted out (then put back where
    it was, if it still fits): work that starts later than the alert's slot plus the transition
    to it cannot change that slot. If a slot comes too close to the first work left in place,
    or none is found, the horizon moves on (at the end, every lower-weight sequence is out)."""
    p = st.p
    wa = p.w[a]
    movable = sorted((k for k in st.where if k not in st.fixed and p.w[k] < wa), key=lambda k: st.where[k][1])
    saved: list[tuple[int, int, float]] = []
    out = 0
    first_window = next((max(lo, now) for lo, hi in p.windows(a) if hi > now), now)
    horizon = first_window + p.dur[a] + ALERT_HORIZON_S
    while True:
        while out < len(movable) and st.where[movable[out]][1] < horizon:
            k = movable[out]
            saved.append((k, *st.remove(k)))
            out += 1
        best, option, asked = _alert_slot(st, a, now, running)
        if out == len(movable):
            break
        nxt: dict[int, int] = {}  # telescope -> first lower-weight sequence left in place there
        for k in movable[out:]:
            nxt.setdefault(st.where[k][0], k)
        clear = True
        latest = horizon
        for tel, got in asked:
            if got is None:
                clear, latest = False, INF
                break
            t, on, _ = got
            r = nxt.get(on if tel is None else tel)
            if r is not None and t + p.dur[a] + st.cost(a, r) > st.where[r][1] - EPS:
                clear = False
                latest = max(latest, t + p.dur[a] + ALERT_HORIZON_S)
        if clear:
            break
        horizon = latest if latest > horizon else INF
    if option is not None:
        tel, best = option
        r = running.pop(tel)
        _, t_r = st.remove(r)
        st.put_back(r, tel, t_r, end=now)
        interrupted[r] = p.ids[a]
        best = st.find(a, lo=now, tels=(tel,))
    if best is not None:
        st.insert(a, best[1], best[2], best[0])
    displaced: list[int] = []
    for k, tel, t in sorted(saved, key=lambda s: (-p.w[s[0]], s[0])):
        fit = st.find_on(tel, k, t, t + p.dur[k]) if st.quota_ok(k) else None
        if fit is not None and abs(fit[0] - t) <= EPS:
            st.insert(k, tel, fit[1], t)
        else:
            displaced.append(k)
    return displaced


def _settle_groups(st: State, sibling: dict[int, str], interrupted: Container[int]) -> None:
    """A group with an essential sequence missing (or interrupted) withdraws its future work."""
    p = st.p
    for members in p.groups:
        failed = [k for k in members if p.essential[k] and (not st.placed[k] or k in interrupted)]
        if failed:
            for k in members:
                if st.placed[k] and k not in st.fixed:
                    st.remove(k)
                if k != failed[0] and not st.placed[k] and k not in interrupted:
                    sibling[k] = p.ids[failed[0]]
        else:
            for k in members:
                sibling.pop(k, None)


def _changed(old: Prep | None, prep: Prep, k: int) -> bool:
    """Whether sequence ``k`` of ``prep`` differs from the one of the same id in ``old``."""
    if old is None:
        return False
    j = old.index.get(prep.ids[k])
    if j is None:
        return True
    a, b = old.seqs[j], prep.seqs[k]
    return a is not b and a != b


def _fits_alone(p: Prep, k: int, t: float, length: float) -> bool:
    """A future placement of ``k`` at ``t`` obeys its (new) duration and windows."""
    if abs(length - p.dur[k]) > EPS:
        return False
    d = p.dur[k]
    return any(lo - EPS <= t and t + d <= hi + EPS for lo, hi in p.windows(k))


def _revalidate(st: State, now: float) -> list[int]:
    """Drop the kept future placements that the new input no longer allows.

    Per telescope, in time order: a movable placement must fit its windows and duration,
    start at or after ``now``, and leave the transition after the placement kept before it;
    when fixed work (what ran, what runs) follows movable work too closely, the movable work
    goes. Returns the dropped sequences.
    """
    p = st.p
    dropped: list[int] = []
    for tel in range(st.n_tel):
        kept: list[int] = []
        for k in list(st.idx[tel]):
            t = st.where[k][1]
            fixed = k in st.fixed
            if not fixed and (t < now - EPS or not _fits_alone(p, k, t, st.length[k])):
                st.remove(k)
                dropped.append(k)
                continue
            while kept:
                prev = kept[-1]
                t_prev = st.where[prev][1]
                if t + EPS >= t_prev + st.length[prev] + st.cost(prev, k):
                    break
                if not fixed:
                    st.remove(k)
                    dropped.append(k)
                    break
                if prev in st.fixed:
                    break  # history overlapping history: nothing to repair
                kept.pop()
                st.remove(prev)
                dropped.append(prev)
            if st.placed[k]:
                kept.append(k)
    return dropped


def _enforce_quotas(st: State) -> list[int]:
    """Remove movable work of programs over their quota (least valuable, then latest, first)."""
    p = st.p
    out: list[int] = []
    for prog, q in st.quota.items():
        if st.used.get(prog, 0.0) <= q + EPS:
            continue
        movable = sorted(
            (k for k in st.where if p.prog[k] == prog and k not in st.fixed),
            key=lambda k: (st.gain[k], -st.where[k][1]),
        )
        for k in movable:
            if st.used.get(prog, 0.0) <= q + EPS:
                break
            st.remove(k)
            out.append(k)
    return out


@without_cycle_collector
def reschedule(
    previous: KernelResult,
    inp: KernelInput,
    now_s: float,
    *,
    executing: str | None = None,
    preempt_weight: float = CRITICAL_WEIGHT,
    iterations: int = 10,
    seed: int = 0,
    rebuild: bool | None = None,
) -> KernelResult:
    """Repair ``previous`` for the changed input ``inp`` from ``now_s`` to the end of the night.

    Correct by construction: a sequence of ``inp`` unknown to ``previous`` or different from
    the one it had (any field: windows, duration, weight, key, program...) is a new
    sequence; every kept future placement is checked again against the new input (windows,
    duration, transitions) and dropped when it no longer fits; programs over their (possibly
    lowered) quota lose their least valuable future work; every request group that is not
    complete is tried again. Work finished before ``now_s`` and the sequence running at
    ``now_s`` (``executing`` or inferred from the plan) are kept as they ran (the past is not
    undone), unless a new sequence of weight >= ``preempt_weight`` can start earlier by
    interrupting it: it is then reported in ``interrupted`` and as unscheduled with reason
    ``interrupted``. New alerts go first, each at its earliest feasible start.

    ``rebuild`` (default: pools of at most ``REBUILD_MAX`` sequences) also plans the future
    afresh around the fixed work and keeps the better of the repaired and the rebuilt plan;
    the service's fast path for alerts passes False and rebuilds after publishing.
    """
    old = previous.prepared if isinstance(previous.prepared, Prep) else None
    prep = Prep.of(inp, old)
    st = State(prep, inp)
    ids = prep.index
    known = previous.unscheduled.keys()
    prev_placed = {pl.id for pl in previous.placements}
    changed = {k for k in prep.fresh if _changed(old, prep, k)}
    added = [
        k for k in prep.fresh if k in changed or (prep.ids[k] not in prev_placed and prep.ids[k] not in known)
    ]
    running: dict[int, int] = {}
    for pl in previous.placements:
        k = ids.get(pl.id)
        if k is None or pl.telescope >= st.n_tel:
            continue
        ran = pl.end_s <= now_s + EPS
        runs = not ran and (pl.start_s <= now_s + EPS or pl.id == executing)
        if k in changed and not (ran or runs):
            continue  # a changed sequence is placed afresh
        # As it was recorded: an interrupted run keeps its shortened length.
        st.put_back(k, pl.telescope, pl.start_s, end=pl.end_s)
        if ran:
            st.fixed.add(k)
        elif runs:
            st.fixed.add(k)
            running[pl.telescope] = k
    dropped = _revalidate(st, now_s)
    dropped += _enforce_quotas(st)
    n_removed = len(known) + len(prev_placed) - (prep.n - len(added))
    sibling: dict[int, str] = {}
    for u in previous.unscheduled.values():
        if u.reason is Reason.MANDATORY_SIBLING_FAILED and u.id in ids:
            sibling[ids[u.id]] = u.by or ""
    interrupted: dict[int, str] = {}
    displaced: list[int] = []
    added_set = set(added)
    fresh_alerts = {k for k in [*added, *dropped] if prep.w[k] >= preempt_weight}
    for a in sorted(fresh_alerts, key=lambda k: (-prep.w[k], k)):
        if a not in prep.static and not st.placed[a] and st.quota_ok(a):
            displaced += _insert_alert(st, a, now_s, running, interrupted)
    # Every request group not complete is tried again (its blocker may have gone).
    groups = [
        g
        for g, members in enumerate(prep.groups)
        if any(not st.placed[k] for k in members) and not any(k in interrupted for k in members)
    ]
    groups.sort(key=lambda g: (-max(prep.w[k] for k in prep.groups[g]), g))
    for g in groups:
        for k in prep.groups[g]:
            sibling.pop(k, None)
        _place_group(st, prep.groups[g], now_s, sibling)
    exclude = set(interrupted) | set(sibling) | _critical(prep)
    eligible = _eligible(prep, exclude)
    retry = [k for k in [*displaced, *dropped, *added] if prep.group[k] < 0 and not st.placed[k]]
    for k in _order(prep, np.asarray(sorted(set(retry)), dtype=np.intp)).tolist():
        if k not in prep.static and k not in interrupted and st.quota_ok(k):
            st.place(k, lo=now_s)
    _settle_groups(st, sibling, interrupted)

    def freed() -> list[tuple[float, float]]:
        out = [(now_s, now_s)]
        for pl in previous.placements:
            k = ids.get(pl.id)
            if pl.end_s > now_s and (k is None or st.where.get(k) != (pl.telescope, pl.start_s)):
                out.append((pl.start_s, pl.end_s))
        return out

    filled = _gap_fill(st, eligible, now_s, freed())
    accepted, _ = _improve(st, eligible, now_s, iterations, np.random.default_rng(seed), PATIENCE)
    if accepted:  # else the plan is the one the first fill left: nothing more fits
        filled += _gap_fill(st, eligible, now_s, freed())
    rebuilt = False
    if rebuild if rebuild is not None else prep.n <= REBUILD_MAX:
        # The future planned afresh around what is fixed; the better of the two plans is kept.
        alt = State(prep, inp)
        for k in st.fixed:
            tel, t = st.where[k]
            alt.put_back(k, tel, t, end=t + st.length[k])
        alt.fixed = set(st.fixed)
        sib2: dict[int, str] = {}
        _construct(alt, sib2, now_s)
        _settle_groups(alt, sib2, interrupted)
        _improve(
            alt, eligible, now_s, max(iterations, 2 * DEFAULT_ITERATIONS), np.random.default_rng(seed), None
        )
        _gap_fill(alt, eligible, now_s)
        if alt.value > st.value + EPS:
            st, sibling, rebuilt = alt, sib2, True
    # Reasons: carry the previous ones over, recompute those that changed or cite a lost holder.
    placed_ids = {prep.ids[k] for k in st.where}
    lost = prev_placed - placed_ids
    unscheduled = dict(previous.unscheduled)
    for sid in unscheduled.keys() - ids.keys():
        del unscheduled[sid]
    for sid in placed_ids:
        unscheduled.pop(sid, None)
    stale = [
        ids[sid]
        for sid, u in unscheduled.items()
        if u.by in lost or u.reason in (Reason.QUOTA_EXHAUSTED, Reason.MANDATORY_SIBLING_FAILED)
    ]
    grouped = {k for g in groups for k in prep.groups[g]}
    redo = set(displaced) | added_set | set(dropped) | grouped | {ids[sid] for sid in lost if sid in ids}
    if rebuilt:
        redo = set(range(prep.n))
    todo = [k for k in redo | set(stale) if not st.placed[k]]
    for k, alert in interrupted.items():
        unscheduled[prep.ids[k]] = Unscheduled(prep.ids[k], Reason.INTERRUPTED, alert)
    fresh = st.reasons(todo, sibling)
    for k in todo:
        u = fresh[prep.ids[k]]
        gone = prep.last_end[k] <= now_s
        if u.reason in (Reason.NO_ROOM, Reason.DISPLACED) and gone:
            u = Unscheduled(u.id, Reason.WINDOW_PASSED)
        unscheduled[u.id] = u
    for sid in previous.interrupted:
        k = ids.get(sid)
        if k is not None and st.placed[k] and sid not in unscheduled:
            unscheduled[sid] = previous.unscheduled.get(sid) or Unscheduled(sid, Reason.INTERRUPTED)
    stats = {
        "sequences": float(prep.n),
        "placed": float(len(st.where)),
        "added": float(len(added)),
        "changed": float(len(changed)),
        "removed": float(n_removed),
        "revalidated_out": float(len(dropped)),
        "displaced": float(len(displaced)),
        "groups_retried": float(len(groups)),
        "gap_filled": float(filled),
        "lns_accepted": float(accepted),
        "rebuilt": float(rebuilt),
    }
    kept_interrupted = [sid for sid in previous.interrupted if sid in placed_ids]
    interrupted_ids = tuple(dict.fromkeys([*kept_interrupted, *(prep.ids[k] for k in interrupted)]))
    return KernelResult(_placements(st), unscheduled, st.value, interrupted_ids, stats, prep)


__all__ = ["CRITICAL_WEIGHT", "INF", "reschedule", "schedule"]
