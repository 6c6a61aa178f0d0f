"""Schedules of path parameters (rho, gamma increasing; lambda decreasing) and warm-start continuation."""

from __future__ import annotations

import numpy as np

from ..errors import LexmarginError


def check_schedule(values, name: str, *, increasing: bool = True) -> np.ndarray:
    """A finite, positive, strictly monotone 1-D schedule (increasing, or decreasing if not ``increasing``)."""
    try:
        arr = np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise LexmarginError(f"{name} schedule must be numeric: {exc}") from None
    if arr.size == 0:
        raise LexmarginError(f"{name} schedule is empty")
    if not np.all(np.isfinite(arr)):
        raise LexmarginError(f"{name} schedule contains non-finite values: {arr.tolist()}")
    if np.any(arr <= 0):
        raise LexmarginError(f"{name} schedule must be positive; got {arr[arr <= 0].tolist()}")
    steps = np.diff(arr) if increasing else -np.diff(arr)
    if np.any(steps <= 0):
        i = int(np.nonzero(steps <= 0)[0][0])
        order = "increasing" if increasing else "decreasing"
        raise LexmarginError(f"{name} schedule must be strictly {order}; entries {i} and {i + 1} are "
                             f"{arr[i]:g}, {arr[i + 1]:g}")
    return arr


def continuation(schedule, max_ratio: float):
    """Yield (value, reported): an increasing schedule with geometric substeps of ratio <= max_ratio
    inserted between its points (warm-start continuation; substeps are solved but not reported)."""
    if not (np.isfinite(max_ratio) and max_ratio > 1):
        raise LexmarginError(f"max_ratio must be a finite number > 1; got {max_ratio}")
    previous = None
    for value in schedule:
        if previous is not None:
            n = int(np.ceil(np.log(value / previous) / np.log(max_ratio) - 1e-12))
            for step in np.geomspace(previous, value, n + 1)[1:-1]:
                yield float(step), False
        yield float(value), True
        previous = value
