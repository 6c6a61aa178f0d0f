"""Step rules, optax-style: ``init`` and ``update`` pure functions on per-run state.

A rule maps the descent direction d = -grad log L(theta) (R, P) of R runs to their updates::

    state          = rule.init(runs, n_params)                     # a dict of arrays with a leading R axis
    delta, state'  = rule.update(d, state, log_loss, theta)        # theta' = theta + delta  (``apply_update``)

``delta`` is an (R, P) array, or a ``CoordinateUpdate`` (one coordinate per run: coordinate descent, whose
margins a linear kernel updates in O(N)).  The loss enters in log space (``log_loss`` (R,)), so L = exp(log L)
never underflows before it is needed.  The trainer knows nothing else of a rule's state: records and
messages ask ``step_sizes(state)``, fused lanes ask ``multiplier`` (rules whose update is m_r d_r, or a
geometry's step with multiplier m_r: ``fusable``), compiled step loops ask ``compiled_form``, and
``adaptive`` rules hear which steps lowered the loss through ``accept(state, accepted)``.

Rules (every one a frozen dataclass, registered by name in ``RULES`` for exact resume through ``to_dict`` /
``rule_from_dict``):

* ``Constant(eta)``: plain GD on L, delta = eta L d = -eta grad L;
* ``Normalized(eta)``: delta = eta d = -eta grad L / L;
* ``Adaptive(eta)``: Lyu & Li style loss-based step, delta = eta_r L d (or eta_r d with ``normalized=True``);
  a step that lowers the loss is kept and eta_r grows, one that does not is rejected and eta_r shrinks
  (the run retries from the same point on its next iteration);
* ``AdaGrad(eta)``: per coordinate, delta_i = eta g_i / (sqrt(G_i) + eps), G_i <- G_i + g_i^2, g = -grad L;
* ``Momentum(eta, beta)``: heavy ball, v <- beta v + m d, delta = v (m = eta, or eta L with
  ``normalized=False``);
* ``geometry.Steepest(geometry, rule)``: steepest descent in a norm or mirror descent, the multiplier from a
  fixed or adaptive rule.

Step sizes are a scalar or one value per run (R,).  ``init`` gives numpy arrays; the trainer moves them to
the namespace and device of theta (``backend.like``), and ``update``, ``accept`` and ``multiplier`` compute
in the namespace of their inputs (numpy, torch, CuPy, ``array_api_strict``: ``backend.namespace``).
A new rule subclasses ``StepRule``, sets ``name`` and writes ``update`` (``Momentum`` is about ten lines).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from .backend import astype, copy, namespace


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
    return np.asarray(eta, dtype=float).tolist()


def _loss_scaled(eta, log_loss):
    """eta * L = exp(log eta + log L) per run, in the namespace of the arguments."""
    xp = namespace(eta, log_loss)
    return xp.exp(xp.log(eta) + log_loss)


def _scaled(m, direction):
    """m_r d_r (R, P) in the dtype of ``direction``."""
    return astype(m, direction.dtype)[:, None] * direction


@dataclass(frozen=True)
class CoordinateUpdate:
    """An update that moves one coordinate per run: theta[r, index[r]] += value[r].

    Attributes:
        index: the coordinate of each run (R,) (integers).
        value: its change (R,), in theta's dtype.
    """

    index: Any
    value: Any

    def apply(self, theta):
        """theta with the coordinates moved (a new array; theta is not changed)."""
        xp = namespace(theta, self.value)
        if xp is not np:
            columns = xp.arange(theta.shape[1], device=theta.device)
            one_hot = xp.astype(xp.expand_dims(self.index, axis=1) == columns, theta.dtype)
            return theta + one_hot * self.value[:, None]
        new = theta.copy()
        new[np.arange(theta.shape[0]), self.index] += self.value
        return new


def apply_update(theta, delta):
    """theta + delta for an (R, P) array ``delta`` or a ``CoordinateUpdate`` (optax's ``apply_updates``).

    Args:
        theta: parameters (R, P).
        delta: the rule's update.

    Returns:
        The new parameters (R, P), a new array.
    """
    if isinstance(delta, CoordinateUpdate):
        return delta.apply(theta)
    return theta + delta


class StepRule:
    """The contract of a step rule (subclasses are frozen dataclasses; ``update`` is the one method to write).

    Class attributes:
        name: the registry key (``RULES``) that ``to_dict`` writes and ``rule_from_dict`` reads.
        adaptive: steps are accepted or rejected by the loss at the new point (``accept``); the trainer
            then keeps a rejected run where it was.
        fusable: the update is m_r d_r, or ``geometry``'s step with multiplier m_r (``multiplier``), so full-batch
            runs may take a kernel's fused lanes, which compute d themselves.
        preconditioned: the rule scales each coordinate itself (AdaGrad), so it cannot be composed with another
            preconditioned direction (Path-SGD).
        geometry: the geometry of the step (``numeric.geometry``), or None (plain: no geometry of its own).
    """

    name: ClassVar[str] = ""
    adaptive: ClassVar[bool] = False
    fusable: ClassVar[bool] = False
    preconditioned: ClassVar[bool] = False
    geometry: Any = None

    def init(self, runs: int, n_params: int = 0) -> dict:
        """The state of ``runs`` runs of ``n_params`` parameters: {"eta": (R,)} unless the rule needs more."""
        return {"eta": _per_run(self.eta, runs)}                   # type: ignore[attr-defined]

    def update(self, direction, state: dict, log_loss, params=None):
        """The update of every run and the rule's next state.

        Args:
            direction: d = -grad log L (R, P) (the minibatch's in SGD; Path-SGD's direction with ``path_sgd``).
            state: the rule's state for these runs (per-run arrays; not changed).
            log_loss: log L per run (R,).
            params: theta (R, P) (mirror steps need it).

        Returns:
            (delta, state'): an (R, P) array or a ``CoordinateUpdate``, and the next state (``state`` itself when
            nothing changed).
        """
        raise NotImplementedError

    def accept(self, state: dict, accepted) -> dict:
        """``adaptive`` rules: the state after the trainer kept the runs ``accepted`` (R,) and rejected the others."""
        return state

    def multiplier(self, state: dict, log_loss):
        """``fusable`` rules: m (R,) with delta = m d (or the geometry's step with multiplier m)."""
        raise TypeError(f"step rule {self.name!r} is not a multiple of the direction (not fusable)")

    def compiled_form(self, state: dict):
        """(eta (R,) float64, loss_scaled) when a compiled step loop can run this rule itself, with multiplier
        eta_r L_r (``loss_scaled``) or eta_r; None otherwise."""
        return

    def step_sizes(self, state: dict):
        """The step size of each run (R,), for records and messages."""
        return state["eta"]

    def to_dict(self) -> dict:
        """{"rule": name, field: value, ...}: strict JSON, what checkpoints record."""
        spec: dict = {"rule": self.name}
        for f in fields(self):                                      # type: ignore[arg-type]
            value = getattr(self, f.name)
            spec[f.name] = _as_list(value) if f.name == "eta" else value
        return spec

    @classmethod
    def from_dict(cls, spec: dict):
        """The inverse of ``to_dict``."""
        spec = {k: v for k, v in spec.items() if k != "rule"}
        if isinstance(spec.get("eta"), list):
            spec["eta"] = tuple(spec["eta"])
        return cls(**spec)


# name -> rule class (``register_rule``)
RULES: dict[str, Any] = {}


def register_rule(cls):
    """Class decorator: registers a ``StepRule`` under its ``name`` for ``rule_from_dict``."""
    if not cls.name or cls.name in RULES:
        raise ValueError(f"step rule name {cls.name!r} is empty or taken")
    RULES[cls.name] = cls
    return cls


class _ScalarRule(StepRule):
    """Rules whose update is m_r d_r."""

    fusable: ClassVar[bool] = True

    def update(self, direction, state, log_loss, params=None):
        return _scaled(self.multiplier(state, log_loss), direction), state


@dataclass(frozen=True)
class _FixedStep(_ScalarRule):
    """A step size eta (scalar or per run) that does not adapt."""

    eta: float | tuple = 0.1
    loss_scaled: ClassVar[bool] = False

    def __post_init__(self):
        _check_eta(self)

    def multiplier(self, state, log_loss):
        return _loss_scaled(state["eta"], log_loss) if self.loss_scaled else copy(state["eta"])

    def compiled_form(self, state):
        return np.asarray(state["eta"], dtype=np.float64), self.loss_scaled


@register_rule
@dataclass(frozen=True)
class Constant(_FixedStep):
    """Gradient descent on L with a constant step: theta <- theta - eta * grad L (m = eta L)."""

    name: ClassVar[str] = "constant"
    loss_scaled: ClassVar[bool] = True


@register_rule
@dataclass(frozen=True)
class Normalized(_FixedStep):
    """Normalized GD: theta <- theta - eta * grad L / L = theta - eta * grad log L (m = eta)."""

    name: ClassVar[str] = "normalized"


@register_rule
@dataclass(frozen=True)
class Adaptive(_ScalarRule):
    """Loss-based adaptive step: grow by ``grow`` on success, shrink by ``shrink`` and retry on failure.

    Args:
        eta: the initial step size (scalar or one per run).
        grow: factor (>= 1) on an accepted step, capped at ``max_eta``.
        shrink: factor in (0, 1) on a rejected one.
        normalized: m = eta (True) or eta L (False).
        max_eta: the cap (inf: none).
    """

    eta: float | tuple = 0.1
    grow: float = 1.1
    shrink: float = 0.5
    normalized: bool = True
    max_eta: float = math.inf
    name: ClassVar[str] = "adaptive"
    adaptive: ClassVar[bool] = True

    def __post_init__(self):
        _check_eta(self)
        if not (math.isfinite(self.grow) and self.grow >= 1):
            raise ValueError(f"grow must be a finite number >= 1; got {self.grow}")
        if not (0 < self.shrink < 1):
            raise ValueError(f"shrink must lie in (0, 1); got {self.shrink}")
        if not self.max_eta > 0:
            raise ValueError(f"max_eta must be positive; got {self.max_eta}")

    def multiplier(self, state, log_loss):
        return copy(state["eta"]) if self.normalized else _loss_scaled(state["eta"], log_loss)

    def accept(self, state, accepted):
        xp = namespace(state["eta"], accepted)
        eta = state["eta"]
        grown = np.minimum(eta * self.grow, self.max_eta) if xp is np else xp.clip(eta * self.grow, max=self.max_eta)
        return {**state, "eta": xp.where(accepted, grown, eta * self.shrink)}

    def to_dict(self) -> dict:
        # no cap (max_eta = inf) is written as None: the dict stays strict JSON (from_dict reads it back)
        spec = super().to_dict()
        spec["max_eta"] = self.max_eta if math.isfinite(self.max_eta) else None
        return spec

    @classmethod
    def from_dict(cls, spec: dict):
        if spec.get("max_eta", 0) is None:
            spec = {**spec, "max_eta": math.inf}
        return super().from_dict(spec)


@register_rule
@dataclass(frozen=True)
class AdaGrad(StepRule):
    """AdaGrad (Duchi, Hazan & Singer 2011) on L, per coordinate: with g = -grad L(theta_r) (the minibatch's, in SGD),

        G_i <- G_i + g_i^2,      delta_i = eta g_i / (sqrt(G_i) + eps).

    The accumulators G (R, P) live in the rule state (``sum_sq``, next to ``eta`` (R,)), so a checkpoint holds them
    and a resumed run continues bit for bit.  Steps are not rescaled by the loss otherwise (AdaGrad's own
    normalization), and the rule is never fused.  ``eps`` keeps coordinates with no gradient yet at step 0.

    Args:
        eta: the step size (scalar or one per run).
        eps: added to sqrt(G) (positive).
    """

    eta: float | tuple = 0.01
    eps: float = 1e-8
    name: ClassVar[str] = "adagrad"
    preconditioned: ClassVar[bool] = True

    def __post_init__(self):
        _check_eta(self)
        if not (math.isfinite(self.eps) and self.eps > 0):
            raise ValueError(f"eps must be a positive finite number; got {self.eps}")

    def init(self, runs: int, n_params: int = 0) -> dict:
        """State for ``runs`` runs of ``n_params`` parameters: eta (R,) and the accumulators sum_sq (R, P) = 0."""
        return {"eta": _per_run(self.eta, runs), "sum_sq": np.zeros((runs, int(n_params)))}

    def update(self, direction, state, log_loss, params=None):
        """delta = eta g / (sqrt(G + g^2) + eps) for g = L d = -grad L, and G + g^2 in the state."""
        g = _scaled(namespace(log_loss).exp(log_loss), direction)
        xp = namespace(state["sum_sq"], g)
        if xp is np:
            sum_sq = state["sum_sq"] + np.square(g, dtype=np.float64)
        else:
            sum_sq = state["sum_sq"] + xp.square(xp.astype(g, xp.float64))
        delta = astype(state["eta"][:, None] * g / (xp.sqrt(sum_sq) + self.eps), g.dtype)
        return delta, {**state, "sum_sq": sum_sq}


@register_rule
@dataclass(frozen=True)
class Momentum(StepRule):
    """Heavy-ball momentum (Polyak 1964): v <- beta v + m d, delta = v, with m = eta (``normalized``) or eta L.

    On linearly separable data GD with momentum keeps GD's implicit bias: its direction converges to the l2
    max-margin direction (Wang, Meng, Zhang, Sun, Chen, Ma & Liu, "Does momentum change the implicit
    regularization on separable data?", NeurIPS 2022).  The velocity v (R, P) is rule state (checkpointed).

    Args:
        eta: the step size (scalar or one per run).
        beta: the momentum in [0, 1).
        normalized: m = eta (True) or eta L (False).
    """

    eta: float | tuple = 0.1
    beta: float = 0.9
    normalized: bool = True
    name: ClassVar[str] = "momentum"

    def __post_init__(self):
        _check_eta(self)
        if not (0 <= self.beta < 1):
            raise ValueError(f"beta must lie in [0, 1); got {self.beta}")

    def init(self, runs: int, n_params: int = 0) -> dict:
        return {"eta": _per_run(self.eta, runs), "velocity": np.zeros((runs, int(n_params)))}

    def update(self, direction, state, log_loss, params=None):
        m = copy(state["eta"]) if self.normalized else _loss_scaled(state["eta"], log_loss)
        velocity = astype(self.beta * state["velocity"] + _scaled(m, direction), state["velocity"].dtype)
        return astype(velocity, direction.dtype), {**state, "velocity": velocity}


StepSizeRule = StepRule          # the name of earlier releases


def rule_from_dict(spec: dict):
    """A step rule from its ``to_dict`` (what checkpoints record), for exact resume.

    Args:
        spec: {"rule": name, ...}: a name in ``RULES`` ("constant", "normalized", "adaptive", "adagrad",
            "momentum", "steepest" (``numeric.geometry.Steepest``: a geometry and an inner rule)).

    Returns:
        The step rule.
    """
    kind = spec["rule"]
    if kind == "steepest" and kind not in RULES:
        from . import geometry  # noqa: F401  (registers Steepest in RULES)
    if kind not in RULES:
        raise ValueError(f"unknown step rule {kind!r}; choose from {sorted(RULES)}")
    return RULES[kind].from_dict(dict(spec))


__all__ = ["RULES", "AdaGrad", "Adaptive", "Constant", "CoordinateUpdate", "Momentum", "Normalized", "StepRule",
           "StepSizeRule", "apply_update", "register_rule", "rule_from_dict"]
