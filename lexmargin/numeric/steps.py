"""Step rules: the per-run multiplier s_r of the update  theta_r <- theta_r - s_r * grad log L(theta_r).

All rules act on grad log L (computed stably); the loss enters in log space:

* ``Constant(eta)``: plain GD on L, s = eta * L  (= eta * exp(log L));
* ``Normalized(eta)``: s = eta, i.e. eta * grad L / L;
* ``Adaptive(eta)``: Lyu & Li style loss-based step: s = eta_r * L (or eta_r with ``normalized=True``);
  a step that lowers the loss is kept and eta_r grows, one that does not is rejected and eta_r shrinks
  (the run retries from the same point on its next iteration);
* ``AdaGrad(eta)``: per-coordinate steps eta g_i / sqrt(sum of g_i^2 so far), g = grad L; its state also holds
  the accumulators (R, P) (``init(runs, n_params)``; the trainer passes P to rules with ``per_coordinate``).

Step sizes are a scalar or one value per run (R,).  A rule's state is a dict of (R,) arrays (and (R, P) arrays for
per-coordinate rules).  ``init`` gives numpy arrays; the trainer moves them to the namespace and device of theta
(``backend.like``), and ``multiplier``, ``update`` and ``precondition`` compute in the namespace of their inputs
(numpy, torch, CuPy, ``array_api_strict``: ``backend.namespace``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .backend import copy, namespace


def _check_eta(rule, what="eta"):
    """Validate a step size (scalar or per run) and store it as a float or a tuple of floats."""
    eta = getattr(rule, what)
    arr = np.asarray(eta, dtype=float)
    if arr.ndim > 1 or arr.size == 0 or not np.all(np.isfinite(arr)) or not np.all(arr > 0):
        raise ValueError(f"{what} must be a positive finite scalar or a 1-D array of them; got {eta!r}")
    object.__setattr__(rule, what, float(arr) if arr.ndim == 0 else tuple(arr.tolist()))


def _per_run(eta, runs: int) -> np.ndarray:
    arr = np.asarray(eta, dtype=float)
    if arr.ndim == 1 and arr.shape[0] != runs:
        raise ValueError(f"got {arr.shape[0]} step sizes for {runs} runs")
    return np.array(np.broadcast_to(arr, (runs,)), dtype=float)


def _as_list(eta):
    arr = np.asarray(eta, dtype=float)
    return arr.tolist()


@dataclass(frozen=True)
class _FixedStep:
    """A step size eta (scalar or per run) that does not adapt."""

    eta: float | tuple = 0.1
    adaptive = False
    rule_name = ""

    def __post_init__(self):
        _check_eta(self)

    def init(self, runs: int) -> dict:
        return {"eta": _per_run(self.eta, runs)}

    def to_dict(self) -> dict:
        return {"rule": self.rule_name, "eta": _as_list(self.eta)}


@dataclass(frozen=True)
class Constant(_FixedStep):
    """Gradient descent on L with a constant step: theta <- theta - eta * grad L."""

    rule_name = "constant"

    def multiplier(self, state, log_loss) -> np.ndarray:
        return _loss_scaled(state["eta"], log_loss)


def _loss_scaled(eta, log_loss):
    """eta * L = exp(log eta + log L) per run, in the namespace of the arguments."""
    xp = namespace(eta, log_loss)
    return xp.exp(xp.log(eta) + log_loss)


@dataclass(frozen=True)
class Normalized(_FixedStep):
    """Normalized GD: theta <- theta - eta * grad L / L = theta - eta * grad log L."""

    rule_name = "normalized"

    def multiplier(self, state, log_loss) -> np.ndarray:
        return copy(state["eta"])


@dataclass(frozen=True)
class Adaptive:
    """Loss-based adaptive step: grow by ``grow`` on success, shrink by ``shrink`` and retry on failure."""

    eta: float | tuple = 0.1
    grow: float = 1.1
    shrink: float = 0.5
    normalized: bool = True
    max_eta: float = math.inf
    adaptive = True

    def __post_init__(self):
        _check_eta(self)
        if not (math.isfinite(self.grow) and self.grow >= 1):
            raise ValueError(f"grow must be a finite number >= 1; got {self.grow}")
        if not (0 < self.shrink < 1):
            raise ValueError(f"shrink must lie in (0, 1); got {self.shrink}")
        if not self.max_eta > 0:
            raise ValueError(f"max_eta must be positive; got {self.max_eta}")

    def init(self, runs: int) -> dict:
        return {"eta": _per_run(self.eta, runs)}

    def multiplier(self, state, log_loss) -> np.ndarray:
        return copy(state["eta"]) if self.normalized else _loss_scaled(state["eta"], log_loss)

    def update(self, state, accepted) -> dict:
        xp = namespace(state["eta"], accepted)
        eta = state["eta"]
        grown = np.minimum(eta * self.grow, self.max_eta) if xp is np else xp.clip(eta * self.grow, max=self.max_eta)
        return {"eta": xp.where(accepted, grown, eta * self.shrink)}

    def to_dict(self) -> dict:
        # no cap (max_eta = inf) is written as None: the dict stays strict JSON (rule_from_dict reads it back)
        return {"rule": "adaptive", "eta": _as_list(self.eta), "grow": self.grow, "shrink": self.shrink,
                "normalized": self.normalized, "max_eta": self.max_eta if math.isfinite(self.max_eta) else None}


@dataclass(frozen=True)
class AdaGrad:
    """AdaGrad (Duchi, Hazan & Singer 2011) on L, per coordinate: with g = grad L(theta_r) (the minibatch's, in SGD),

        G_i <- G_i + g_i^2,      theta_i <- theta_i - eta g_i / (sqrt(G_i) + eps).

    The accumulators G (R, P) live in the rule state (``sum_sq``, next to ``eta`` (R,)), so a checkpoint holds them
    and a resumed run continues bit for bit.  The trainer asks ``multiplier`` for L (the step along -grad log L that
    is -grad L) and ``precondition`` for the update; steps are not rescaled by the loss otherwise (AdaGrad's own
    normalization), and the rule is never fused.  ``eps`` keeps coordinates with no gradient yet at step 0.

    Args:
        eta: the step size (scalar or one per run).
        eps: added to sqrt(G) (positive).
    """

    eta: float | tuple = 0.01
    eps: float = 1e-8
    adaptive = False
    per_coordinate = True
    rule_name = "adagrad"

    def __post_init__(self):
        _check_eta(self)
        if not (math.isfinite(self.eps) and self.eps > 0):
            raise ValueError(f"eps must be a positive finite number; got {self.eps}")

    def init(self, runs: int, n_params: int = 0) -> dict:
        """State for ``runs`` runs of ``n_params`` parameters: eta (R,) and the accumulators sum_sq (R, P) = 0."""
        return {"eta": _per_run(self.eta, runs), "sum_sq": np.zeros((runs, int(n_params)))}

    def multiplier(self, state, log_loss) -> np.ndarray:
        """L (R,): times -grad log L it is the descent direction -grad L that ``precondition`` scales."""
        return namespace(log_loss).exp(log_loss)

    def precondition(self, state, direction):
        """(step, new sum_sq): step = eta d / (sqrt(G + d^2) + eps) for d = -grad L (R, P), G the accumulators."""
        xp = namespace(state["sum_sq"], direction)
        if xp is np:
            sum_sq = state["sum_sq"] + np.square(direction, dtype=np.float64)
        else:
            sum_sq = state["sum_sq"] + xp.square(xp.astype(direction, xp.float64))
        step = state["eta"][:, None] * direction / (xp.sqrt(sum_sq) + self.eps)
        return step, sum_sq

    def to_dict(self) -> dict:
        return {"rule": self.rule_name, "eta": _as_list(self.eta), "eps": self.eps}


class StepSizeRule(Protocol):
    """What the trainer asks of a step rule: how far each run moves.

    ``init(runs)`` gives the per-run state (a dict of (R,) arrays; ``eta`` among them), ``multiplier(state,
    log_loss)`` the multipliers m (R,) of the step theta + m d (d = -grad log L, or the direction of a geometry:
    ``geometry.Steepest``), ``adaptive`` rules also ``update(state, accepted)`` after each step, and
    ``to_dict()`` is what checkpoints record (``rule_from_dict`` reads it back).
    """

    adaptive: bool

    def init(self, runs: int) -> dict: ...

    def multiplier(self, state: dict, log_loss: np.ndarray) -> np.ndarray: ...

    def to_dict(self) -> dict: ...


# name -> rule class; a class with ``from_dict`` (``geometry.Steepest``) reads its own dict
RULES: dict[str, Any] = {"constant": Constant, "normalized": Normalized, "adaptive": Adaptive, "adagrad": AdaGrad}


def rule_from_dict(spec: dict):
    """A step rule from its ``to_dict`` (what checkpoints record), for exact resume.

    Args:
        spec: {"rule": name, ...}: "constant", "normalized", "adaptive", "adagrad" (with "eta"), or "steepest"
            (``numeric.geometry.Steepest``: a geometry and an inner rule).

    Returns:
        The step rule.
    """
    spec = dict(spec)
    kind = spec.pop("rule")
    if kind == "steepest" and kind not in RULES:
        from . import geometry  # noqa: F401  (registers Steepest in RULES)
    if kind not in RULES:
        raise ValueError(f"unknown step rule {kind!r}; choose from {sorted(RULES)}")
    if hasattr(RULES[kind], "from_dict"):
        return RULES[kind].from_dict({"rule": kind, **spec})
    eta = spec.pop("eta")
    if kind == "adaptive" and spec.get("max_eta", 0) is None:
        spec["max_eta"] = math.inf                      # written as None by Adaptive.to_dict: no cap
    return RULES[kind](eta=tuple(eta) if isinstance(eta, list) else eta, **spec)


__all__ = ["AdaGrad", "Adaptive", "Constant", "Normalized", "StepSizeRule", "rule_from_dict"]
