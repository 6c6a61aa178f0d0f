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


MAX_VERTICES = 4096     # sign patterns enumerated per sample (2^kinks); beyond it the Clarke check is undecided
REALIZABLE_TOL = 1e-9   # a pattern is realizable when a unit step moves each kink to its side by this much


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
    """Symbolic pass: replays a recorded pattern and collects the sign constraints (>= 0), with the
    (call, flat unit index) of each."""

    def __init__(self, patterns):
        self.patterns, self.calls, self.signs, self.units = patterns, 0, [], []

    def apply(self, z, slope):
        if self.calls >= len(self.patterns):
            raise RuntimeError("the model called relu more often than when its pattern was recorded")
        active = self.patterns[self.calls]
        z = np.asarray(z, dtype=object)
        if np.shape(active) != z.shape:
            raise RuntimeError("the model's activation shapes differ from those of its recorded pattern")
        self.signs.extend(np.where(active, z, -z).ravel().tolist())
        self.units.extend((self.calls, u) for u in range(z.size))
        self.calls += 1
        return np.where(active, z, slope * z)


class _SlopeHook:
    """Symbolic pass of one sample: the region's pattern, except the kinked units (call, unit) -> j, whose
    activation is s_j * z with a symbolic slope s_j; records each kinked pre-activation and its lower slope."""

    def __init__(self, pattern, kinks: dict, slopes):
        self.pattern, self.kinks, self.slopes, self.calls = pattern, kinks, slopes, 0
        self.values: list = [None] * len(kinks)
        self.lows = np.ones(len(kinks))
        self.units: list = []           # every unit's (call, flat index) and pre-activation
        self.pre: list = []

    def apply(self, z, slope):
        active = self.pattern[self.calls]
        z = np.asarray(z, dtype=object)
        out = np.where(active, z, slope * z)
        flat, zflat = out.reshape(-1), z.reshape(-1)
        for (call, unit), j in self.kinks.items():
            if call == self.calls:
                flat[unit] = self.slopes[j] * zflat[unit]
                self.values[j], self.lows[j] = zflat[unit], slope
        self.units.extend((self.calls, u) for u in range(zflat.size))
        self.pre.extend(zflat.tolist())
        self.calls += 1
        return flat.reshape(out.shape)


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

    def __init__(self, model: Model, data: Dataset, theta0, patterns=None):
        """The region of theta0 (``patterns=None``), or of given per-sample patterns (e.g. a neighbour's)."""
        theta0 = np.asarray(theta0, dtype=float)
        theta = ca.SX.sym("theta", model.n_params)
        params = model.layout.split(_obj_array([theta[i] for i in range(model.n_params)], (model.n_params,)))
        if patterns is None:
            patterns = [activation_pattern(model, theta0, x, y) for x, y in zip(data.X, data.y)]
        self.model, self.data = model, data
        self.patterns = [[np.array(p, dtype=bool) for p in pattern] for pattern in patterns]
        margins, signs, owners, units, active = [], [], [], 0, 0
        sign_units = []
        for n, (x, y) in enumerate(zip(data.X, data.y)):
            pattern = self.patterns[n]
            fixer = _PatternFixer(pattern)
            with ops.activation_hook(fixer):
                margins.append(_as_casadi_scalar(model.margin_of(params, x, float(y))))
            kept = [i for i, s in enumerate(fixer.signs) if ca.depends_on(ca.SX(s), theta)]
            signs.extend(fixer.signs[i] for i in kept)
            sign_units.extend((n, *fixer.units[i]) for i in kept)
            owners.extend([n] * len(kept))
            units += sum(p.size for p in pattern)
            active += sum(int(p.sum()) for p in pattern)
        self.sign_units = np.asarray(sign_units, dtype=int).reshape(-1, 3)   # (sample, call, flat unit)
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

    # -- neighbours and kinks ----------------------------------------------------------------------------
    def key(self) -> bytes:
        """The region's identity: its per-sample patterns."""
        return b"|".join(np.packbits(np.concatenate([p.ravel() for p in pattern] or [np.zeros(0, bool)])).tobytes()
                         for pattern in self.patterns)

    def flipped(self, sign_rows) -> list:
        """The patterns of the adjacent region across the given sign rows (their units change side)."""
        patterns = [[p.copy() for p in pattern] for pattern in self.patterns]
        for n, call, unit in self.sign_units[np.asarray(sign_rows, dtype=int)]:
            flat = patterns[n][call].reshape(-1)
            flat[unit] = not flat[unit]
        return patterns

    def kinks(self, theta, tol: float) -> dict[int, list[tuple[int, int]]]:
        """Units at a kink at theta, per sample: sign rows with |z| <= tol * level (a relative tolerance)."""
        values, levels = np.abs(self.extra_values(theta)), self.extra_levels(theta)
        found: dict[int, list[tuple[int, int]]] = {}
        for row in np.nonzero(values <= tol * levels)[0]:
            n, call, unit = (int(v) for v in self.sign_units[row])
            found.setdefault(n, []).append((call, unit))
        return found

    def vertices(self, theta, sample: int, kinks, tol: float = 1e-8, max_vertices: int = MAX_VERTICES) -> Vertices:
        """Gradients of f_sample at theta in the realizable sign patterns of its kinked units (see Vertices).

        ``kinks`` (e.g. from ``kinks``) are closed under what they feed: a unit whose pre-activation is 0 at
        theta and moves in some pattern of the kinks (|z_u| <= tol ||grad z_u|| ||theta||; e.g. a second-layer unit
        fed only by a kinked first-layer unit, constant 0 in the region and so without a sign row) joins them.
        """
        kinks = [tuple(u) for u in kinks]
        size = float(np.linalg.norm(theta))
        while True:
            built = self._slope_function(sample, kinks)
            lows = built.lows
            moving = lows < 1.0                       # a leaky slope of 1 is no kink
            if 2 ** int(moving.sum()) > max_vertices:
                return Vertices(sample, tuple(kinks), lows, np.zeros((0, len(kinks))),
                                np.zeros((0, self.model.n_params)), 0, complete=False)
            patterns = _vertex_slopes(lows, moving)
            evaluated = [[np.array(v) for v in built.function(theta, p)] for p in patterns]
            pre = np.abs(evaluated[0][2].reshape(-1))
            level = np.max([np.linalg.norm(e[3], axis=1) for e in evaluated], axis=0) * size
            grown = [u for u, z, l in zip(built.units, pre, level) if u not in kinks and l > 0 and z <= tol * l]
            if not grown:
                break
            kinks += grown
        gradients, kept, dropped = [], [], 0
        for p, (grad, zgrad, _, _) in zip(patterns, evaluated):
            if _realizable(zgrad[moving], p[moving] == 1.0, built.constant):
                gradients.append(grad.reshape(-1))
                kept.append(p)
            else:
                dropped += 1
        return Vertices(sample, tuple(kinks), lows, np.array(kept).reshape(-1, len(kinks)),
                        np.array(gradients).reshape(-1, self.model.n_params), dropped, complete=True)

    def _slope_function(self, sample: int, kinks) -> _SlopeFunction:
        """f_sample with symbolic slopes on the kinked units: a CasADi function (theta, s) -> (grad f, Jacobian
        of the kinked pre-activations, every unit's pre-activation, their Jacobian)."""
        k = len(kinks)
        sym = ca.SX.sym("theta", self.model.n_params)
        slopes = ca.SX.sym("s", k)
        params = self.model.layout.split(_obj_array([sym[i] for i in range(self.model.n_params)],
                                                    (self.model.n_params,)))
        hook = _SlopeHook(self.patterns[sample], {u: j for j, u in enumerate(kinks)}, slopes)
        with ops.activation_hook(hook):
            margin = _as_casadi_scalar(self.model.margin_of(params, self.data.X[sample], float(self.data.y[sample])))
        z = ca.vertcat(*[ca.SX(v) for v in hook.values]) if k else ca.SX(0, 1)
        pre = ca.vertcat(*[ca.SX(v) for v in hook.pre]) if hook.pre else ca.SX(0, 1)
        function = ca.Function("kink_vertices", [sym, slopes],
                               [ca.densify(ca.jacobian(margin, sym)), ca.densify(ca.jacobian(z, sym)), pre,
                                ca.densify(ca.jacobian(pre, sym))])
        return _SlopeFunction(function, hook.lows, list(hook.units), not ca.depends_on(z, slopes))


