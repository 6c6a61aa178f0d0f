"""Geometries of the update: steepest descent in a norm and mirror descent, batched over R runs.

A step rule (``steps.Constant``, ``Normalized``, ``Adaptive``) says *how far* a run moves: its multiplier
m_r > 0.  A geometry says *which way*: given the descent direction d = -grad log L(theta) (R, P) it maps
(theta, d, m) to the next theta.  ``Steepest(geometry, step)`` composes the two into one step rule that
the trainer runs and checkpoints like the others (``steps.rule_from_dict`` rebuilds it for exact resume).

Steepest descent in a norm ||.|| (dual norm ||.||_*) (Gunasekar, Lee, Soudry & Srebro, ICML 2018)::

    u(d)      = argmax_{||v|| <= 1} <d, v>                  (the unit steepest direction; <d, u> = ||d||_*)
    Delta(d)  = ||d||_* u(d)                                ("dual" scale, the default)
    theta'    = theta + m Delta(d)

``Delta`` is 1-homogeneous (Delta(c d) = c Delta(d), c > 0), so with the exponential loss and
grad L = L grad log L, ``Constant(eta)`` (m = eta L) is exactly steepest descent on L with step eta,
theta' = theta + eta ||grad L||_* u(-grad L), and ``Normalized(eta)`` (m = eta) uses the step eta / L.
For the l2 norm Delta(d) = d: plain gradient descent.  ``scale="unit"`` moves by m u(d) instead
(||Delta|| = m: with ``Normalized(eta)`` on linf this is sign descent theta' = theta - eta sign(grad L)).

=========  =======================  ==============================================================
geometry   dual norm ||d||_*        Delta(d) ("dual" scale)
=========  =======================  ==============================================================
l2         ||d||_2                  d
l1         ||d||_inf                d_i e_i, i = argmax_j |d_j| (first on ties): greedy coordinate
                                    descent (Gauss-Southwell); one coordinate of theta moves
linf       ||d||_1                  ||d||_1 sign(d): sign descent
lp         ||d||_q, 1/p + 1/q = 1   sign(d) |d|^(q-1) ||d||_q^(2-q)   (computed as M g(d / M),
                                    M = max |d|, so nothing overflows for any p in (1, inf))
=========  =======================  ==============================================================

With small enough steps on linearly separable data, theta / ||theta|| of steepest descent in a norm
converges to the max-margin direction *in that norm*, argmax_{||theta|| <= 1} min_n y_n <x_n, theta>
(Gunasekar et al. 2018, Thm 5; when it is unique), which ``lexmargin.problems.maxmargin.max_margin(
model, data, norm=...)`` certifies.  The paper suite's ``geometry`` check compares the two.

Full-batch exponential-loss runs on a ``LinearKernel`` with a fixed step size (``Constant``, ``Normalized``)
take the trainer's fused path in every geometry: on a compiled lane (C or numba) whole chunks of steps run in
the kernel's own loop, the geometry's O(R d) step included (``compiled_geometry`` gives it its code), like
plain GD; on a numpy lane ``fused_step`` takes the same step from Python.  Elsewhere (``fused=False``, the logistic loss, minibatches, ``Adaptive``)
the generic path runs: there, coordinate descent on a ``LinearKernel`` changes one coordinate i_r of each run,
so its margins are updated in O(N) per run instead of a matrix product: f_r <- f_r + delta_r a_{i_r}, a_i the
i-th row of A = (y X)^T (``incremental_margins``).  The trainer recomputes them exactly every ``EXACT_EVERY``
steps (by step number, so a resumed run does the same) and stores them in its checkpoints, so resume stays
bit-identical.

Mirror descent with a potential psi (strictly convex, gradient map invertible)::

    grad psi(theta') = grad psi(theta) + m d

* ``MirrorLp(p)``: psi = (1/p) sum_i |theta_i|^p, grad psi = sign(theta) |theta|^(p-1), p > 1.
  On separable data its direction converges to the l_p max-margin direction (Sun, Ahn, Thrampoulidis &
  Azizan, NeurIPS 2022), the same limit as steepest descent in l_p;
* ``Hypentropy(beta)``: psi = sum_i theta_i arcsinh(theta_i / (2 beta)) - sqrt(theta_i^2 + 4 beta^2),
  grad psi = arcsinh(theta / (2 beta)): exponentiated gradient with positive and negative parts
  (EG+-, theta = u - v, u <- u exp(m d), v <- v exp(-m d), u v = beta^2 kept; Ghai, Hazan & Singer
  2020).  It behaves like l2 GD for |theta| << beta and like an l1 geometry for |theta| >> beta.

Every geometry is a frozen dataclass with ``name``, ``step(theta, d, m) -> (theta', change)``
(``change``: None, or (index, delta) (R,) for a one-coordinate step), ``norm(theta)`` (the primal norm
of each run, for normalized margins) and ``to_dict()``; ``GEOMETRIES`` registers them by name and
``geometry_from_dict`` reads them back.

The geometries compute in the namespace of theta and d (``backend.namespace``: numpy, torch, CuPy,
``array_api_strict``); off numpy, coordinate descent writes its one coordinate as theta + delta e_i (a one-hot
row per run) instead of an in-place assignment.  ``fused_step`` is numpy only (the fused path is).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from .backend import astype, constants, copy, namespace
from .steps import CoordinateUpdate, Normalized, StepRule, register_rule, rule_from_dict

# coordinate descent's incrementally updated margins are recomputed exactly at every step divisible by this
EXACT_EVERY = 1024

SCALES = ("dual", "unit")


def _check_p(p, what="p") -> float:
    p = float(p)
    if not (math.isfinite(p) and p > 1):
        raise ValueError(f"{what} must be a finite number > 1; got {p}")
    return p


def _power(x, e: float) -> np.ndarray:
    """x ** e for x >= 0, through sqrt / products for the exponents 1/2, 1, 3/2, 2, 3 (np.power is ~10x slower)."""
    if e == 1:
        return x
    if e == 2:
        return x * x
    if e == 3:
        return x * x * x
    if e == 0.5:
        return np.sqrt(x) if type(x) is np.ndarray else namespace(x).sqrt(x)
    if e == 1.5:
        return x * (np.sqrt(x) if type(x) is np.ndarray else namespace(x).sqrt(x))
    return np.power(x, e) if type(x) is np.ndarray else namespace(x).pow(x, e)


def dual_exponent(p: float) -> float:
    """q with 1/p + 1/q = 1.

    Args:
        p: an exponent in (1, inf).

    Returns:
        The dual exponent p / (p - 1).
    """
    p = _check_p(p)
    return p / (p - 1.0)


def lp_norm(theta, p: float) -> np.ndarray:
    """||theta_r||_p per row, scaled by max |theta| first (no overflow or underflow for large p).

    Args:
        theta: vectors (R, P) (or (P,)).
        p: the exponent; ``inf`` gives max |theta|, 1 the sum of |theta|.

    Returns:
        The norms (R,) (or a scalar for one vector).
    """
    xp = namespace(theta)
    if xp is not np:
        return _lp_norm_xp(xp, theta, p)
    a = np.abs(np.asarray(theta))
    if p == 1:
        return a.sum(axis=-1)
    top = a.max(axis=-1, keepdims=True)
    if math.isinf(p):
        return top[..., 0]
    safe = np.where(top > 0, top, 1)
    return (np.sum((a / safe) ** p, axis=-1) ** (1.0 / p)) * top[..., 0]


def _lp_norm_xp(xp, theta, p: float):
    """``lp_norm`` in the array namespace ``xp``."""
    a = xp.abs(theta)
    if p == 1:
        return xp.sum(a, axis=-1)
    top = xp.max(a, axis=-1, keepdims=True)
    if math.isinf(p):
        return top[..., 0]
    safe = xp.where(top > 0, top, xp.ones_like(top))
    return (xp.sum((a / safe) ** p, axis=-1) ** (1.0 / p)) * top[..., 0]


def _column(theta, m) -> np.ndarray:
    """The multipliers m (R,) as a column (R, 1) in theta's dtype."""
    if type(theta) is np.ndarray and namespace(m) is np:
        return np.asarray(m, dtype=theta.dtype)[:, None]
    return astype(m, theta.dtype)[:, None]


