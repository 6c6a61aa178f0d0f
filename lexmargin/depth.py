"""Depth-sensitive margins (Theorem 1 of Nacson et al. 2019, eqs. 13-14).

For a sum of homogeneous blocks f_n(w) = sum_k y_n g_k(w_k; x_n) with degrees alpha_1 < ... < alpha_K:

* block-lexicographic solution (eq. 13), shallowest block first:
      v_1* = min ||w_1||^2  s.t.  f_n(w) >= 1,
      v_k* = min ||w_k||^2  s.t.  f_n(w) >= 1,  ||w_j||^2 <= v_j* (1 + tol) + tol  (j < k);
  a block with v_k* <= zero_tol is discarded (fixed at w_k = 0 in later stages): the data is separated
  without it.  Blocks of equal degree form one stage (sum of their squared norms).
* finite-gamma problem (eq. 14):  min sum_k gamma^(2/alpha_k) ||w_k||^2  s.t.  f_n(w) >= 1,
  solved as  min sum_k gamma^(2/alpha_k - 2/alpha_1) ||w_k||^2  (same minimizer, O(1) first weight)
  along an increasing gamma schedule, warm-started; its solutions converge to the block-lexicographic
  one as gamma -> infinity.

``svm_with_bias``: the hard-margin SVM with an unregularized bias as the depth-sensitive solution of
f_n = y_n (w.x_n + b1^2 - b2^2) (weights degree 1 first, bias degree 2 second).
"""

from __future__ import annotations

from dataclasses import dataclass

import casadi as ca
import numpy as np

from ._pathtools import KKTData, certify, check_schedule, distance, safe_normalized_margin, solver_options
from .certificate import Certificate, jsonable
from .errors import LexmarginError, ModelError
from .ipopt import nlp_solver, raise_for_status, run_solver
from .paths import Path, PathPoint, _check_data, margin_path

__all__ = [
    "DepthResult",
    "DepthStage",
    "block_groups",
    "depth_gamma_path",
    "depth_sensitive",
    "feasible_start",
    "svm_with_bias",
]


@dataclass(frozen=True, eq=False)
class DepthStage:
    """One refinement stage: min of sum ||w_b||^2 over ``blocks`` (common ``degree``)."""

    blocks: tuple[str, ...]
    degree: float
    value: float
    discarded: bool
    certificate: Certificate

    def to_dict(self) -> dict:
        return {"blocks": list(self.blocks), "degree": self.degree, "value": self.value,
                "discarded": self.discarded, "certificate": self.certificate.to_dict()}


@dataclass(frozen=True, eq=False)
class DepthResult:
    stages: tuple[DepthStage, ...]
    block_names: tuple[str, ...]
    block_squared_norms: tuple[float, ...]

    @property
    def theta(self) -> np.ndarray:
        return self.stages[-1].certificate.theta

    @property
    def discarded(self) -> tuple[str, ...]:
        return tuple(b for s in self.stages if s.discarded for b in s.blocks)

    @property
    def success(self) -> bool:
        return all(s.certificate.success for s in self.stages)

    def to_dict(self) -> dict:
        return {"theta": jsonable(self.theta), "discarded": list(self.discarded), "success": self.success,
                "block_squared_norms": dict(zip(self.block_names, self.block_squared_norms)),
                "stages": [s.to_dict() for s in self.stages]}


def block_groups(model) -> list[tuple[float, tuple[str, ...]]]:
    """Blocks grouped by degree, shallowest (smallest degree) first."""
    if not model.is_sum_of_blocks:
        raise ModelError(f"model {model.name!r} is not declared as a sum of blocks (summands=)")
    degrees = {b.name: b.degree for b in model.blocks}
    missing = [n for n, d in degrees.items() if d is None]
    if missing:
        raise ModelError(f"blocks {missing} of model {model.name!r} have no homogeneity degree")
    return [(d, tuple(n for n in degrees if degrees[n] == d)) for d in sorted(set(degrees.values()))]


def _indices(model, names) -> np.ndarray:
    return np.concatenate([np.arange(model.block_slice(n).start, model.block_slice(n).stop) for n in names])


def feasible_start(model, data, x0=None, seed: int = 0, jitter: float = 0.1) -> np.ndarray:
    """A start with f_n >= 1 when possible: the best-margin point of the unit ball plus a small random
    jitter (zero blocks of degree >= 2 are saddle points IPOPT cannot leave), each block then rescaled
    by c^(1/alpha_k) so that min_n f_n = 1."""
    theta = margin_path(model, data, [1.0], x0=x0, seed=seed).points[0].theta
    theta = theta + jitter * np.random.default_rng(seed).standard_normal(model.n_params) / np.sqrt(model.n_params)
    gamma = float(np.min(model.margins(theta, data)))
    if gamma <= 0:
        return theta
    for block in model.blocks:
        theta = model.scale_block(theta, block.name, (1.0 / gamma) ** (1.0 / block.degree))
    return theta


