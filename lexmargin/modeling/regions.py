"""Activation regions of piecewise-linear activations (relu, leaky_relu).

IPOPT does not converge on nonsmooth ReLU networks.  Within the activation region of a point theta0
(which units are active on which sample) the model is a smooth polynomial: relu(z) = z on active units
and 0 on inactive ones (slope * z for leaky_relu), with sign constraints z >= 0 / z <= 0 keeping the
pattern.  The model is traced once (``RegionFamily``) with a symbolic slope s_u per unit: relu(z_u) = s_u z_u,
so one sample's margin f(theta; x, y, s) and pre-activations z(theta; x, y, s) are CasADi functions mapped over
the data, and a region is only its numbers: S (N x U) slopes (1 active, the lower slope otherwise) and signs
Sigma = +-1 (``RegionMargins``; its sign rows are Sigma * z >= 0).  IPOPT's solver is built once per family
with S and Sigma as parameters, so moving to another region rebuilds nothing.

The region's gradients at a point of its closure are limits of the model's gradients from inside the region,
hence elements of the Clarke subdifferential; the Clarke check (``nlp.clarke``) uses the gradients of every
realizable pattern of the kinked units (``RegionMargins.vertices``, docs/certificates.md).
"""

from __future__ import annotations

import copy
from collections.abc import Hashable
from dataclasses import dataclass
from functools import cached_property

import casadi as ca
import numpy as np

from . import ops
from .casadi_eval import evaluate
from .data import Dataset
from .model import Model, _as_casadi_scalar, _obj_array

MAX_VERTICES = 4096     # sign patterns enumerated per sample (2^kinks); beyond it the Clarke check is undecided
REALIZABLE_TOL = 1e-9   # a pattern is realizable when a unit step moves each kink to its side by this much
# Summed P x P Hessians (``RegionMargins.weighted_hessian``, ``extra_hessian``) are mapped over chunks of samples
# whose dense outputs take about this many bytes, not over all N at once: CasADi's build of a mapped-and-summed
# function grows with the map's size (measured, P = 1040: 0.17 s and 50 MB per mapped sample, so 63 s and 18 GB
# at N = 360), while a chunk of a few samples is built once and called N / chunk times.
REDUCE_CHUNK_BYTES = 1 << 26


class _PreActivationRecorder:
    """Numeric pass: records the pre-activations z of each relu/leaky_relu call."""

    def __init__(self):
        self.values: list[np.ndarray] = []

    def apply(self, z, slope):
        z = np.asarray(z, dtype=float)
        self.values.append(z)
        return np.where(z > 0, z, slope * z)


def pre_activations(model: Model, theta, x, y) -> list[np.ndarray]:
    """The pre-activations z of every relu/leaky_relu call for one sample at theta (empty without such calls)."""
    recorder = _PreActivationRecorder()
    with ops.activation_hook(recorder):
        model.margin_of(model.unflatten(theta), np.asarray(x, dtype=float), float(y))
    return recorder.values


def activation_pattern(model: Model, theta, x, y) -> list[np.ndarray]:
    """Active units (z > 0) of every relu/leaky_relu call for one sample at theta."""
    return [z > 0 for z in pre_activations(model, theta, x, y)]


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


class _SymbolicSlopes:
    """Symbolic pass of one sample: relu(z) -> s * z with a fresh slope symbol per unit; records every unit's
    pre-activation, its lower slope (0 for relu, alpha for leaky_relu) and the call it belongs to."""

    def __init__(self):
        self.slopes, self.pre, self.lows, self.calls = [], [], [], []

    def apply(self, z, slope):
        z = np.asarray(z, dtype=object)
        call = len(self.slopes)
        s = ca.SX.sym(f"s{call}", z.size)
        self.slopes.append(s)
        flat = z.reshape(-1)
        self.pre.extend(flat.tolist())
        self.lows.extend([float(slope)] * z.size)
        self.calls.extend([call] * z.size)
        return np.array([s[i] * flat[i] for i in range(z.size)], dtype=object).reshape(z.shape)