def _one_hot(xp, i, like):
    """Rows e_{i_r} (R, P) in the dtype and namespace of ``like`` (R, P), for one-coordinate steps off numpy."""
    columns = xp.arange(like.shape[1], device=like.device)
    return xp.astype(xp.expand_dims(i, axis=1) == columns, like.dtype)


def _at(xp, d, i):
    """d[r, i_r] per run (R,)."""
    return xp.take_along_axis(d, xp.expand_dims(i, axis=1), axis=1)[:, 0]


@dataclass(frozen=True)
class _SteepestBase:
    """Shared by the steepest-descent geometries: ``scale`` ("dual" or "unit") and the step."""

    scale: str = "dual"
    name = ""
    p = 2.0

    def __post_init__(self):
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}; got {self.scale!r}")

    def direction(self, d) -> np.ndarray:
        """Delta(d) = ||d||_* u(d) per row (``dual`` scale; the table in the module docstring).

        Args:
            d: descent directions (R, P).

        Returns:
            Delta (R, P), with <d, Delta> = ||d||_*^2 and ||Delta|| = ||d||_*.
        """
        raise NotImplementedError

    def unit_direction(self, d) -> np.ndarray:
        """u(d) = argmax_{||v|| <= 1} <d, v> per row (0 for d = 0).

        Args:
            d: descent directions (R, P).

        Returns:
            u (R, P) with ||u|| = 1 and <d, u> = ||d||_* (rows of d that are 0 give 0).
        """
        xp = namespace(d)
        if xp is not np:
            top = xp.max(xp.abs(d), axis=1, keepdims=True)
            d = d / xp.where(top > 0, top, xp.ones_like(top))
            dual = self.dual_norm(d)
            return self.direction(d) / xp.where(dual > 0, dual, xp.ones_like(dual))[:, None]
        d = np.asarray(d)
        top = np.abs(d).max(axis=1, keepdims=True)
        d = d / np.where(top > 0, top, 1)                      # u is 0-homogeneous: max |d| = 1, no subnormals
        dual = self.dual_norm(d)
        return self.direction(d) / np.where(dual > 0, dual, 1)[:, None]

    def dual_norm(self, d) -> np.ndarray:
        """||d_r||_* per row (R,)."""
        return lp_norm(d, self.dual_p)

    def norm(self, theta) -> np.ndarray:
        """||theta_r|| per row (R,): the primal norm of the geometry."""
        return lp_norm(theta, self.p)

    @property
    def dual_p(self) -> float:
        p = self.p
        return math.inf if p == 1 else 1.0 if math.isinf(p) else dual_exponent(p)

    def update(self, theta, d, m):
        """m Delta(d) ("dual" scale) or m u(d) ("unit"): the change of theta (R, P).

        Args:
            theta: parameters (R, P) (only their dtype matters here).
            d: descent directions -grad log L (R, P).
            m: the step rule's multipliers (R,).

        Returns:
            The update (R, P).
        """
        delta = self.direction(d) if self.scale == "dual" else self.unit_direction(d)
        return _column(theta, m) * delta

    def step(self, theta, d, m):
        """theta + m Delta(d) ("dual" scale) or theta + m u(d) ("unit").

        Args:
            theta: parameters (R, P).
            d: descent directions -grad log L (R, P).
            m: the step rule's multipliers (R,).

        Returns:
            (theta', None): the new parameters (R, P) and no coordinate change.
        """
        return theta + self.update(theta, d, m), None

    def to_dict(self) -> dict:
        return {"geometry": self.name, "scale": self.scale}


