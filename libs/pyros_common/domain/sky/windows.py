"""The one time resolution at which every service evaluates visibility windows.

Routines (admission, the windows it shows) and the scheduler (kernel windows) both call
``sky.visibility`` at ``WINDOW_STEP_S``, so a (sequence, night) has the same windows
whichever service asks; window edges are interpolated between grid samples.
"""

from __future__ import annotations

from typing import Final

__all__ = ["WINDOW_STEP_S"]

WINDOW_STEP_S: Final = 60.0
