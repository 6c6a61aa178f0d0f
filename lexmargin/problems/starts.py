"""Starts of nonconvex max-margin solves from the numeric module's gradient methods.

For a homogeneous model of degree L, normalized GD on the exponential loss,
theta <- theta - eta grad log L(theta), increases the normalized margin min_n f_n / ||theta||^L once the
data is separated (Lyu & Li 2020) and separates quickly from small random points on data a net can fit.
It costs milliseconds on the numpy kernels (``numeric.kernel_for``), where IPOPT on a nonsmooth ReLU net
from a non-separating point can run for minutes without converging; so the exact ReLU solve

* starts from a short normalized-GD run (``gd_start``) besides its random starts, and
* moves a non-separating start to a separating point by normalized GD (``separating_gd``) before the
  activation region of that point is solved.

Step size: eta = GD_ETA / L, in the units of log L; runs stop early once they separate (separating_gd)
or after GD_STEPS steps (gd_start).  Both are deterministic given the seed or start.
"""

from __future__ import annotations

import warnings

import numpy as np

GD_ETA = 0.5          # normalized step eta * L (log-loss units)
GD_STEPS = 2000       # steps of the GD start
SEPARATE_STEPS = 4000  # at most this many steps to find a separating point
CHUNK = 250           # separating_gd checks the margins every CHUNK steps


def _kernel(model, data):
    from ..numeric.kernels import kernel_for

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return kernel_for(model, data.X, data.y)


def _run(kernel, theta, steps: int, degree: float) -> np.ndarray:
    from ..numeric.steps import Normalized
    from ..numeric.trainer import train

    history = train(kernel, np.asarray(theta, dtype=float)[None, :], loss="exp",
                    rule=Normalized(eta=GD_ETA / degree), n_steps=int(steps), checkpoints=2, store_direction=False)
    return np.asarray(history.theta[0], dtype=float)


def _degree(model) -> float:
    return float(model.degree) if model.degree else 1.0


def _finite(theta) -> bool:
    return bool(np.all(np.isfinite(theta)))


def gd_start(model, data, seed=None, steps: int = GD_STEPS) -> np.ndarray | None:
    """theta after ``steps`` normalized-GD steps from a small random point (None if it diverged).

    Args:
        model: a homogeneous lexmargin Model.
        data: its Dataset.
        seed: seed of the random initial point (``Model.random_params``).
        steps: GD steps.
    Returns:
        The final parameters, or None when they are not finite.
    """
    kernel = _kernel(model, data)
    try:
        theta = _run(kernel, model.random_params(seed), steps, _degree(model))
    except (ArithmeticError, ValueError, RuntimeError):
        return None
    return theta if _finite(theta) else None


def separating_gd(model, data, theta0, max_steps: int = SEPARATE_STEPS) -> np.ndarray | None:
    """The first normalized-GD iterate from theta0 (checked every CHUNK steps) that separates the data.

    Args:
        model: a homogeneous lexmargin Model.
        data: its Dataset.
        theta0: the start.
        max_steps: the step budget.
    Returns:
        A point with min_n f_n > 0, or None when none was reached within the budget.
    """
    kernel = _kernel(model, data)
    theta, degree = np.asarray(theta0, dtype=float), _degree(model)
    for _ in range(0, max_steps, CHUNK):
        try:
            theta = _run(kernel, theta, CHUNK, degree)
        except (ArithmeticError, ValueError, RuntimeError):
            return None
        if not _finite(theta):
            return None
        if np.min(model.margins(theta, data)) > 0:
            return theta
    return None


__all__ = ["gd_start", "separating_gd"]