@dataclass(frozen=True)
class L2(_SteepestBase):
    """Steepest descent in l2: Delta(d) = d (plain gradient descent; ``unit``: d / ||d||_2)."""

    name = "l2"
    p = 2.0

    def direction(self, d):
        return np.array(d, copy=True) if namespace(d) is np else copy(d)


@dataclass(frozen=True)
class L1(_SteepestBase):
    """Steepest descent in l1: greedy coordinate descent on the coordinate of largest |d_i| (first on ties).

    Delta(d) = d_i e_i (``unit``: sign(d_i) e_i).  ``step`` returns the change (i (R,), m d_i (R,)) so a
    linear kernel's margins can be updated in O(N) per run (``incremental_margins``).
    """

    name = "l1"
    p = 1.0

    def coordinates(self, d):
        """(i (R,), d_i (R,)): the greedy coordinate of each run and its entry of d."""
        xp = namespace(d)
        if xp is not np:
            i = xp.argmax(xp.abs(d), axis=1)
            return i, _at(xp, d, i)
        d = np.asarray(d)
        i = np.argmax(np.abs(d), axis=1)
        return i, d[np.arange(d.shape[0]), i]

    def direction(self, d):
        xp = namespace(d)
        i, di = self.coordinates(d)
        if xp is not np:
            return _one_hot(xp, i, d) * di[:, None]
        d = np.asarray(d)
        out = np.zeros_like(d)
        out[np.arange(d.shape[0]), i] = di
        return out

    def update(self, theta, d, m):
        """Move one coordinate per run: theta_i += m d_i (``unit``: m sign(d_i)).

        Args:
            theta: parameters (R, P) (their dtype).
            d: descent directions (R, P).
            m: multipliers (R,).

        Returns:
            A ``steps.CoordinateUpdate``: per run, the coordinate moved and by how much.
        """
        i, di = self.coordinates(d)
        xp = namespace(theta, d)
        if xp is not np:
            return CoordinateUpdate(i, astype(astype(m, theta.dtype) * (di if self.scale == "dual" else xp.sign(di)),
                                              theta.dtype))
        return CoordinateUpdate(i, (np.asarray(m, dtype=theta.dtype) * (di if self.scale == "dual" else np.sign(di)))
                                .astype(theta.dtype))

    def step(self, theta, d, m):
        """theta with one coordinate per run moved (``update``).

        Returns:
            (theta', (i, delta)): the new parameters and, per run, the coordinate moved and by how much.
        """
        change = self.update(theta, d, m)
        return change.apply(theta), (change.index, change.value)


