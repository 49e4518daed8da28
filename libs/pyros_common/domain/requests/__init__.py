"""Requests: request -> sequences -> albums -> plans, the request document, states and durations.

The model lives in ``model``; this package re-exports its names for ``from
pyros_common.domain.requests import Request``.
"""

from pyros_common.domain.requests.model import (
    MAX_NIGHTS_AHEAD,
    Album,
    Detector,
    Plan,
    Request,
    RequestContent,
    RequestKind,
    Sequence,
    SequenceConstraints,
    Strategy,
    Target,
)

__all__ = [
    "MAX_NIGHTS_AHEAD",
    "Album",
    "Detector",
    "Plan",
    "Request",
    "RequestContent",
    "RequestKind",
    "Sequence",
    "SequenceConstraints",
    "Strategy",
    "Target",
]
