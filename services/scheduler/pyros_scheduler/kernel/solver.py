"""schedule() and reschedule(): constructive pass, gap filling, large-neighbourhood search."""

from __future__ import annotations

import numpy as np

from pyros_scheduler.kernel._state import EPS, INF, BoolArray, Gap, IntArray, Prep, State
from pyros_scheduler.kernel.model import KernelInput, KernelResult, Placement, Reason, Unscheduled

DEFAULT_ITERATIONS = 40
CANDIDATES_PER_MOVE = 24
# The improvement phase stops once this many moves in a row brought no strict gain.
PATIENCE = 8


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
        elif i not in p.static and st.quota_ok(i):
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
    eligible = _eligible(prep, set())
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


def _earliest_after(st: State, i: int, tel: int, after: float, prev: int | None, lo: float) -> float | None:
    """Earliest start of ``i`` on an emptied ``tel`` after ``after`` (following ``prev``)."""
    p = st.p
    base = max(lo, after + (st.cost(prev, i) if prev is not None else 0.0))
    for wlo, whi in p.windows(i):
        t = max(wlo, base)
        if t + p.dur[i] <= whi + EPS:
            return t
    return None


def _insert_alert(
    st: State, a: int, now: float, running: dict[int, int], interrupted: dict[int, str]
) -> list[int]:
    """Put alert ``a`` as early as possible, interrupting/displacing lower-weight work. Returns displaced."""
    p = st.p
    best: tuple[float, int, bool] | None = None
    for tel in range(st.n_tel):
        r = running.get(tel)
        last_fixed = [k for k in st.idx[tel] if k in st.fixed]
        prev = last_fixed[-1] if last_fixed else None
        after = st.where[prev][1] + p.dur[prev] if prev is not None else now
        t = _earliest_after(st, a, tel, max(after, now), prev, now)
        if t is not None and (best is None or t < best[0] - EPS):
            best = (t, tel, False)
        if r is not None and p.w[r] < p.w[a]:
            t = _earliest_after(st, a, tel, now, r, now)
            if t is not None and (best is None or t < best[0] - EPS):
                best = (t, tel, True)
    if best is None:
        return []
    t, tel, interrupt = best
    if interrupt:
        r = running.pop(tel)
        _, t_r = st.remove(r)
        st.put_back(r, tel, t_r, end=now)
        interrupted[r] = p.ids[a]
    displaced: list[int] = []
    while True:
        got = st.find_on(tel, a, t, t + p.dur[a])
        if got is not None:
            st.insert(a, tel, got[1], got[0])
            return displaced
        # Evict the nearest movable placement in the way, then try again.
        victims = [k for k in st.idx[tel] if k not in st.fixed]
        if not victims:
            return displaced
        end = t + p.dur[a]
        v = min(victims, key=lambda k: max(0.0, st.where[k][1] - end, t - st.where[k][1] - p.dur[k]))
        st.remove(v)
        displaced.append(v)