@dataclass(frozen=True)
class _SlopeFunction:
    function: ca.Function
    lows: np.ndarray
    units: list
    constant: bool          # the kinked pre-activations do not depend on the slopes (no kink feeds another)

@dataclass(frozen=True)
class Vertices:
    """One sample's kinked units and the gradients of its margin in their realizable sign patterns.

    ``slopes[v]``: the activation slope of each kinked unit in pattern v (1 on the active side, the lower
    slope ``lows`` - 0 for relu, alpha for leaky_relu - on the other); ``gradients[v]``: grad_theta f_n in it.
    ``dropped``: patterns that no nearby point realizes; ``complete`` False when there were too many to list.
    """

    sample: int
    units: tuple
    lows: np.ndarray
    slopes: np.ndarray
    gradients: np.ndarray
    dropped: int
    complete: bool = True


def _vertex_slopes(lows, moving) -> np.ndarray:
    """Every slope vector with each moving kink at 1 or at its low (fixed ones at 1)."""
    k, free = lows.size, np.nonzero(moving)[0]
    out = np.ones((2 ** free.size, k))
    for b, j in enumerate(free):
        bit = (np.arange(2 ** free.size) >> b) & 1
        out[bit == 0, j] = lows[j]
    return out


def _realizable(zgrad, positive, constant: bool) -> bool:
    """Is there a direction delta with sign(<grad z_k, delta>) = side_k for every kink (first order)?

    When the kinks' gradients do not depend on the slopes (no kink feeds another) and are linearly
    independent, every pattern is realized; otherwise a small LP decides: max t s.t. side_k <u_k, delta> >= t,
    |delta|_inf <= 1, with u_k the unit gradients; realizable iff t > REALIZABLE_TOL.
    """
    k = zgrad.shape[0]
    if k == 0:
        return True
    norms = np.linalg.norm(zgrad, axis=1)
    if np.any(norms == 0):
        return False
    units = zgrad / norms[:, None]
    if constant and k <= units.shape[1]:
        sv = np.linalg.svd(units, compute_uv=False)
        if sv[-1] > 1e-8 * sv[0]:
            return True
    from scipy.optimize import linprog

    side = np.where(positive, 1.0, -1.0)
    n = units.shape[1]
    A = np.hstack([-(side[:, None] * units), np.ones((k, 1))])
    result = linprog(np.append(np.zeros(n), -1.0), A_ub=A, b_ub=np.zeros(k),
                     bounds=[(-1.0, 1.0)] * n + [(None, 1.0)], method="highs")
    return bool(result.status == 0 and -result.fun > REALIZABLE_TOL)