@dataclass(frozen=True)
class LInf(_SteepestBase):
    """Steepest descent in linf: sign descent, Delta(d) = ||d||_1 sign(d) (``unit``: sign(d))."""

    name = "linf"
    p = math.inf

    def direction(self, d):
        xp = namespace(d)
        if xp is not np:
            return xp.sign(d) * xp.sum(xp.abs(d), axis=1, keepdims=True)
        d = np.asarray(d)
        return np.sign(d) * np.abs(d).sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Lp(_SteepestBase):
    """Steepest descent in l_p, 1 < p < inf: Delta(d) = sign(d) |d|^(q-1) ||d||_q^(2-q), q = p / (p - 1)."""

    p: float = 2.0
    name = "lp"

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "p", _check_p(self.p))

    def direction(self, d):
        xp = namespace(d)
        if xp is not np:
            return self._direction_xp(xp, d)
        d = np.asarray(d)
        q = self.dual_p
        top = np.abs(d).max(axis=1, keepdims=True)
        safe = np.where(top > 0, top, 1)
        g = np.abs(d) / safe                                   # in [0, 1]
        gq1 = _power(g, q - 1)
        gq = np.sum(gq1 * g, axis=1, keepdims=True) ** (1.0 / q)
        gq = np.where(top > 0, gq, 1)                          # a zero row moves nowhere (g = 0)
        return (np.sign(d) * gq1 * (gq ** (2 - q) * top)).astype(d.dtype, copy=False)

    def _direction_xp(self, xp, d):
        """``direction`` in the array namespace ``xp``."""
        q = self.dual_p
        top = xp.max(xp.abs(d), axis=1, keepdims=True)
        one = xp.ones_like(top)
        g = xp.abs(d) / xp.where(top > 0, top, one)
        gq1 = _power(g, q - 1)
        gq = xp.where(top > 0, xp.sum(gq1 * g, axis=1, keepdims=True) ** (1.0 / q), one)
        return astype(xp.sign(d) * gq1 * (gq ** (2 - q) * top), d.dtype)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "p": self.p}