class _Stages:
    """NLPs over the free coordinates; discarded blocks are fixed at zero."""

    def __init__(self, model, data, tol, options):
        self.model, self.data, self.tol, self.options = model, data, tol, options

    def full(self, z_free, free) -> ca.SX:
        theta = ca.SX.zeros(self.model.n_params)
        theta[free.tolist()] = z_free
        return theta

    def solve(self, free, objective_idx, kept: list[tuple[np.ndarray, float]], theta0):
        z = ca.SX.sym("z", free.size)
        theta = self.full(z, free)
        rows = [self.model.margin_expressions(theta, self.data) - 1]
        rows += [bound - ca.sumsqr(theta[idx.tolist()]) for idx, bound in kept]
        solver = nlp_solver(z, ca.sumsqr(theta[objective_idx.tolist()]), ca.vertcat(*rows),
                            options=solver_options(self.options), name="depth_stage")
        result = run_solver(solver, x0=theta0[free], lbg=0.0, ubg=np.inf)
        return result

    def kkt(self, theta, free, objective_idx, kept) -> KKTData:
        grad = np.zeros(self.model.n_params)
        grad[objective_idx] = 2 * theta[objective_idx]
        J = [self.model.margin_jacobian(theta, self.data)]
        values = [self.model.margins(theta, self.data) - 1]
        for idx, bound in kept:
            row = np.zeros(self.model.n_params)
            row[idx] = -2 * theta[idx]
            J.append(row[None, :])
            values.append([bound - theta[idx] @ theta[idx]])
        return KKTData(grad[free], np.vstack(J)[:, free], np.concatenate([np.ravel(v) for v in values]))


def depth_sensitive(model, data, *, tol: float = 1e-8, zero_tol: float = 1e-10, x0=None, seed: int = 0,
                    options=None) -> DepthResult:
    """Block-lexicographic max-margin solution (eq. 13), one certified stage per block degree."""
    data = _check_data(data)
    if not (0 < tol < 1) or zero_tol < 0:
        raise LexmarginError(f"tol must be in (0, 1) and zero_tol >= 0; got {tol}, {zero_tol}")
    groups = block_groups(model)
    stages_solver, theta = _Stages(model, data, tol, options), feasible_start(model, data, x0, seed)
    free, kept, stages = np.arange(model.n_params), [], []
    for degree, names in groups:
        idx = _indices(model, names)
        result = stages_solver.solve(free, idx, kept, theta)
        raise_for_status(result, f"depth-sensitive stage for blocks {names}")
        theta = np.zeros(model.n_params)
        theta[free] = result.x
        value = float(theta[idx] @ theta[idx])
        cert = _stage_certificate(stages_solver, result, theta, free, idx, kept, names)
        discarded = value <= zero_tol
        stages.append(DepthStage(names, float(degree), value, discarded, cert))
        if discarded:
            theta[idx] = 0.0
            free = np.setdiff1d(free, idx)
        else:
            kept.append((idx, value * (1 + tol) + tol))
    norms = tuple(float(np.sum(theta[model.block_slice(b.name)] ** 2)) for b in model.blocks)
    return DepthResult(tuple(stages), tuple(b.name for b in model.blocks), norms)


def _stage_certificate(stages_solver, result, theta, free, idx, kept, names) -> Certificate:
    model, data = stages_solver.model, stages_solver.data
    kkt = stages_solver.kkt(theta, free, idx, kept)
    f = model.margins(theta, data)
    return certify(f"depth_sensitive_{'+'.join(names)}", result, kkt, theta=theta,
                   objective=float(theta[idx] @ theta[idx]),
                   norm="l2", margins=f, normalized_margin=safe_normalized_margin(model, theta, data),
                   margin_rows=np.arange(data.n_samples),
                   constraints=f"f_n(w) >= 1, shallower blocks kept within tol; minimizing ||{'+'.join(names)}||^2",
                   extras={"free_parameters": free.size, "block_kept_multipliers": -result.lam_g[data.n_samples:]})


