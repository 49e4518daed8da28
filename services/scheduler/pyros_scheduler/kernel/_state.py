"""Prepared input and the mutable timeline state shared by schedule() and reschedule()."""

from __future__ import annotations

import itertools
import math
import operator
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import numpy.typing as npt
from pyros_common.domain.programs.priority import time_critical_factor

from pyros_scheduler.kernel.model import KernelInput, KSequence, Reason, Unscheduled
from pyros_scheduler.kernel.transitions import PairTransitionModel, VectorTransitionModel

EPS = 1e-6
INF = math.inf
# _first_holder tests every (window, placement) pair directly up to this many pairs.
DENSE_HOLDER_TESTS = 20_000
IntArray = npt.NDArray[np.intp]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Gap = tuple[float, float, int, int]  # start, end, placement before (-1), placement after (-1)


class Prep:
    """Arrays derived once from a KernelInput: usable windows (clipped to the night), groups."""

    def __init__(self, seqs: Sequence[KSequence], night: tuple[float, float]) -> None:
        n = len(seqs)
        self.n = n
        self.seqs = seqs
        self.night = (float(night[0]), float(night[1]))
        self.ids: list[str] = [s.id for s in seqs]
        self.fresh: list[int] = list(range(n))
        self.index: dict[str, int] = {sid: k for k, sid in enumerate(self.ids)}
        if len(self.index) != n:
            raise ValueError("sequence ids must be unique")
        self.dur: list[float] = [float(s.duration_s) for s in seqs]
        self.w: list[float] = [float(s.weight) for s in seqs]
        self.prog: list[str] = [s.program for s in seqs]
        if n and min(self.dur) <= 0:
            raise ValueError("durations must be > 0")
        nwin = np.fromiter((len(s.windows) for s in seqs), np.intp, n)
        raw = np.fromiter((x for s in seqs for iv in s.windows for x in iv), np.float64).reshape(-1, 2)
        wseq = np.repeat(np.arange(n, dtype=np.intp), nwin)
        static: dict[int, Reason] = {}
        for k in np.flatnonzero(nwin == 0).tolist():
            static[k] = Reason.NEVER_VISIBLE
        self._finish(wseq, raw[:, 0], raw[:, 1], static, clip=True)

    def _finish(
        self, wseq: IntArray, lo: FloatArray, hi: FloatArray, static: dict[int, Reason], *, clip: bool
    ) -> None:
        n = self.n
        self.dur_a: FloatArray = np.asarray(self.dur, dtype=np.float64)
        self.w_a: FloatArray = np.asarray(self.w, dtype=np.float64)
        if clip:
            had = np.bincount(wseq, minlength=n) > 0
            lo = np.maximum(lo, self.night[0])
            hi = np.minimum(hi, self.night[1])
            in_night = hi > lo
            usable = in_night & (hi - lo >= self.dur_a[wseq] - EPS)
            any_night = np.bincount(wseq[in_night], minlength=n) > 0
            any_usable = np.bincount(wseq[usable], minlength=n) > 0
            for k in np.flatnonzero(had & ~any_night).tolist():
                static[k] = Reason.OUTSIDE_NIGHT
            for k in np.flatnonzero(any_night & ~any_usable).tolist():
                static[k] = Reason.WINDOW_TOO_SHORT
            wseq, lo, hi = wseq[usable], lo[usable], hi[usable]
        self.static = static
        order = np.lexsort((lo, wseq))
        self.wseq: IntArray = wseq[order]
        self.wlo: FloatArray = lo[order]
        self.whi: FloatArray = hi[order]
        self.ptr: list[int] = np.searchsorted(self.wseq, np.arange(n + 1)).tolist()
        self._wlo: list[float] = self.wlo.tolist()
        self._whi: list[float] = self.whi.tolist()
        self.winlen: FloatArray = np.bincount(self.wseq, weights=self.whi - self.wlo, minlength=n).astype(
            np.float64
        )
        last = np.full(n, -INF)
        np.maximum.at(last, self.wseq, self.whi)
        self.last_end: FloatArray = last
        # Time-critical sequences: (reference, index, scale) of their decaying value.
        self.tc: dict[int, tuple[float, float, float]] = {
            k: (float(s.decay_ref_s), float(s.decay_index), float(s.decay_scale_s))
            for k, s in enumerate(self.seqs)
            if s.decay_ref_s is not None and s.decay_index
        }
        self.req_ids: set[str] = {s.request_id for s in self.seqs if s.request_id}
        # Groups: requests whose sequences stand or fall together (see package docstring).
        self.group: list[int] = [-1] * n
        self.groups: list[list[int]] = []
        self.essential: list[bool] = [False] * n
        by_req: dict[str, list[int]] = {}
        for s in self.seqs:
            if s.request_id and (s.mandatory or s.all_or_nothing):
                by_req.setdefault(s.request_id, [])
        if by_req:
            for k, s in enumerate(self.seqs):
                if s.request_id in by_req:
                    by_req[s.request_id].append(k)
                    self.essential[k] = s.mandatory or s.all_or_nothing
            for members in by_req.values():
                g = len(self.groups)
                self.groups.append(members)
                for k in members:
                    self.group[k] = g

    @classmethod
    def of(cls, inp: KernelInput, old: Prep | None = None) -> Prep:
        """Prepare ``inp``, reusing ``old`` for the sequence objects it already prepared."""
        night = (float(inp.night[0]), float(inp.night[1]))
        seqs = inp.sequences
        if old is None or old.night != night:
            return cls(seqs, night)
        if len(seqs) >= old.n and all(map(operator.is_, itertools.islice(seqs, old.n), old.seqs)):
            return cls._appended(old, seqs)
        old_k = [old.index.get(s.id, -1) for s in seqs]
        old_seqs = old.seqs
        fresh_pos = [
            j for j, (k, s) in enumerate(zip(old_k, seqs, strict=True)) if k < 0 or old_seqs[k] is not s
        ]
        fresh = cls([seqs[j] for j in fresh_pos], night)
        for j in fresh_pos:
            old_k[j] = -1
        self = cls.__new__(cls)
        n = len(seqs)
        self.n, self.seqs, self.night = n, seqs, night
        self.ids = [s.id for s in seqs]
        self.index = {sid: k for k, sid in enumerate(self.ids)}
        if len(self.index) != n:
            raise ValueError("sequence ids must be unique")
        self.fresh = fresh_pos
        f_of = dict(zip(fresh_pos, range(len(fresh_pos)), strict=True))
        self.dur = [old.dur[k] if k >= 0 else fresh.dur[f_of[j]] for j, k in enumerate(old_k)]
        self.w = [old.w[k] if k >= 0 else fresh.w[f_of[j]] for j, k in enumerate(old_k)]
        self.prog = [old.prog[k] if k >= 0 else fresh.prog[f_of[j]] for j, k in enumerate(old_k)]
        old2new = np.full(old.n, -1, dtype=np.intp)
        ok = np.asarray(old_k, dtype=np.intp)
        kept = np.flatnonzero(ok >= 0)
        old2new[ok[kept]] = kept
        fresh2new = np.asarray(fresh_pos, dtype=np.intp)
        m = old2new[old.wseq] >= 0
        wseq = np.concatenate([old2new[old.wseq[m]], fresh2new[fresh.wseq]])
        lo = np.concatenate([old.wlo[m], fresh.wlo])
        hi = np.concatenate([old.whi[m], fresh.whi])
        static = {int(old2new[k]): r for k, r in old.static.items() if old2new[k] >= 0}
        static.update({fresh_pos[k]: r for k, r in fresh.static.items()})
        self._finish(wseq, lo, hi, static, clip=False)
        return self

    @classmethod
    def _appended(cls, old: Prep, seqs: Sequence[KSequence]) -> Prep:
        """Fast path: ``seqs`` is ``old.seqs`` with sequences appended."""
        tail = cls(seqs[old.n :], old.night)
        self = cls.__new__(cls)
        self.n, self.seqs, self.night = len(seqs), seqs, old.night
        self.ids = old.ids + tail.ids
        self.index = dict(old.index)
        self.index.update((sid, old.n + k) for k, sid in enumerate(tail.ids))
        if len(self.index) != self.n:
            raise ValueError("sequence ids must be unique")
        self.dur, self.w, self.prog = old.dur + tail.dur, old.w + tail.w, old.prog + tail.prog
        self.fresh = list(range(old.n, self.n))
        static = dict(old.static)
        static.update({old.n + k: r for k, r in tail.static.items()})
        wseq = np.concatenate([old.wseq, tail.wseq + old.n])
        if old.req_ids & tail.req_ids:
            # a new sequence of a known request: its groups are rebuilt with everything else
            self._finish(
                wseq,
                np.concatenate([old.wlo, tail.wlo]),
                np.concatenate([old.whi, tail.whi]),
                static,
                clip=False,
            )
            return self
        # Both parts are already sorted (sequence, start): the arrays are joined as they are.
        m = len(old._wlo)
        self.static = static
        self.dur_a = np.concatenate([old.dur_a, tail.dur_a])
        self.w_a = np.concatenate([old.w_a, tail.w_a])
        self.wseq = wseq
        self.wlo = np.concatenate([old.wlo, tail.wlo])
        self.whi = np.concatenate([old.whi, tail.whi])
        self.ptr = old.ptr[:-1] + [m + x for x in tail.ptr]
        self._wlo = old._wlo + tail._wlo
        self._whi = old._whi + tail._whi
        self.winlen = np.concatenate([old.winlen, tail.winlen])
        self.last_end = np.concatenate([old.last_end, tail.last_end])
        self.tc = {**old.tc, **{old.n + k: v for k, v in tail.tc.items()}}
        self.req_ids = old.req_ids | tail.req_ids
        self.group = old.group + [g + len(old.groups) if g >= 0 else -1 for g in tail.group]
        self.groups = old.groups + [[old.n + k for k in members] for members in tail.groups]
        self.essential = old.essential + tail.essential
        return self

    def factor(self, i: int, t: float) -> float:
        """Share of ``i``'s weight left when it starts at ``t`` (1 unless time-critical)."""
        tc = self.tc.get(i)
        if tc is None:
            return 1.0
        return time_critical_factor(t - tc[0], tc[1], tc[2])

    def windows(self, i: int) -> Iterable[tuple[float, float]]:
        a, b = self.ptr[i], self.ptr[i + 1]
        return zip(self._wlo[a:b], self._whi[a:b], strict=True)


