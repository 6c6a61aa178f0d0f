"""Activation regions of piecewise-linear activations (relu, leaky_relu).

IPOPT does not converge on nonsmooth ReLU networks.  Within the activation region of a point theta0
(which units are active on which sample) the model is a smooth polynomial: relu(z) = z on active units
and 0 on inactive ones (slope * z for leaky_relu), with sign constraints z >= 0 / z <= 0 keeping the
pattern.  ``RegionMargins`` builds these restricted margins and sign constraints for max_margin; a
solution with no active sign constraint lies in the interior of the region, where the restricted and
original problems coincide locally, so its certificate is a KKT certificate of the original problem.
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
    """Margins restricted to the activation region of theta0, plus its sign constraints."""

    symbol = ca.SX
    convex = False

    def __init__(self, model: Model, data: Dataset, theta0):
        theta0 = np.asarray(theta0, dtype=float)
        theta = ca.SX.sym("theta", model.n_params)
        params = model.layout.split(_obj_array([theta[i] for i in range(model.n_params)], (model.n_params,)))
        margins, signs, units, active = [], [], 0, 0
        for x, y in zip(data.X, data.y):
            pattern = activation_pattern(model, theta0, x, y)
            fixer = _PatternFixer(pattern)
            with ops.activation_hook(fixer):
                margins.append(_as_casadi_scalar(model.margin_of(params, x, float(y))))
            signs.extend(s for s in fixer.signs if ca.depends_on(ca.SX(s), theta))
            units += sum(p.size for p in pattern)
            active += sum(int(p.sum()) for p in pattern)
        self.summary = RegionSummary(units, active, len(signs))
        f = ca.vertcat(*margins)
        s = ca.vertcat(*[ca.SX(v) for v in signs]) if signs else ca.SX(0, 1)
        w = ca.SX.sym("w", f.shape[0])
        self._f = ca.Function("region_margins", [theta], [f])
        self._jf = ca.Function("region_jacobian", [theta], [ca.densify(ca.jacobian(f, theta))])
        self._hf = ca.Function("region_hessian", [theta, w], [ca.densify(ca.hessian(ca.dot(w, f), theta)[0])])
        self._s = ca.Function("region_signs", [theta], [s])
        self._js = ca.Function("region_sign_jacobian", [theta], [ca.densify(ca.jacobian(s, theta))])

    def expression(self, theta, index):
        return self._f(theta)[np.asarray(index).tolist()]

    def extra_constraints(self, theta):
        return self._s(theta) if self.summary.n_sign_constraints else None

    def values(self, theta, index=slice(None)):
        return np.array(self._f(theta)).reshape(-1)[index]

    def jacobian(self, theta, index=slice(None)):
        return np.array(self._jf(theta))[index]

    def weighted_hessian(self, theta, index, weights):
        w = np.zeros(self._f.size1_out(0))
        w[index] = weights
        return np.array(self._hf(theta, w))

    def sign_values(self, theta):
        return np.array(self._s(theta)).reshape(-1)

    def sign_jacobian(self, theta):
        return np.array(self._js(theta)).reshape(self.summary.n_sign_constraints, -1)