# ---- mirror descent -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MirrorLp:
    """Mirror descent with psi = (1/p) sum |theta_i|^p: grad psi(theta') = grad psi(theta) + m d.

    grad psi(theta) = sign(theta) |theta|^(p-1), its inverse z -> sign(z) |z|^(1/(p-1)).  p = 2 is GD.
    """

    p: float = 2.0
    name = "mirror_lp"

    def __post_init__(self):
        object.__setattr__(self, "p", _check_p(self.p))

    def mirror(self, theta) -> np.ndarray:
        """grad psi(theta)."""
        xp = namespace(theta)
        return xp.sign(theta) * _power(xp.abs(theta), self.p - 1)

    def inverse_mirror(self, z) -> np.ndarray:
        """(grad psi)^-1(z)."""
        xp = namespace(z)
        return xp.sign(z) * _power(xp.abs(z), 1.0 / (self.p - 1))

    def step(self, theta, d, m):
        """theta' = (grad psi)^-1(grad psi(theta) + m d).

        Args:
            theta: parameters (R, P).
            d: descent directions (R, P).
            m: multipliers (R,).

        Returns:
            (theta', None).
        """
        z = self.mirror(theta) + _column(theta, m) * d
        return astype(self.inverse_mirror(z), theta.dtype), None

    def update(self, theta, d, m):
        """theta' - theta (``step``)."""
        return self.step(theta, d, m)[0] - theta

    def norm(self, theta) -> np.ndarray:
        return lp_norm(theta, self.p)

    def to_dict(self) -> dict:
        return {"geometry": self.name, "p": self.p}


@dataclass(frozen=True)
class Hypentropy:
    """Exponentiated gradient +- as mirror descent with grad psi(theta) = arcsinh(theta / (2 beta)).

    theta = u - v with u v = beta^2: theta' = 2 beta sinh(arcsinh(theta / (2 beta)) + m d).
    """

    beta: float = 1.0
    name = "hypentropy"

    def __post_init__(self):
        beta = float(self.beta)
        if not (math.isfinite(beta) and beta > 0):
            raise ValueError(f"beta must be positive and finite; got {self.beta}")
        object.__setattr__(self, "beta", beta)

    def step(self, theta, d, m):
        """theta' = 2 beta sinh(arcsinh(theta / (2 beta)) + m d).

        Args:
            theta: parameters (R, P).
            d: descent directions (R, P).
            m: multipliers (R,).

        Returns:
            (theta', None).
        """
        b2 = 2.0 * self.beta
        xp = namespace(theta, d)
        z = xp.asinh(theta / b2) + _column(theta, m) * d
        return astype(b2 * xp.sinh(z), theta.dtype), None

    def update(self, theta, d, m):
        """theta' - theta (``step``)."""
        return self.step(theta, d, m)[0] - theta

    def norm(self, theta) -> np.ndarray:
        return lp_norm(theta, 1)

    def to_dict(self) -> dict:
        return {"geometry": self.name, "beta": self.beta}


