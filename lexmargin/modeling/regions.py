"""Activation regions of piecewise-linear activations (relu, leaky_relu).

IPOPT does not converge on nonsmooth ReLU networks.  Within the activation region of a point theta0
(which units are active on which sample) the model is a smooth polynomial: relu(z) = z on active units
and 0 on inactive ones (slope * z for leaky_relu), with sign constraints z >= 0 / z <= 0 keeping the
pattern.  ``RegionMargins`` builds these restricted margins and sign rows for max_margin.  The region's
gradients at a point of its closure are limits of the model's gradients from inside the region, hence
elements of the Clarke subdifferential: a point where the margin rows alone satisfy KKT with them (sign
multipliers not needed) is a Clarke-KKT point of the original problem (docs/certificates.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import casadi as ca
import numpy as np

from . import ops
from .data import Dataset
from .model import Model, _as_casadi_scalar, _obj_array


class _PatternRecorder:
    """Numeric pass: records which units are active (z > 0) at each relu/leaky_relu call."""

    def __init__(self):
        self.patterns: list[np.ndarray] = []

    def apply(self, z, slope):
        z = np.asarray(z, dtype=float)
        active = z > 0
        self.patterns.append(active)
        return np.where(active, z, slope * z)


class _PatternFixer:
    """Symbolic pass: replays a recorded pattern and collects the sign constraints (>= 0)."""

    def __init__(self, patterns):
        self.patterns, self.calls, self.signs = patterns, 0, []

    def apply(self, z, slope):
        if self.calls >= len(self.patterns):
            raise RuntimeError("the model called relu more often than when its pattern was recorded")
        active = self.patterns[self.calls]
        self.calls += 1
        z = np.asarray(z, dtype=object)
        self.signs.extend(np.where(active, z, -z).ravel().tolist())
        return np.where(active, z, slope * z)


def activation_pattern(model: Model, theta, x, y) -> list[np.ndarray]:
    """Active units (z > 0) of every relu/leaky_relu call for one sample at theta."""
    recorder = _PatternRecorder()
    with ops.activation_hook(recorder):
        model.margin_of(model.unflatten(theta), np.asarray(x, dtype=float), float(y))
    return recorder.patterns


def has_curvature_kinks(model: Model) -> bool:
    """True when the model calls an activation whose second derivative jumps (ops.squared_relu).

    IPOPT's exact-Hessian Newton model is wrong across such kinks; max_margin then uses a
    limited-memory Hessian (measured: 8-10x fewer seconds on two-layer squared-ReLU nets).
    """
    rng = np.random.default_rng(0)
    with ops.record_curvature_kinks() as calls:
        model.margin_of(model.unflatten(rng.standard_normal(model.n_params)), rng.standard_normal(model.input_dim),
                        1.0)
    return bool(calls)


def uses_piecewise_linear_activations(model: Model) -> bool:
    """True when the model calls ops.relu or ops.leaky_relu."""
    rng = np.random.default_rng(0)
    return bool(activation_pattern(model, rng.standard_normal(model.n_params),
                                   rng.standard_normal(model.input_dim), 1.0))


@dataclass(frozen=True)
class RegionSummary:
    n_units: int
    n_active_units: int
    n_sign_constraints: int

    def to_dict(self) -> dict:
        return {"n_units": self.n_units, "n_active_units": self.n_active_units,
                "n_sign_constraints": self.n_sign_constraints}


class RegionMargins:
    """Margins restricted to the activation region of theta0, plus its sign rows (>= 0).

    The sign rows keep the pattern: z >= 0 for units active at theta0, -z >= 0 for inactive ones.
    Their level (the scale a slack is judged against) is ||grad z|| ||theta||, a bound on |z| for
    pre-activations homogeneous of degree 1 in theta (first layer) and a natural scale for deeper ones.
    """

    symbol = ca.SX
    convex = False
    linear = False
    scale_exponent = 0
    column_scale = None
    extra_kind = "region_sign"

    def __init__(self, model: Model, data: Dataset, theta0):
        theta0 = np.asarray(theta0, dtype=float)
        theta = ca.SX.sym("theta", model.n_params)
        params = model.layout.split(_obj_array([theta[i] for i in range(model.n_params)], (model.n_params,)))
        margins, signs, owners, units, active = [], [], [], 0, 0
        for n, (x, y) in enumerate(zip(data.X, data.y)):
            pattern = activation_pattern(model, theta0, x, y)
            fixer = _PatternFixer(pattern)
            with ops.activation_hook(fixer):
                margins.append(_as_casadi_scalar(model.margin_of(params, x, float(y))))
            kept = [s for s in fixer.signs if ca.depends_on(ca.SX(s), theta)]
            signs.extend(kept)
            owners.extend([n] * len(kept))
            units += sum(p.size for p in pattern)
            active += sum(int(p.sum()) for p in pattern)
        self.summary = RegionSummary(units, active, len(signs))
        self.n_samples = data.n_samples
        self.n_extra = len(signs)
        self.sign_samples = np.asarray(owners, dtype=int)
        f = ca.vertcat(*margins)
        s = ca.vertcat(*[ca.SX(v) for v in signs]) if signs else ca.SX(0, 1)
        w, v = ca.SX.sym("w", f.shape[0]), ca.SX.sym("v", s.shape[0])
        self._f = ca.Function("region_margins", [theta], [f])
        self._jf = ca.Function("region_jacobian", [theta], [ca.densify(ca.jacobian(f, theta))])
        self._hf = ca.Function("region_hessian", [theta, w], [ca.densify(ca.hessian(ca.dot(w, f), theta)[0])])
        self._s = ca.Function("region_signs", [theta], [s])
        self._js = ca.Function("region_sign_jacobian", [theta], [ca.densify(ca.jacobian(s, theta))])
        self._hs = ca.Function("region_sign_hessian", [theta, v], [ca.densify(ca.hessian(ca.dot(v, s), theta)[0])])

    @staticmethod
    def to_user(theta) -> np.ndarray:
        return np.asarray(theta, dtype=float)

    to_scaled = to_user

    def expression(self, theta, index):
        return self._f(theta)[np.asarray(index).tolist()]

    def values(self, theta, index=slice(None)) -> np.ndarray:
        return np.array(self._f(theta)).reshape(-1)[index]

    def jacobian(self, theta, index=slice(None)) -> np.ndarray:
        return np.array(self._jf(theta))[index]

    def weighted_hessian(self, theta, index, weights) -> np.ndarray:
        w = np.zeros(self._f.size1_out(0))
        w[index] = weights
        return np.array(self._hf(theta, w))

    def extra_expression(self, theta):
        return self._s(theta) if self.n_extra else None

    def extra_values(self, theta) -> np.ndarray:
        return np.array(self._s(theta)).reshape(-1)

    def extra_jacobian(self, theta) -> np.ndarray:
        return np.array(self._js(theta)).reshape(self.n_extra, -1)

    def extra_hessian(self, theta, weights) -> np.ndarray:
        if not self.n_extra:
            return np.zeros((np.size(theta), np.size(theta)))
        return np.array(self._hs(theta, np.asarray(weights, dtype=float)))

    def extra_levels(self, theta) -> np.ndarray:
        size = float(np.linalg.norm(theta))
        return np.maximum(np.linalg.norm(self.extra_jacobian(theta), axis=1) * size, np.finfo(float).tiny)