def reschedule(
    previous: KernelResult,
    inp: KernelInput,
    now_s: float,
    *,
    executing: str | None = None,
    preempt_weight: float = 1000.0,
    iterations: int = 10,
    seed: int = 0,
) -> KernelResult:
    """Repair ``previous`` for the changed input ``inp`` from ``now_s`` to the end of the night.

    Added sequences are those of ``inp`` unknown to ``previous``; removed ones are those of
    ``previous`` missing from ``inp``. Work finished before ``now_s`` and the sequence running
    at ``now_s`` (``executing`` or inferred from the plan) are kept, unless an added sequence
    of weight >= ``preempt_weight`` can start earlier by interrupting it: it is then reported
    in ``interrupted`` and as unscheduled with reason ``interrupted``.
    """
    old = previous.prepared if isinstance(previous.prepared, Prep) else None
    prep = Prep.of(inp, old)
    st = State(prep, inp)
    ids = prep.index
    known = previous.unscheduled.keys()
    prev_placed = {pl.id for pl in previous.placements}
    added = [k for k in prep.fresh if prep.ids[k] not in prev_placed and prep.ids[k] not in known]
    running: dict[int, int] = {}
    future: list[int] = []
    for pl in previous.placements:
        k = ids.get(pl.id)
        if k is None or pl.telescope >= st.n_tel:
            continue
        st.put_back(k, pl.telescope, pl.start_s)
        if pl.end_s <= now_s + EPS:
            st.fixed.add(k)
        elif pl.start_s <= now_s + EPS or pl.id == executing:
            st.fixed.add(k)
            running[pl.telescope] = k
        else:
            future.append(k)
    n_removed = len(known) + len(prev_placed) - (prep.n - len(added))
    sibling: dict[int, str] = {}
    for u in previous.unscheduled.values():
        if u.reason is Reason.MANDATORY_SIBLING_FAILED and u.id in ids:
            sibling[ids[u.id]] = u.by or ""
    interrupted: dict[int, str] = {}
    displaced: list[int] = []
    added_set = set(added)
    for a in sorted((k for k in added if prep.w[k] >= preempt_weight), key=lambda k: -prep.w[k]):
        if a not in prep.static and st.quota_ok(a):
            displaced += _insert_alert(st, a, now_s, running, interrupted)
    for g in sorted({prep.group[k] for k in added if prep.group[k] >= 0}):
        _place_group(st, prep.groups[g], now_s, sibling)
    exclude = set(interrupted) | set(sibling)
    eligible = _eligible(prep, exclude)
    for k in _order(prep, np.asarray([k for k in displaced if prep.group[k] >= 0], dtype=np.intp)).tolist():
        if st.quota_ok(k):
            st.place(k, lo=now_s)
    # A displaced or interrupted essential sequence withdraws its request's future work.
    for g in sorted({prep.group[k] for k in [*displaced, *interrupted] if prep.group[k] >= 0}):
        failed = [k for k in prep.groups[g] if prep.essential[k] and (not st.placed[k] or k in interrupted)]
        if failed:
            for k in prep.groups[g]:
                if st.placed[k] and k not in st.fixed:
                    st.remove(k)
                if k != failed[0] and not st.placed[k] and k not in interrupted:
                    sibling[k] = prep.ids[failed[0]]

    def freed() -> list[tuple[float, float]]:
        out = [(now_s, now_s)]
        for pl in previous.placements:
            k = ids.get(pl.id)
            if pl.end_s > now_s and (k is None or st.where.get(k) != (pl.telescope, pl.start_s)):
                out.append((pl.start_s, pl.end_s))
        return out

    filled = _gap_fill(st, eligible, now_s, freed())
    accepted, _ = _improve(st, eligible, now_s, iterations, np.random.default_rng(seed), PATIENCE)
    filled += _gap_fill(st, eligible, now_s, freed())
    # Reasons: carry the previous ones over, recompute those that changed or cite a lost holder.
    placed_ids = {prep.ids[k] for k in st.where}
    lost = prev_placed - placed_ids
    unscheduled = dict(previous.unscheduled)
    for sid in [sid for sid in unscheduled if sid not in ids]:
        del unscheduled[sid]
    for sid in placed_ids:
        unscheduled.pop(sid, None)
    stale = [ids[sid] for sid, u in unscheduled.items() if u.by in lost]
    changed = set(displaced) | added_set | {ids[sid] for sid in lost if sid in ids}
    todo = [k for k in changed | set(stale) if not st.placed[k]]
    for k, alert in interrupted.items():
        unscheduled[prep.ids[k]] = Unscheduled(prep.ids[k], Reason.INTERRUPTED, alert)
    fresh = st.reasons(todo, sibling)
    for k in todo:
        u = fresh[prep.ids[k]]
        gone = prep.last_end[k] <= now_s
        if u.reason in (Reason.NO_ROOM, Reason.DISPLACED) and gone:
            u = Unscheduled(u.id, Reason.WINDOW_PASSED)
        unscheduled[u.id] = u
    stats = {
        "sequences": float(prep.n),
        "placed": float(len(st.where)),
        "added": float(len(added)),
        "removed": float(n_removed),
        "displaced": float(len(displaced)),
        "gap_filled": float(filled),
        "lns_accepted": float(accepted),
    }
    interrupted_ids = tuple(prep.ids[k] for k in interrupted)
    return KernelResult(_placements(st), unscheduled, st.value, interrupted_ids, stats, prep)


__all__ = ["INF", "reschedule", "schedule"]