GEOMETRIES = {"l2": L2, "l1": L1, "linf": LInf, "lp": Lp, "mirror_lp": MirrorLp, "hypentropy": Hypentropy}


class Geometry(Protocol):
    """What the trainer asks of a geometry: which way a run moves, given d = -grad log L and the multipliers m."""

    name: str

    def step(self, theta: np.ndarray, d: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, tuple | None]: ...

    def update(self, theta: np.ndarray, d: np.ndarray, m: np.ndarray) -> Any: ...

    def norm(self, theta: np.ndarray) -> np.ndarray: ...

    def to_dict(self) -> dict: ...


def get_geometry(geometry="l2", p: float | None = None, scale: str = "dual") -> Any:
    """A geometry from a name ("l2", "l1", "linf", "lp" with ``p``, "mirror_lp" with ``p``, "hypentropy")
    or a geometry object.

    Args:
        geometry: a name (``GEOMETRIES``) or a geometry (returned as it is).
        p: the exponent of "lp" and "mirror_lp".
        scale: "dual" (steepest descent, the default) or "unit" (the unit steepest direction), for the
            steepest-descent geometries.

    Returns:
        The geometry.
    """
    if not isinstance(geometry, str):
        if not (hasattr(geometry, "step") and hasattr(geometry, "update")):
            raise TypeError(f"a geometry needs step(theta, d, m) and update(theta, d, m); got {type(geometry).__name__}")
        return geometry
    if geometry not in GEOMETRIES:
        raise ValueError(f"unknown geometry {geometry!r}; choose from {sorted(GEOMETRIES)}")
    cls = GEOMETRIES[geometry]
    if geometry in ("lp", "mirror_lp"):
        if p is None:
            raise ValueError(f"geometry {geometry!r} needs p")
        return cls(p=p, scale=scale) if geometry == "lp" else cls(p=p)
    if p is not None:
        raise ValueError(f"p is only used by 'lp' and 'mirror_lp' (got {geometry!r}, p={p})")
    return cls(scale=scale) if issubclass(cls, _SteepestBase) else cls()


def geometry_from_dict(spec: dict):
    """The inverse of a geometry's ``to_dict``.

    Args:
        spec: {"geometry": name, ...fields}.

    Returns:
        The geometry.
    """
    spec = dict(spec)
    name = spec.pop("geometry")
    if name not in GEOMETRIES:
        raise ValueError(f"unknown geometry {name!r}; choose from {sorted(GEOMETRIES)}")
    return GEOMETRIES[name](**spec)


