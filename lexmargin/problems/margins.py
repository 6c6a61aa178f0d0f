"""Where the margin rows f_n(theta) of a max-margin NLP come from.

* ``LinearMargins``: models affine in theta, f = A theta + c with A the exact Jacobian.  When max |A| is
  outside [2^-8, 2^8], A is stored divided by 2^e (e chosen so that max |A| is in [1/2, 1)): the problem
  is solved in theta' = 2^e theta, which is exact in floating point, so data scaled by any factor gives
  an equally well-scaled problem.  Columns of
  very different sizes are handled by IPOPT variable scaling (``column_scale``, powers of two);
* ``ModelMargins``: any model, through its CasADi functions (margins, Jacobian, weighted Hessian);
* ``lexmargin.modeling.regions.RegionMargins``: ReLU nets restricted to an activation region, with
  sign rows on the pre-activations.

A source may carry extra rows (``extra_*``, e.g. region sign rows) that are not margins.
"""

from __future__ import annotations

import math

import casadi as ca
import numpy as np

from ..modeling.data import Dataset
from ..modeling.model import Model


COLUMN_SPREAD = 2.0 ** 8     # columns whose sizes differ by more are passed to IPOPT with variable scaling
DATA_SPREAD = 8              # data with max |A| outside [2^-8, 2^8] is rescaled by a power of two


def power_of_two_exponent(value: float) -> int:
    """e with value / 2^e in [1/2, 1) (0 for 0 or non-finite values)."""
    if not (value > 0 and math.isfinite(value)):
        return 0
    return math.frexp(value)[1]


class _NoExtraRows:
    extra_kind = "none"
    n_extra = 0

    def extra_expression(self, theta):
        return None

    def extra_values(self, theta) -> np.ndarray:
        return np.zeros(0)

    def extra_jacobian(self, theta) -> np.ndarray:
        return np.zeros((0, theta.size))

    def extra_hessian(self, theta, weights) -> np.ndarray:
        return np.zeros((theta.size, theta.size))

    def extra_levels(self, theta) -> np.ndarray:
        return np.zeros(0)


class LinearMargins(_NoExtraRows):
    """f_n(theta) = A_n theta + c_n, stored as A' = A / 2^scale_exponent (theta' = 2^e theta)."""

    symbol = ca.MX
    convex = True
    linear = True

    def __init__(self, model: Model, data: Dataset):
        zero = np.zeros(model.n_params)
        A = model.margin_jacobian(zero, data)
        self.c = model.margins(zero, data)
        exponent = power_of_two_exponent(float(np.max(np.abs(A), initial=0.0)))
        # data of ordinary size is solved as given (IPOPT's path, and its iteration count, stay as they were)
        self.scale_exponent = exponent if abs(exponent) > DATA_SPREAD else 0
        self.A = np.ldexp(A, -self.scale_exponent)
        self.n_samples = A.shape[0]
        columns = np.max(np.abs(self.A), axis=0)
        scale = np.ldexp(1.0, -np.array([power_of_two_exponent(v) for v in columns]))
        # IPOPT copes with a few binary orders of magnitude; variable scaling costs a little per iteration
        self.column_scale = scale if np.max(scale) > COLUMN_SPREAD * np.min(scale) else None

    def to_user(self, theta_scaled) -> np.ndarray:
        return np.ldexp(np.asarray(theta_scaled, dtype=float), -self.scale_exponent)

    def to_scaled(self, theta) -> np.ndarray:
        return np.ldexp(np.asarray(theta, dtype=float), self.scale_exponent)

    def expression(self, theta, index):
        return ca.mtimes(ca.DM(self.A[index]), theta) + ca.DM(self.c[index])

    def values(self, theta, index=slice(None)) -> np.ndarray:
        return self.A[index] @ theta + self.c[index]

    def jacobian(self, theta, index=slice(None)) -> np.ndarray:
        return self.A[index]

    def weighted_hessian(self, theta, index, weights) -> np.ndarray:
        return np.zeros((theta.size, theta.size))


class ModelMargins(_NoExtraRows):
    """General models: constraints traced from the model's CasADi functions (no rescaling)."""

    symbol = ca.SX
    convex = False
    linear = False
    scale_exponent = 0
    column_scale = None

    def __init__(self, model: Model, data: Dataset):
        self.model, self.data = model, data
        self.n_samples = data.n_samples

    @staticmethod
    def to_user(theta) -> np.ndarray:
        return np.asarray(theta, dtype=float)

    to_scaled = to_user

    def expression(self, theta, index):
        return self.model.margin_expressions(theta, self._subset(index))

    def values(self, theta, index=slice(None)) -> np.ndarray:
        return self.model.margins(theta, self._subset(index))

    def jacobian(self, theta, index=slice(None)) -> np.ndarray:
        return self.model.margin_jacobian(theta, self._subset(index))

    def weighted_hessian(self, theta, index, weights) -> np.ndarray:
        return self.model.weighted_hessian(theta, self._subset(index), weights)

    def _subset(self, index):
        if isinstance(index, slice) and index == slice(None):
            return self.data
        index = np.asarray(index)
        if index.size == self.data.n_samples and np.array_equal(index, np.arange(self.data.n_samples)):
            return self.data
        return self.data.subset(index)