class State:
    """Per-telescope timelines (sorted starts/ends/indices), quotas used and the objective."""

    def __init__(self, prep: Prep, inp: KernelInput) -> None:
        self.p = prep
        self.cost: Callable[[int, int], float] = inp.transition.cost
        tr = inp.transition
        self.vector = tr if isinstance(tr, VectorTransitionModel) else None
        self.pairs = tr if isinstance(tr, PairTransitionModel) else None
        self.n_tel = inp.n_telescopes
        self.starts: list[list[float]] = [[] for _ in range(self.n_tel)]
        self.ends: list[list[float]] = [[] for _ in range(self.n_tel)]
        self.idx: list[list[int]] = [[] for _ in range(self.n_tel)]
        self.where: dict[int, tuple[int, float]] = {}
        self.length: dict[int, float] = {}
        self.gain: dict[int, float] = {}
        self.placed: BoolArray = np.zeros(prep.n, dtype=bool)
        self.quota = {k: float(v) for k, v in inp.quotas_s.items()}
        self.used: dict[str, float] = {}
        self.fixed: set[int] = set()
        self.value = 0.0

    def quota_ok(self, i: int) -> bool:
        if not self.quota:
            return True
        prog = self.p.prog[i]
        q = self.quota.get(prog)
        return q is None or self.used.get(prog, 0.0) + self.p.dur[i] <= q + EPS

    def find_on(self, tel: int, i: int, lo: float, hi: float) -> tuple[float, int] | None:
        """Earliest start in [lo, hi - duration] on ``tel`` respecting neighbours and transitions."""
        d = self.p.dur[i]
        latest = hi - d
        if latest < lo - EPS:
            return None
        starts, ends, idx, cost = self.starts[tel], self.ends[tel], self.idx[tel], self.cost
        m = len(starts)
        j = bisect_right(starts, lo)
        while True:
            base = lo
            if j > 0:
                base = max(lo, ends[j - 1])
                if base > latest + EPS:
                    return None
            # Cheap test first: the raw gap must hold the duration before transitions are asked.
            if j < m and starts[j] - base < d - EPS:
                j += 1
                continue
            t = max(lo, ends[j - 1] + cost(idx[j - 1], i)) if j > 0 else lo
            if t <= latest + EPS:
                if j == m:
                    return t, j
                if t + d + cost(i, idx[j]) <= starts[j] + EPS:
                    return t, j
            elif j == m:
                return None
            j += 1

    def find(
        self, i: int, lo: float = -INF, hi: float = INF, tels: Iterable[int] | None = None
    ) -> tuple[float, int, int] | None:
        """Earliest (start, telescope, position) over the sequence's windows clipped to [lo, hi]."""
        best: tuple[float, int, int] | None = None
        for wlo, whi in self.p.windows(i):
            a, b = max(wlo, lo), min(whi, hi)
            if best is not None and a >= best[0]:
                break
            for tel in range(self.n_tel) if tels is None else tels:
                got = self.find_on(tel, i, a, b)
                if got is not None and (best is None or got[0] < best[0]):
                    best = (got[0], tel, got[1])
        return best

    def insert(self, i: int, tel: int, pos: int, t: float, end: float | None = None) -> None:
        """Place ``i`` at ``t``; ``end`` earlier than t + duration records an interrupted run."""
        length = self.p.dur[i] if end is None else end - t
        self.starts[tel].insert(pos, t)
        self.ends[tel].insert(pos, t + length)
        self.idx[tel].insert(pos, i)
        self.where[i] = (tel, t)
        self.length[i] = length
        self.placed[i] = True
        prog = self.p.prog[i]
        self.used[prog] = self.used.get(prog, 0.0) + length
        gain = self.p.w[i] * length
        if self.p.tc:
            gain *= self.p.factor(i, t)
        self.gain[i] = gain
        self.value += gain

    def place(self, i: int, lo: float = -INF, hi: float = INF, tels: Iterable[int] | None = None) -> bool:
        got = self.find(i, lo, hi, tels)
        if got is None:
            return False
        self.insert(i, got[1], got[2], got[0])
        return True

    def remove(self, i: int) -> tuple[int, float]:
        tel, t = self.where.pop(i)
        pos = bisect_left(self.starts[tel], t)
        while self.idx[tel][pos] != i:
            pos += 1
        del self.starts[tel][pos], self.ends[tel][pos], self.idx[tel][pos]
        self.placed[i] = False
        length = self.length.pop(i)
        prog = self.p.prog[i]
        self.used[prog] -= length
        self.value -= self.gain.pop(i)
        return tel, t

    def put_back(self, i: int, tel: int, t: float, end: float | None = None) -> None:
        self.insert(i, tel, bisect_left(self.starts[tel], t), t, end)

    def free_gaps(self, lo: float) -> list[Gap]:
        """Idle intervals after ``lo`` on every telescope, with the placements around them."""
        n0, n1 = self.p.night
        out: list[Gap] = []
        for tel in range(self.n_tel):
            prev, before = max(lo, n0), -1
            for s, e, k in zip(self.starts[tel], self.ends[tel], self.idx[tel], strict=True):
                if s > prev + EPS:
                    out.append((prev, s, before, k))
                if e >= prev:
                    prev, before = e, k
            if n1 > prev + EPS:
                out.append((prev, n1, before, -1))
        return out

    def candidates_for(self, gaps: list[Gap], eligible: BoolArray) -> IntArray:
        """Unplaced eligible sequences that fit some gap (transitions included when vectorised)."""
        if not gaps or self.p.wseq.size == 0:
            return np.zeros(0, dtype=np.intp)
        ws = self.p.wseq
        live = eligible[ws] & ~self.placed[ws]
        ws, wlo, whi = ws[live], self.p.wlo[live], self.p.whi[live]
        need = self.p.dur_a[ws] - EPS
        # Exact pruning first: a gap shorter than every duration holds nothing, and a window
        # needing more than the longest gap fits none (the overlap is at most the gap). Once
        # the night fills, most gaps are slivers between placements and most windows drop here,
        # so the (window x gap) test below stays small at 10,000 sequences.
        g = np.asarray(gaps, dtype=np.float64).reshape(-1, 4)
        g = g[g[:, 1] - g[:, 0] >= need.min(initial=INF)]
        if g.shape[0] == 0:
            return np.zeros(0, dtype=np.intp)
        keep = need <= (g[:, 1] - g[:, 0]).max()
        ws, wlo, whi, need = ws[keep], wlo[keep], whi[keep], need[keep]
        if self.pairs is None:
            hit = np.zeros(ws.shape[0], dtype=bool)
            for a, b, before, after in g.tolist():
                hit |= self._fits_gap((a, b, int(before), int(after)), ws, wlo, whi, need)
            out: IntArray = np.unique(ws[hit])
            return out
        # Every (window, gap) pair at once; transitions only for the pairs the raw gap holds.
        ga, gb = g[:, 0], g[:, 1]
        gbef, gaft = g[:, 2].astype(np.intp), g[:, 3].astype(np.intp)
        wi, gi = np.nonzero(
            (np.minimum(whi[:, None], gb[None, :]) - np.maximum(wlo[:, None], ga[None, :])) >= need[:, None]
        )
        lo_s, hi_s = ga[gi], gb[gi]
        seq, bef, aft = ws[wi], gbef[gi], gaft[gi]
        mb, ma = bef >= 0, aft >= 0
        if mb.any():
            lo_s[mb] += self.pairs.pair_costs(bef[mb], seq[mb])
        if ma.any():
            hi_s[ma] -= self.pairs.pair_costs(seq[ma], aft[ma])
        ok = (np.minimum(whi[wi], hi_s) - np.maximum(wlo[wi], lo_s)) >= need[wi]
        out = np.unique(seq[ok])
        return out

    def _fits_gap(
        self, gap: Gap, ws: IntArray, wlo: FloatArray, whi: FloatArray, need: FloatArray
    ) -> BoolArray:
        a, b, before, after = gap
        h: BoolArray = (np.minimum(whi, b) - np.maximum(wlo, a)) >= need
        if self.vector is not None and h.any() and (before >= 0 or after >= 0):
            sub = np.flatnonzero(h)
            lo_s: FloatArray = np.full(sub.size, a)
            hi_s: FloatArray = np.full(sub.size, b)
            if before >= 0:
                lo_s = lo_s + self.vector.costs_from(before, ws[sub])
            if after >= 0:
                hi_s = hi_s - self.vector.costs_to(ws[sub], after)
            ok = (np.minimum(whi[sub], hi_s) - np.maximum(wlo[sub], lo_s)) >= need[sub]
            h[sub[~ok]] = False
        return h

    def _first_holder(self, holders: IntArray, wlo: FloatArray, whi: FloatArray) -> IntArray:
        """For each window [wlo, whi], the lowest index into ``holders`` (weight order) of a
        placement overlapping it, ``holders.size`` if none.

        A telescope's placements are disjoint: sorted by start their ends are sorted too, so
        those overlapping a window are one run, found by two binary searches, and the run's
        lowest index comes from a table of range minima (placements² entries, not windows x
        placements tests)."""
        p, h = self.p, holders.size
        tel = np.fromiter((self.where[k][0] for k in holders.tolist()), np.intp, h)
        t0 = np.fromiter((self.where[k][1] for k in holders.tolist()), np.float64, h)
        t1 = t0 + p.dur_a[holders]
        if wlo.shape[0] * h <= DENSE_HOLDER_TESTS:
            # Few windows (a replan's handful of new reasons): every pair at once is cheaper
            # than building the table.
            over = (wlo[:, None] < t1[None, :]) & (whi[:, None] > t0[None, :])
            dense: IntArray = np.where(over, np.arange(h)[None, :], h).min(axis=1, initial=h)
            return dense
        out = np.full(wlo.shape[0], h, dtype=np.intp)
        for t in np.unique(tel).tolist():
            mine = np.flatnonzero(tel == t)  # indices into holders, i.e. weight ranks
            order = mine[np.argsort(t0[mine], kind="stable")]
            a0, a1 = t0[order], t1[order]
            if np.any(np.diff(a1) < 0):  # not disjoint (never in a valid plan): test every pair
                over = (wlo[:, None] < a1[None, :]) & (whi[:, None] > a0[None, :])
                ranks = np.where(over, order[None, :], h).min(axis=1, initial=h)
                np.minimum(out, ranks, out=out)
                continue
            m = order.size
            lo = np.searchsorted(a1, wlo, side="right")  # first with end > window start
            hi = np.searchsorted(a0, whi, side="left")  # first with start >= window end
            table = np.full((m + 1, m + 1), h, dtype=np.intp)  # table[a, b]: min rank in [a, b)
            for a in range(m):
                table[a, a + 1 :] = np.minimum.accumulate(order[a:])
            np.minimum(out, table[lo, np.maximum(hi, lo)], out=out)
        return out

    def reasons(self, todo: Iterable[int], sibling: dict[int, str]) -> dict[str, Unscheduled]:
        """Reasons for unplaced sequences: static, sibling, quota, else who holds its windows."""
        p = self.p
        out: dict[str, Unscheduled] = {}
        rest: list[int] = []
        for i in todo:
            if i in p.static:
                out[p.ids[i]] = Unscheduled(p.ids[i], p.static[i])
            elif i in sibling:
                out[p.ids[i]] = Unscheduled(p.ids[i], Reason.MANDATORY_SIBLING_FAILED, sibling[i])
            elif not self.quota_ok(i):
                out[p.ids[i]] = Unscheduled(p.ids[i], Reason.QUOTA_EXHAUSTED, p.prog[i] or None)
            else:
                rest.append(i)
        if not rest:
            return out
        holders = np.asarray(sorted(self.where, key=lambda k: -p.w[k]), dtype=np.intp)
        rest_a = np.asarray(rest, dtype=np.intp)
        sel = np.zeros(p.n, dtype=bool)
        sel[rest_a] = True
        wm = sel[p.wseq]
        ws, wlo, whi = p.wseq[wm], p.wlo[wm], p.whi[wm]
        best = np.full(p.n, -1, dtype=np.intp)
        # Highest-weight holder first: the first one overlapping a window names it.
        if holders.size and ws.size:
            first = self._first_holder(holders, wlo, whi)
            rank = np.full(p.n, holders.size, dtype=np.intp)
            np.minimum.at(rank, ws, first)
            has = rank[rest_a] < holders.size
            best[rest_a[has]] = holders[rank[rest_a[has]]]
        for i in rest:
            k = int(best[i])
            if k < 0:
                out[p.ids[i]] = Unscheduled(p.ids[i], Reason.NO_ROOM)
            elif p.w[k] > p.w[i]:
                out[p.ids[i]] = Unscheduled(p.ids[i], Reason.DISPLACED, p.ids[k])
            else:
                out[p.ids[i]] = Unscheduled(p.ids[i], Reason.NO_ROOM, p.ids[k])
        return out