# ---- the step rule ----------------------------------------------------------------------------------------------
@register_rule
@dataclass(frozen=True)
class Steepest(StepRule):
    """A step rule in a geometry: delta = geometry.update(theta, -grad log L, m), m from the inner ``step`` rule.

    ``Steepest("linf", Normalized(0.1))`` is sign descent with steps 0.1 ||grad L||_1 / L;
    ``Steepest("l1", Constant(0.1))`` greedy coordinate descent on L (a ``steps.CoordinateUpdate``);
    ``Steepest(MirrorLp(3), ...)`` mirror descent.  The state is the inner rule's (``eta`` per run;
    ``Adaptive`` accepts / rejects).

    Args:
        geometry: a geometry or its name (``get_geometry``).
        step: the step-size rule (``Constant``, ``Normalized``, ``Adaptive``: a ``fusable`` rule, whose
            ``multiplier`` gives m); default ``Normalized(0.1)``.
        p: the exponent of "lp" / "mirror_lp" when ``geometry`` is a name.
        scale: "dual" or "unit" when ``geometry`` is a name.
    """

    geometry: Any = "l2"                 # a Geometry (a name is turned into one)
    step: Any = field(default_factory=lambda: Normalized(0.1))       # a fusable steps.StepRule
    p: float | None = None
    scale: str = "dual"
    name: ClassVar[str] = "steepest"
    fusable: ClassVar[bool] = True

    def __post_init__(self):
        object.__setattr__(self, "geometry", get_geometry(self.geometry, self.p, self.scale))
        object.__setattr__(self, "p", getattr(self.geometry, "p", None) if self.geometry.name in ("lp", "mirror_lp")
                           else None)
        object.__setattr__(self, "scale", getattr(self.geometry, "scale", "dual"))
        if not (isinstance(self.step, StepRule) and self.step.fusable) or isinstance(self.step, Steepest):
            raise TypeError(f"step must be a step-size rule (Constant, Normalized, Adaptive); got {self.step!r}")

    @property
    def adaptive(self) -> bool:              # type: ignore[override]
        return bool(self.step.adaptive)

    @property
    def eta(self):
        return self.step.eta

    def init(self, runs: int, n_params: int = 0) -> dict:
        """The inner rule's state for ``runs`` runs."""
        return self.step.init(runs, n_params)

    def multiplier(self, state, log_loss) -> np.ndarray:
        """The inner rule's multiplier m (R,)."""
        return self.step.multiplier(state, log_loss)

    def update(self, direction, state, log_loss, params=None):
        """The geometry's update at theta = ``params`` with the inner rule's multiplier; the state unchanged."""
        return self.geometry.update(params, direction, astype(self.multiplier(state, log_loss), params.dtype)), state

    def accept(self, state, accepted) -> dict:
        """The inner rule's adaptation (``Adaptive``): grow accepted runs' steps, shrink the others'."""
        return self.step.accept(state, accepted)

    def step_sizes(self, state):
        return self.step.step_sizes(state)

    def compiled_form(self, state):
        """The inner rule's (``geometry.compiled_geometry`` adds the geometry for the compiled loops)."""
        return self.step.compiled_form(state)

    def to_dict(self) -> dict:
        return {"rule": "steepest", "geometry": self.geometry.to_dict(), "step": self.step.to_dict()}

    @classmethod
    def from_dict(cls, spec: dict) -> Steepest:
        """The inverse of ``to_dict``."""
        return cls(geometry_from_dict(spec["geometry"]), rule_from_dict(spec["step"]))


def is_incremental(kernel, geometry) -> bool:
    """Whether ``geometry``'s steps on ``kernel`` update the margins incrementally (l1 on a ``LinearKernel``).

    Args:
        kernel: the batched kernel.
        geometry: the rule's geometry.

    Returns:
        True for coordinate descent on a linear kernel.
    """
    from .kernels import LinearKernel

    return type(kernel) is LinearKernel and isinstance(geometry, L1)


def incremental_margins(kernel, f, change, out=None):
    """Margins after a one-coordinate step on a linear kernel: f + delta a_i, O(N) per run.

    Args:
        kernel: the kernel (only a ``LinearKernel`` qualifies).
        f: margins before the step (R, N).
        change: (i (R,), delta (R,)) from ``L1.step``.
        out: optional buffer for the result (R, N).

    Returns:
        The new margins (R, N), or None when the kernel is not linear (the caller recomputes them).
    """
    from .kernels import LinearKernel

    if change is None or type(kernel) is not LinearKernel or f is None:
        return None
    i, delta = change
    xp = namespace(f, delta)
    if xp is not np:
        return f + xp.take(constants(kernel, ("A",), f).A, i, axis=0) * delta[:, None]
    rows = kernel.A[i]                                    # (R, N): a_i = (y x_{., i}) for each run's i
    rows *= delta[:, None]
    return np.add(f, rows, out=out)