# ---- finite gamma (eq. 14) ----------------------------------------------------------------------
class _GammaProblem:
    """Eq. 14 in the coordinates u_k = gamma^(1/alpha_k) w_k, where it reads

        min ||u||^2 / sigma   s.t.   f_n(u) / gamma >= 1      (p = (gamma, sigma)),

    since g_k(gamma^(-1/alpha_k) u_k) = g_k(u_k) / gamma: well conditioned for any gamma (the block
    weights gamma^(2/alpha_k) become a rescaling of the answer, not of the problem)."""

    def __init__(self, model, data, groups, options):
        self.model, self.data = model, data
        self.degrees = np.zeros(model.n_params)
        for degree, names in groups:
            self.degrees[_indices(model, names)] = degree
        u, p = ca.SX.sym("u", model.n_params), ca.SX.sym("p", 2)
        self.solver = nlp_solver(u, ca.sumsqr(u) / p[1], model.margin_expressions(u, data) / p[0] - 1, p=p,
                                 options=solver_options(options), name="depth_gamma")

    def to_u(self, theta, gamma) -> np.ndarray:
        return theta * gamma ** (1.0 / self.degrees)

    def to_theta(self, u, gamma) -> np.ndarray:
        return u * gamma ** (-1.0 / self.degrees)

    def solve(self, gamma, theta0) -> Certificate:
        u0 = self.to_u(theta0, gamma)
        sigma = max(1.0, float(u0 @ u0))
        result = run_solver(self.solver, x0=u0, p=[gamma, sigma], lbg=0.0, ubg=np.inf)
        raise_for_status(result, f"depth-sensitive finite-gamma problem at gamma={gamma:g}")
        u = result.x
        fu = self.model.margins(u, self.data)
        kkt = KKTData(2 * u / sigma, self.model.margin_jacobian(u, self.data) / gamma, fu / gamma - 1)
        theta = self.to_theta(u, gamma)
        return certify("depth_gamma", result, kkt, theta=theta, objective=float(u @ u), norm="l2",
                       margins=self.model.margins(theta, self.data), normalized_margin=None,
                       margin_rows=np.arange(self.data.n_samples),
                       constraints="f_n(w) >= 1; objective sum_k gamma^(2/alpha_k) ||w_k||^2 (solved in u_k = "
                                   "gamma^(1/alpha_k) w_k: min ||u||^2 s.t. f_n(u) >= gamma)",
                       extras={"gamma": gamma, "u": u, "objective_scale": sigma})


def depth_gamma_path(model, data, gammas, *, reference=None, x0=None, seed: int = 0, jitter: float = 1e-3,
                     options=None) -> Path:
    """Finite-gamma depth-sensitive problems (eq. 14) along an increasing schedule of gamma > 0.

    ``reference``: e.g. ``depth_sensitive(...).theta``; each point reports its distance to it and the
    squared norm of every block (``extras["block_squared_norms"]``).  Each warm start is jittered by
    ``jitter`` (seeded) so that coordinates that reached zero can grow again.
    """
    data, gammas = _check_data(data), check_schedule(gammas, "gamma")
    problem = _GammaProblem(model, data, block_groups(model), options)
    theta = feasible_start(model, data, x0, seed) if x0 is None else np.asarray(x0, dtype=float)
    rng, points = np.random.default_rng(seed), []
    for gamma in gammas:
        start = theta + jitter * rng.standard_normal(theta.size)  # leave the zero-block saddles
        cert = problem.solve(float(gamma), start)
        theta = cert.theta
        norms = {b.name: float(np.sum(theta[model.block_slice(b.name)] ** 2)) for b in model.blocks}
        cert.extras["block_squared_norms"] = norms
        points.append(PathPoint(float(gamma), theta, float(np.min(cert.margins)), float(np.linalg.norm(theta)), cert,
                                distance_to_reference=None if reference is None else distance(theta, reference),
                                extras={"block_squared_norms": norms}))
    return Path("depth_gamma", "l2", "gamma", tuple(points))


# ---- SVM with an unregularized bias -------------------------------------------------------------
def svm_with_bias(data, *, sign: str = "both", tol: float = 1e-8, options=None
                  ) -> tuple[np.ndarray, float, DepthResult]:
    """Hard-margin SVM with unregularized bias as a depth-sensitive solution: returns (w, b, result).

    ``sign="both"``: f_n = y_n (w.x_n + b1^2 - b2^2), any bias; ``sign="positive"``: f_n = y_n (w.x_n + b^2),
    the SVM restricted to b >= 0.  (w, b) are read from stage 1 (min ||w||^2, bias free); the bias-block
    stage only picks its parametrization (b1 or b2 zero).
    """
    from .modeling.loading import load_model

    data = _check_data(data)
    model = load_model("svm_bias", input_dim=data.n_features, sign=sign)
    result = depth_sensitive(model, data, tol=tol, options=options)
    p = model.unflatten(result.stages[0].certificate.theta)
    bias = p["b"][0] ** 2 if sign == "positive" else p["b1"][0] ** 2 - p["b2"][0] ** 2
    return np.array(p["w"]), float(bias), result