class RegionFamily:
    """A model traced once with a symbolic slope per unit (see the module docstring), mapped over a data set.

    Attributes: ``n_units`` U per sample; ``lows`` (U,) lower slopes; ``unit_calls``/``unit_index`` (U,) the
    activation call of each unit and its position in it; ``feeds`` (U, U) bool: z_u depends on the slope of u'.
    """

    def __init__(self, model: Model, data: Dataset):
        self.model, self.data = model, data
        theta = ca.SX.sym("theta", model.n_params)
        x, y = ca.SX.sym("x", model.input_dim), ca.SX.sym("y")
        params = model.layout.split(_obj_array([theta[i] for i in range(model.n_params)], (model.n_params,)))
        xs = _obj_array([x[i] for i in range(model.input_dim)], (model.input_dim,))
        hook = _SymbolicSlopes()
        with ops.activation_hook(hook):
            f = _as_casadi_scalar(model.margin_of(params, xs, y))
        s = ca.vertcat(*hook.slopes) if hook.slopes else ca.SX(0, 1)
        z = ca.vertcat(*[ca.SX(v) for v in hook.pre]) if hook.pre else ca.SX(0, 1)
        self.n_units = int(z.shape[0])
        self.lows = np.asarray(hook.lows, dtype=float)
        self.unit_calls = np.asarray(hook.calls, dtype=int)
        self.unit_index = np.concatenate([np.arange(np.sum(self.unit_calls == c)) for c in range(len(hook.slopes))]
                                         ) if hook.slopes else np.zeros(0, int)
        feeds = ca.jacobian(z, s).sparsity() if self.n_units else None
        self.feeds = np.array(ca.DM(feeds, 1)).astype(bool) if feeds is not None else np.zeros((0, 0), bool)
        args = [theta, x, y, s]
        self._symbols = (f, z, args)
        self.margin = ca.Function("region_margin", args, [f])
        self.gradient = ca.Function("region_gradient", args, [ca.densify(ca.jacobian(f, theta))])
        self.pre = ca.Function("region_pre", args, [ca.densify(z)])
        self.pre_jacobian = ca.Function("region_pre_jacobian", args, [ca.densify(ca.jacobian(z, theta))])
        self.X, self.y = np.ascontiguousarray(data.X.T), np.ascontiguousarray(data.y[None, :])

    # The Hessians are formed on first use: their symbolic build grows with P^2 (3 s at P = 3550 for a two-hidden-
    # layer net), and the Clarke columns of a stationarity report (``vertices``) need only gradients.
    @cached_property
    def _hessian(self) -> ca.Function:
        """w Hess_theta f (kept sparse: summed over samples as such; a two-layer net's has 2 U d nonzeros of P^2)."""
        f, _, args = self._symbols
        w = ca.SX.sym("w")
        return ca.Function("region_hessian", args + [w], [w * ca.hessian(f, args[0])[0]])

    @cached_property
    def _pre_hessian_and_linearity(self) -> tuple[ca.Function, bool]:
        _, z, args = self._symbols
        v = ca.SX.sym("v", self.n_units)
        pre_hessian = ca.hessian(ca.dot(v, z), args[0])[0]
        return ca.Function("region_pre_hessian", args + [v], [pre_hessian]), pre_hessian.nnz() == 0

    @property
    def _pre_hessian(self) -> ca.Function:
        """sum_u v_u Hess_theta z_u (sparse)."""
        return self._pre_hessian_and_linearity[0]

    @property
    def pre_linear(self) -> bool:
        """Every pre-activation is linear in theta (one hidden layer): the sign rows have no curvature (the
        Hessian of sum_u v_u z_u is structurally zero)."""
        return self._pre_hessian_and_linearity[1]

    def mapped(self, name: str, reduce: bool = False) -> ca.Function:
        """``name`` mapped over the N samples, theta shared; with ``reduce`` mapped over ``reduce_chunk`` samples
        and its output summed (``reduced`` sums the chunks)."""
        cache = self.__dict__.setdefault("_maps", {})
        if (name, reduce) not in cache:
            fn = getattr(self, name)
            size = self.reduce_chunk if reduce else self.data.n_samples
            cache[(name, reduce)] = fn.map(f"{fn.name()}_map", "serial", size, [0], [0] if reduce else [])
        return cache[(name, reduce)]

    @cached_property
    def reduce_chunk(self) -> int:
        """Samples per call of a summed map: dense P x P outputs of about REDUCE_CHUNK_BYTES in all."""
        P = max(self.model.n_params, 1)
        return int(min(max(self.data.n_samples, 1), max(1, REDUCE_CHUNK_BYTES // (8 * P * P))))

    def reduced(self, name: str, theta, columns) -> np.ndarray:
        """sum_n name(theta, x_n, y_n, *columns[:, n]) over the samples, chunk by chunk (``reduce_chunk``).

        ``columns``: per-sample arguments after x and y, each (rows, N); the last chunk is padded with copies of
        its first sample whose last argument (a weight) is 0, so the functions must be linear in it."""
        fn, size, N = self.mapped(name, reduce=True), self.reduce_chunk, self.data.n_samples
        columns = [self.X, self.y, *[np.asarray(c, dtype=float) for c in columns]]
        theta, total = np.asarray(theta, dtype=float), None
        for start in range(0, N, size):
            parts = [c[:, start:start + size] for c in columns]
            pad = size - parts[0].shape[1]
            if pad:
                parts = [np.hstack([c, np.repeat(c[:, :1], pad, axis=1)]) for c in parts]
                parts[-1][:, -pad:] = 0.0
            out = evaluate(fn, theta, *parts)
            total = out if total is None else total + out
        assert total is not None, "a data set has at least one sample"
        return total

    @cached_property
    def solver_key(self) -> int:
        return id(self)


class RegionMargins:
    """Margins restricted to one activation region, plus its sign rows (>= 0): a view of a RegionFamily.

    The sign rows keep the pattern: z >= 0 for active units, -z >= 0 for inactive ones, one per (sample, unit).
    Their level (the scale a slack is judged against) is ||grad z|| ||theta||, a bound on |z| for
    pre-activations homogeneous of degree 1 in theta (first layer) and a natural scale for deeper ones.
    For IPOPT the region is a parameter vector (S, Sigma) of the family's expressions (``parameter_values``).
    """

    symbol = ca.SX
    convex = False
    linear = False
    scale_exponent = 0
    column_scale = None
    extra_kind = "region_sign"

    def __init__(self, model: Model, data: Dataset, theta0, patterns=None, family: RegionFamily | None = None):
        """The region of theta0 (``patterns=None``), or of a given (N, U) boolean matrix of active units."""
        self.family = family if family is not None else RegionFamily(model, data)
        self.model, self.data = model, data
        N, U = data.n_samples, self.family.n_units
        if patterns is None:
            patterns = np.array([np.concatenate([p.ravel() for p in activation_pattern(model, theta0, x, y)] or
                                                [np.zeros(0, bool)]) for x, y in zip(data.X, data.y)], dtype=bool)
        self.active = np.asarray(patterns, dtype=bool).reshape(N, U)
        self.slopes = np.where(self.active, 1.0, self.family.lows[None, :])
        self.signs = np.where(self.active, 1.0, -1.0)
        self.summary = RegionSummary(N * U, int(self.active.sum()), N * U)
        self.n_samples = N
        self.n_extra = N * U
        self.sign_samples = np.repeat(np.arange(N), U)
        self.parameters = 2 * N * U
        self.parameter_values = np.concatenate([self.slopes.ravel(), self.signs.ravel()])   # sample-major
        self.solver_key: Hashable = self.family.solver_key
        self.sign_rows: np.ndarray | None = None     # all sign rows; ``with_sign_rows`` gives a view with some of them
        self.whole = self         # the region with all its sign rows (views share it)

    def with_sign_rows(self, rows) -> RegionMargins:
        """The same region posed with only the given sign rows (a working set: a solution that violates none of
        the others is the region's solution).  Certify on the whole region (this view's rows are a subset)."""
        view = copy.copy(self)
        sign_rows = np.unique(np.asarray(rows, dtype=int))
        view.sign_rows = sign_rows
        view.n_extra = int(sign_rows.size)
        view.sign_samples = self.sign_samples[sign_rows]
        view.solver_key = (self.family.solver_key, sign_rows.tobytes())
        return view

    def _rows(self, values):
        return values if self.sign_rows is None else values[self.sign_rows]

    @staticmethod
    def to_user(theta) -> np.ndarray:
        return np.asarray(theta, dtype=float)

    to_scaled = to_user

    # -- evaluation ----------------------------------------------------------------------------------------
    def _call(self, name: str, theta, *extra, reduce: bool = False) -> np.ndarray:
        if reduce:
            return self.family.reduced(name, theta, [self.slopes.T, *extra])
        fn = self.family.mapped(name)
        return evaluate(fn, np.asarray(theta, dtype=float), self.family.X, self.family.y, self.slopes.T, *extra)

    def _symbolic(self, p):
        N, U = self.n_samples, self.family.n_units
        S = ca.reshape(p[:N * U], U, N)
        return S, ca.reshape(p[N * U:], U, N)

    def expression(self, theta, index, p=None):
        S = self.slopes.T if p is None else self._symbolic(p)[0]
        f = self.family.mapped("margin")(theta, self.family.X, self.family.y, S)
        return f.T[np.asarray(index).tolist()]

    def values(self, theta, index=slice(None)) -> np.ndarray:
        return self._call("margin", theta).reshape(-1)[index]

    def jacobian(self, theta, index=slice(None)) -> np.ndarray:
        return self._call("gradient", theta).reshape(self.n_samples, -1)[index]

    def weighted_hessian(self, theta, index, weights) -> np.ndarray:
        w = np.zeros(self.n_samples)
        w[index] = weights
        return self._call("_hessian", theta, w[None, :], reduce=True)

    def _pre(self, theta) -> np.ndarray:
        """(N, U) pre-activations."""
        return self._call("pre", theta).T.reshape(self.n_samples, -1) if self.family.n_units else \
            np.zeros((self.n_samples, 0))

    def extra_expression(self, theta, p=None):
        if not self.n_extra:
            return None
        if p is None:
            S, sigma = self.slopes.T, self.signs.T
        else:
            S, sigma = self._symbolic(p)
        z = self.family.mapped("pre")(theta, self.family.X, self.family.y, S)
        rows = ca.vec(sigma * z) if p is not None else ca.vec(ca.DM(sigma) * z)
        return rows if self.sign_rows is None else rows[self.sign_rows.tolist()]

    def extra_values(self, theta) -> np.ndarray:
        return self._rows((self.signs * self._pre(theta)).reshape(-1))

    def extra_jacobian(self, theta) -> np.ndarray:
        J = self._call("pre_jacobian", theta)                      # (U, N P): sample-major column blocks
        U, P = self.family.n_units, self.model.n_params
        J = J.reshape(U, self.n_samples, P).transpose(1, 0, 2)    # (N, U, P)
        return self._rows((self.signs[:, :, None] * J).reshape(-1, P))

    def extra_hessian(self, theta, weights) -> np.ndarray:
        if not self.n_extra or self.family.pre_linear:
            return np.zeros((np.size(theta), np.size(theta)))
        w = np.asarray(weights, dtype=float)
        if self.sign_rows is not None:
            w = np.zeros(self.signs.size)
            w[self.sign_rows] = weights
        v = (w.reshape(self.n_samples, -1) * self.signs).T
        return self._call("_pre_hessian", theta, v, reduce=True)

    def extra_levels(self, theta) -> np.ndarray:
        size = float(np.linalg.norm(theta))
        return np.maximum(np.linalg.norm(self.extra_jacobian(theta), axis=1) * size, np.finfo(float).tiny)

    def unit_relative_slacks(self, theta) -> np.ndarray:
        """Each sign row's slack over the largest |z| of its unit across the samples (in [-1, 1]): which rows are
        near their kink for that unit, whatever the unit's scale (a working set's first rows)."""
        slack = (self.signs * self._pre(theta))
        scale = np.max(np.abs(slack), axis=0, initial=0.0)
        return self._rows((slack / np.where(scale > 0, scale, 1.0)).reshape(-1))

    # -- neighbours and kinks ----------------------------------------------------------------------------
    def key(self) -> bytes:
        """The region's identity: its pattern."""
        return np.packbits(self.active).tobytes()

    def flipped(self, sign_rows) -> np.ndarray:
        """The pattern of the adjacent region across the given sign rows (their units change side)."""
        active = self.active.copy().reshape(-1)
        rows = np.asarray(sign_rows, dtype=int)
        active[rows] = ~active[rows]
        return active.reshape(self.active.shape)

    def unit_label(self, unit: int) -> tuple[int, int]:
        """(activation call, position in it) of a unit."""
        return int(self.family.unit_calls[unit]), int(self.family.unit_index[unit])

    def kinks(self, theta, tol: float) -> dict[int, list[int]]:
        """Units at a kink at theta, per sample: sign rows with |z| <= tol * level (a relative tolerance)."""
        values, levels = np.abs(self.whole.extra_values(theta)), self.whole.extra_levels(theta)
        U = self.family.n_units
        found: dict[int, list[int]] = {}
        for row in np.nonzero(values <= tol * levels)[0]:
            found.setdefault(int(row // U), []).append(int(row % U))
        return found

    def vertices(self, theta, sample: int, kinks, tol: float = 1e-8, max_vertices: int = MAX_VERTICES) -> Vertices:
        """Gradients of f_sample at theta in the realizable sign patterns of its kinked units (see Vertices).

        ``kinks`` (e.g. from ``kinks``) are closed under what they feed: a unit whose pre-activation is 0 at
        theta and moves in some pattern of the kinks (|z_u| <= tol ||grad z_u|| ||theta||; e.g. a second-layer unit
        fed only by a kinked first-layer unit, constant 0 in the region, whose sign row has no gradient there)
        joins them.
        """
        fam, theta = self.family, np.asarray(theta, dtype=float)
        x, y = self.data.X[sample], float(self.data.y[sample])
        kinks, size = [int(u) for u in kinks], float(np.linalg.norm(theta))
        flat = np.zeros(len(kinks), dtype=bool)
        while True:
            # a leaky slope of 1 is no kink; nor is a unit with no gradient in any pattern (z_u constant to first
            # order: its slope multiplies a zero gradient, in f and in every unit it feeds), kept at slope 1
            moving = (fam.lows[kinks] < 1.0) & ~flat
            if 2 ** int(moving.sum()) > max_vertices:
                return Vertices(sample, self._labels(kinks), fam.lows[kinks], np.zeros((0, len(kinks))),
                                np.zeros((0, self.model.n_params)), 0, complete=False)
            patterns = _vertex_slopes(fam.lows[kinks], moving)
            slopes = np.repeat(self.slopes[sample][None, :], len(patterns), axis=0)
            slopes[:, kinks] = patterns
            pre = np.abs(evaluate(fam.pre, theta, x, y, slopes[0]).reshape(-1))
            zjacs = [evaluate(fam.pre_jacobian, theta, x, y, s) for s in slopes]
            level = np.max([np.linalg.norm(J, axis=1) for J in zjacs], axis=0) * size
            grown = [u for u in np.nonzero((pre <= tol * level) & (level > 0))[0] if u not in kinks]
            now_flat = level[kinks] == 0
            if not grown and np.array_equal(now_flat, flat):
                break
            kinks += [int(u) for u in grown]
            flat = np.append(now_flat, np.zeros(len(grown), dtype=bool))
        constant = not fam.feeds[np.ix_(kinks, kinks)].any()
        gradients, kept, dropped = [], [], 0
        for p, s, J in zip(patterns, slopes, zjacs):
            if _realizable(J[kinks][moving], p[moving] == 1.0, constant):
                gradients.append(evaluate(fam.gradient, theta, x, y, s).reshape(-1))
                kept.append(p)
            else:
                dropped += 1
        return Vertices(sample, self._labels(kinks), fam.lows[kinks], np.array(kept).reshape(-1, len(kinks)),
                        np.array(gradients).reshape(-1, self.model.n_params), dropped, complete=True)

    def _labels(self, units) -> tuple:
        return tuple(self.unit_label(u) for u in units)


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
