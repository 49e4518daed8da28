"""Transition models: the dead time between two sequences on one telescope."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@runtime_checkable
class TransitionModel(Protocol):
    """Seconds needed between the end of sequence ``a`` and the start of ``b`` (indices)."""

    def cost(self, a: int, b: int) -> float: ...


@runtime_checkable
class VectorTransitionModel(TransitionModel, Protocol):
    """A transition model that can also answer for many sequences at once (used to prune)."""

    def costs_from(self, a: int, bs: npt.ArrayLike) -> FloatArray: ...

    def costs_to(self, bs: npt.ArrayLike, a: int) -> FloatArray: ...


@runtime_checkable
class PairTransitionModel(VectorTransitionModel, Protocol):
    """A vector model that also answers for many (a, b) pairs at once."""

    def pair_costs(self, a: npt.ArrayLike, b: npt.ArrayLike) -> FloatArray: ...


class ZeroTransition:
    """No dead time between sequences."""

    def cost(self, a: int, b: int) -> float:
        return 0.0


class MatrixTransition:
    """Dead times from an explicit (n, n) matrix of seconds."""

    def __init__(self, matrix: npt.ArrayLike) -> None:
        m = np.asarray(matrix, dtype=np.float64)
        if m.ndim != 2 or m.shape[0] != m.shape[1]:
            raise ValueError("transition matrix must be square")
        if (m < 0).any():
            raise ValueError("transition times must be >= 0")
        self._rows: list[list[float]] = m.tolist()

    def cost(self, a: int, b: int) -> float:
        return self._rows[a][b]


class GreatCircleTransition:
    """Slew along the great circle at ``slew_rate_deg_s``, then settle; plus a filter change.

    ``filters`` (optional) gives one filter key per sequence: the filter it starts and ends
    with; a change costs ``filter_change_s`` and overlaps the slew (the longer one counts).
    """

    def __init__(
        self,
        ra_deg: npt.ArrayLike,
        dec_deg: npt.ArrayLike,
        *,
        slew_rate_deg_s: float,
        settle_s: float = 0.0,
        filters: Sequence[str] | None = None,
        filter_change_s: float = 0.0,
    ) -> None:
        if slew_rate_deg_s <= 0:
            raise ValueError("slew rate must be > 0")
        ra = np.radians(np.asarray(ra_deg, dtype=np.float64))
        dec = np.radians(np.asarray(dec_deg, dtype=np.float64))
        if ra.shape != dec.shape or ra.ndim != 1:
            raise ValueError("ra and dec must be 1-d arrays of the same length")
        self.xyz: FloatArray = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], 1)
        self._x: list[float] = self.xyz[:, 0].tolist()
        self._y: list[float] = self.xyz[:, 1].tolist()
        self._z: list[float] = self.xyz[:, 2].tolist()
        self.rate = slew_rate_deg_s
        self.settle = settle_s
        if filters is not None and len(filters) != ra.shape[0]:
            raise ValueError("one filter per sequence")
        self._filters = list(filters) if filters is not None else None
        self._fcode: npt.NDArray[np.intp] | None = None
        self._codes: dict[str, int] = {}
        if filters is not None:
            codes = self._codes
            self._fcode = np.fromiter(
                (codes.setdefault(f, len(codes)) for f in filters), np.intp, len(filters)
            )
        self.filter_change = filter_change_s

    def extended(
        self, ra_deg: npt.ArrayLike, dec_deg: npt.ArrayLike, filters: Sequence[str] | None = None
    ) -> GreatCircleTransition:
        """This model with sequences appended (the same costs among the first ones)."""
        if (filters is None) != (self._filters is None):
            raise ValueError("filters for all sequences or for none")
        tail = GreatCircleTransition(
            ra_deg,
            dec_deg,
            slew_rate_deg_s=self.rate,
            settle_s=self.settle,
            filter_change_s=self.filter_change,
        )
        out = copy.copy(self)
        out.xyz = np.concatenate([self.xyz, tail.xyz])
        out._x, out._y, out._z = self._x + tail._x, self._y + tail._y, self._z + tail._z
        if filters is not None and self._filters is not None and self._fcode is not None:
            if len(filters) != len(tail):
                raise ValueError("one filter per sequence")
            codes = dict(self._codes)
            more = np.fromiter((codes.setdefault(f, len(codes)) for f in filters), np.intp, len(filters))
            out._filters = self._filters + list(filters)
            out._codes = codes
            out._fcode = np.concatenate([self._fcode, more])
        return out

    def __len__(self) -> int:
        return len(self._x)

    def cost(self, a: int, b: int) -> float:
        if a == b:
            return 0.0
        dot = self._x[a] * self._x[b] + self._y[a] * self._y[b] + self._z[a] * self._z[b]
        sep = math.degrees(math.acos(max(-1.0, min(1.0, dot))))
        slew = sep / self.rate + self.settle
        if self._filters is not None and self._filters[a] != self._filters[b]:
            return max(slew, self.filter_change)
        return slew

    def costs_from(self, a: int, bs: npt.ArrayLike) -> FloatArray:
        """Vectorised ``cost(a, b)`` for every b in ``bs``."""
        idx = np.asarray(bs, dtype=np.intp)
        dot = np.clip(self.xyz[idx] @ self.xyz[a], -1.0, 1.0)
        out: FloatArray = np.degrees(np.arccos(dot)) / self.rate + self.settle
        if self._fcode is not None:
            change = self._fcode[idx] != self._fcode[a]
            out = np.where(change, np.maximum(out, self.filter_change), out)
        out[idx == a] = 0.0
        return out

    def pair_costs(self, a: npt.ArrayLike, b: npt.ArrayLike) -> FloatArray:
        """Vectorised ``cost(a[k], b[k])`` for every pair."""
        ia = np.asarray(a, dtype=np.intp)
        ib = np.asarray(b, dtype=np.intp)
        dot = np.clip(np.einsum("ij,ij->i", self.xyz[ia], self.xyz[ib]), -1.0, 1.0)
        out: FloatArray = np.degrees(np.arccos(dot)) / self.rate + self.settle
        if self._fcode is not None:
            change = self._fcode[ia] != self._fcode[ib]
            out = np.where(change, np.maximum(out, self.filter_change), out)
        out[ia == ib] = 0.0
        return out

    def costs_to(self, bs: npt.ArrayLike, a: int) -> FloatArray:
        """Vectorised ``cost(b, a)`` for every b in ``bs`` (the model is symmetric)."""
        return self.costs_from(a, bs)
