"""Fixtures of the analyzer's unit tests (the shared objects live in analyzer_factories.py, so that
tests import them by a name no other folder's conftest shadows)."""

from __future__ import annotations

from analyzer_factories import rig

__all__ = ["rig"]