def fused_step(lane, geometry, m) -> None:
    """One step of a geometry on a fused lane (``fused.LinearExpLane``: full-batch exponential loss, linear kernel).

    The lane holds P = [-theta^T; c] and [G; s] = B e^T at the current point (both (d + 1, R)), so
    d = -grad log L = G / s costs one pass; the geometry's step Delta theta is applied to P in place (coordinate
    descent: one entry per run), the shift is predicted to first order, c' = -log L + <d, Delta theta>, and the
    lane's kernel (C, numba or numpy) computes the weights and sums at the new point.  Only O(R d) work runs in
    numpy, on (R, d) views of the lane's (d, R) arrays (no transposed copies).  ``CompiledStepper`` runs the
    same arithmetic inside a compiled lane's step loop instead (``compiled_geometry``); this is the path of
    numpy lanes and of the rules the loop does not take (tests compare the two).

    Args:
        lane: the fused lane, advanced in place.
        geometry: the rule's geometry.
        m: the step rule's multipliers (R,).
    """
    G, s = lane.GT[:-1], lane.GT[-1]
    top = lane.P[:-1]                                       # -theta^T (d, R)
    with np.errstate(over="ignore", invalid="ignore"):     # an overflowing prediction is redone by the lane
        d = (G / s).T                                       # (R, d) view
        m = np.asarray(m, dtype=top.dtype)
        if isinstance(geometry, L1):
            i, di = geometry.coordinates(d)
            step = m * (di if geometry.scale == "dual" else np.sign(di))
            top[i, np.arange(top.shape[1])] -= step
            predicted = di * step
        else:
            if isinstance(geometry, _SteepestBase):
                delta = m[:, None] * (geometry.direction(d) if geometry.scale == "dual" else geometry.unit_direction(d))
            else:                                           # mirror descent: the step depends on theta
                theta = np.negative(top).T
                delta = geometry.step(theta, d, m)[0] - theta
            predicted = np.einsum("rk,rk->r", d, delta)
            top -= delta.T
        lane.P[-1] = predicted - lane.log_loss
        lane._refresh()


# codes of the compiled step loops' geometries (_fused.c, _fused_numba.py); GEO_UNIT or-ed in for scale="unit"
GEO_L2, GEO_L1, GEO_LINF, GEO_LP, GEO_MIRROR, GEO_HYPENTROPY, GEO_UNIT = 0, 1, 2, 3, 4, 5, 8
_GEO_CODES = {L2: GEO_L2, L1: GEO_L1, LInf: GEO_LINF, Lp: GEO_LP, MirrorLp: GEO_MIRROR, Hypentropy: GEO_HYPENTROPY}


def compiled_geometry(rule) -> tuple[int, float] | None:
    """(code, parameter) of a rule's geometry for the compiled step loops, or None where they do not apply.

    The compiled loops (``LinearExpLane.run``) apply ``fused_step``'s arithmetic per run inside their chunk of
    steps: Delta theta of the geometry from d = G / s, the shift predicted as -log L + <d, Delta theta>, the
    same shift check and divergence status as GD.  They take ``Steepest`` rules of the six geometries here
    (either scale) with a ``Constant`` or ``Normalized`` inner rule.

    Args:
        rule: a step rule.

    Returns:
        (code, param): ``GEO_*`` (| ``GEO_UNIT`` for scale "unit"), and p (``Lp``, ``MirrorLp``), beta
        (``Hypentropy``) or 0; None for other rules, geometries or inner rules (e.g. ``Adaptive``).
    """
    from .steps import Constant

    if type(rule) is not Steepest or type(rule.step) not in (Constant, Normalized):
        return None
    geometry = rule.geometry
    code = _GEO_CODES.get(type(geometry))
    if code is None:
        return None
    if getattr(geometry, "scale", "dual") == "unit":
        code |= GEO_UNIT
    return code, float(getattr(geometry, "beta", None) or (geometry.p if code & 7 in (GEO_LP, GEO_MIRROR) else 0.0))


__all__ = ["EXACT_EVERY", "GEOMETRIES", "L1", "L2", "Geometry", "Hypentropy", "LInf", "Lp", "MirrorLp", "Steepest",
           "compiled_geometry", "dual_exponent", "fused_step", "geometry_from_dict", "get_geometry", "incremental_margins", "is_incremental", "lp_norm"]
