"""Exact max-margin solutions:  min ||theta||  s.t.  f_n(theta) >= 1  (eq. 18 of Nacson et al. 2019).

Solved with IPOPT (through CasADi).  Large data sets are solved on a working set of constraints
(lowest-margin points), adding violated ones until all N hold; the solution is then polished by
Newton's method on the KKT system of its support set, and certified on all N samples with KKT
residuals and LICQ recomputed in numpy from the model's own gradients.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import casadi as ca
import numpy as np
from scipy.optimize import linprog, nnls

from . import ipopt
from .certificate import Certificate, SolverInfo, kkt_residuals, licq, support_set
from .modeling.data import Dataset, as_dataset
from .errors import DataError, ModelError, NotSeparableError, SolverError
from .modeling.model import Model
from .norms import Norm
from .modeling.regions import RegionMargins, has_curvature_kinks, uses_piecewise_linear_activations

VIOLATION_TOL = 1e-9
MEHROTRA_MAX_ITER = 200
ANCHOR_MAX_ITER = 300
REGION_MAX_ITER = 1000  # a region that needs more is given up for the next start  # unrestricted IPOPT run that finds a separating point for a ReLU activation region  # convex LP/QP: Mehrotra converges in tens of iterations or not at all


# ---- constraint sources -------------------------------------------------------------------------
class _LinearMargins:
    """f_n(theta) = A_n . theta + c_n  (models affine in their parameters)."""

    symbol = ca.MX
    convex = True

    def __init__(self, model: Model, data: Dataset):
        zero = np.zeros(model.n_params)
        self.A = model.margin_jacobian(zero, data)
        self.c = model.margins(zero, data)

    def expression(self, theta, index):
        return ca.mtimes(ca.DM(self.A[index]), theta) + ca.DM(self.c[index])

    def values(self, theta, index=slice(None)):
        return self.A[index] @ theta + self.c[index]

    def jacobian(self, theta, index=slice(None)):
        return self.A[index]

    def weighted_hessian(self, theta, index, weights):
        return 0.0

    extra_constraints = staticmethod(lambda theta: None)


class _NonlinearMargins:
    """General models: constraints traced from the model's CasADi function."""

    symbol = ca.SX
    convex = False

    def __init__(self, model: Model, data: Dataset):
        self.model, self.data = model, data

    def expression(self, theta, index):
        return self.model.margin_expressions(theta, self._subset(index))

    def values(self, theta, index=slice(None)):
        return self.model.margins(theta, self._subset(index))

    def jacobian(self, theta, index=slice(None)):
        return self.model.margin_jacobian(theta, self._subset(index))

    def weighted_hessian(self, theta, index, weights):
        return self.model.weighted_hessian(theta, self._subset(index), weights)

    extra_constraints = staticmethod(lambda theta: None)

    def _subset(self, index):
        return self.data if isinstance(index, slice) and index == slice(None) else self.data.subset(index)


# ---- options --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkingSetOptions:
    """Constraint generation: solve on `initial` lowest-margin points, add up to `batch` violators a round."""

    enabled: bool | None = None  # None: automatic (when N > threshold)
    threshold: int = 400
    initial: int | None = None
    batch: int | None = None
    max_rounds: int = 200
    seeding: str = "auto"  # "nnls": min-norm-point support estimate (linear, l2); "margins": lowest margins


@dataclass(frozen=True)
class _Attempt:
    theta: np.ndarray
    multipliers: np.ndarray  # length N
    result: ipopt.NLPResult
    rounds: int
    working_set: np.ndarray
    iterations: int
    polish: dict = field(default_factory=dict)
    sign_multipliers: np.ndarray = field(default_factory=lambda: np.zeros(0))


# ---- the problem object ---------------------------------------------------------------------------
class MaxMarginProblem:
    """``MaxMarginProblem(model, data, norm="l2").solve()`` -> Certificate."""

    _exact_hessian_fallback = False     # set by _ipopt_options when it chose a limited-memory Hessian

    def __init__(self, model: Model, data: Dataset, norm: str = "l2", p: float | None = None, *, _source=None):
        if not isinstance(model, Model):
            raise TypeError(f"model must be a lexmargin Model, got {type(model).__name__}")
        self.model = model
        self.data = as_dataset(data)
        if self.data.n_features != model.input_dim:
            raise DataError(f"model {model.name!r} expects {model.input_dim} features; "
                            f"data has {self.data.n_features}")
        self.norm = Norm(norm, p)
        linear = model.is_linear_in_params
        self.source = _source or (_LinearMargins(model, self.data) if linear else _NonlinearMargins(model, self.data))

    # -- public ------------------------------------------------------------------------------------
    def solve(self, *, starts: int | None = None, seed=0, init=None, working_set: WorkingSetOptions | None = None,
              polish: bool = True, max_iter: int = 3000, raise_on_failure: bool = True,
              ipopt_options: dict | None = None, activation_region: bool | None = None) -> Certificate:
        """Solve and certify.

        starts/seed: random starts for nonconvex models (default 5; convex models use one).
        init: a start point (e.g. a trained theta); with activation regions, the region it lies in.
        activation_region: restrict relu/leaky_relu models to the activation region of each start
        (default: automatically when the model uses them; IPOPT does not converge on nonsmooth nets).
        """
        started = time.perf_counter()
        settings = dict(working_set=working_set or WorkingSetOptions(), polish=polish,
                        options=self._ipopt_options(max_iter, ipopt_options))
        points = self._initial_points(starts, seed, init)
        if self._use_regions(activation_region):
            cert = self._solve_in_regions(points, settings, started)
        else:
            attempts = [self._attempt(theta0, settings) for theta0 in points]
            cert = self._certificate(self._best(attempts), attempts, time.perf_counter() - started)
        if raise_on_failure and not cert.success:
            self._raise(cert)
        return cert

    def _use_regions(self, requested) -> bool:
        if requested is not None:
            return bool(requested)
        return isinstance(self.source, _NonlinearMargins) and uses_piecewise_linear_activations(self.model)

    def _solve_in_regions(self, points, settings, started) -> Certificate:
        certificates = []
        for theta0 in points:
            region = RegionMargins(self.model, self.data, self._region_anchor(theta0, settings))
            sub = MaxMarginProblem(self.model, self.data, self.norm.name, self.norm.p, _source=region)
            attempt = sub._solve_from(theta0, **{**settings, "options": self._region_options(settings)})
            certificates.append(sub._certificate(attempt, [attempt], time.perf_counter() - started))
        good = [c for c in certificates if c.success]
        best = min(good, key=lambda c: c.objective) if good else certificates[-1]
        best.extras["region_starts"] = [{"status": c.status, "objective": c.objective} for c in certificates]
        return best

    @staticmethod
    def _region_options(settings) -> dict:
        options = settings["options"]
        return {**options, "ipopt.max_iter": min(options["ipopt.max_iter"], REGION_MAX_ITER)}

    def _region_anchor(self, theta0, settings):
        """A point whose activation region is worth solving in: theta0 if it separates the data, else
        the end point of a short unrestricted IPOPT run from theta0 (which need not converge)."""
        if np.min(self.source.values(theta0)) > 0:
            return theta0
        options = {**settings["options"], "ipopt.max_iter": ANCHOR_MAX_ITER}
        result = self._ipopt(np.arange(self.data.n_samples), theta0, options)
        theta = self.norm.theta_of(result.x, self.model.n_params)
        return theta if np.all(np.isfinite(theta)) and np.min(self.source.values(theta)) > 0 else theta0

    # -- starts --------------------------------------------------------------------------------------
    def _initial_points(self, starts, seed, init):
        if init is not None:
            return [self._feasible_scaling(self._check_init(init))]
        count = starts if starts is not None else (1 if self.source.convex else 5)
        if count < 1:
            raise ValueError(f"starts must be >= 1, got {count}")
        if self.source.convex:
            return [np.zeros(self.model.n_params)] * count
        rng = np.random.default_rng(seed)
        return [self._feasible_scaling(rng.standard_normal(self.model.n_params)) for _ in range(count)]

    def _check_init(self, init) -> np.ndarray:
        theta = np.asarray(init, dtype=float).reshape(-1)
        if theta.shape != (self.model.n_params,):
            raise ModelError(f"init must have {self.model.n_params} entries for model {self.model.name!r}; "
                             f"got {np.shape(init)}")
        if not np.all(np.isfinite(theta)):
            raise ModelError("init contains non-finite values")
        return theta

    def _feasible_scaling(self, theta):
        """For homogeneous models rescale a separating start so that min_n f_n = 1 (e.g. a trained theta
        of norm 1e15 becomes a well-scaled feasible start; positive scaling keeps activation regions)."""
        degree = self.model.degree
        if degree is None:
            return theta
        low = float(np.min(self.source.values(theta)))
        return theta / low ** (1.0 / degree) if low > 0 else theta

    # -- one start: working-set loop ---------------------------------------------------------------
    def _initial_index(self, theta0, ws: WorkingSetOptions):
        n = self.data.n_samples
        use_ws = ws.enabled if ws.enabled is not None else n > ws.threshold
        if not use_ws:
            return np.arange(n), None
        size = min(n, ws.initial or max(100, 2 * self.model.n_params))
        if self._nnls_seeding_applies(ws, theta0):
            candidates = np.argsort(self.source.values(self._centroid_direction()))[:max(1000, 10 * size)]
            return np.sort(candidates[_nnls_seed(self.source.A[candidates], extra=max(10, size // 5))]), ws
        guess = theta0 if np.any(theta0) else self._centroid_direction()
        return np.sort(np.argsort(self.source.values(guess))[:size]), ws

    def _nnls_seeding_applies(self, ws, theta0) -> bool:
        if ws.seeding not in ("auto", "nnls", "margins"):
            raise ValueError(f"unknown working-set seeding {ws.seeding!r}; use 'auto', 'nnls' or 'margins'")
        applies = (isinstance(self.source, _LinearMargins) and self.norm.name == "l2"
                   and not np.any(self.source.c) and not np.any(theta0))
        if ws.seeding == "nnls" and not applies:
            raise ValueError("nnls seeding needs a model linear in theta with f(0) = 0, norm l2 and no init")
        return applies and ws.seeding != "margins"

    def _centroid_direction(self):
        if isinstance(self.source, _LinearMargins):
            return self.source.A.mean(axis=0)
        return self.model.random_params(0)

    def _attempt(self, theta0, settings) -> _Attempt:
        """_solve_from; a start that fails with the default limited-memory Hessian is solved again
        from scratch with the exact one, so a failed or infeasible verdict never rests on the
        approximation (which can stop at points of local infeasibility)."""
        first = self._solve_from(theta0, **settings)
        if first.result.success or not self._exact_hessian_fallback:
            return first
        exact = {**settings["options"], "ipopt.hessian_approximation": "exact"}
        second = self._solve_from(theta0, **{**settings, "options": exact})
        return replace(second, iterations=first.iterations + second.iterations)

    def _solve_from(self, theta0, working_set, polish, options) -> _Attempt:
        index, ws_opts = self._initial_index(theta0, working_set)
        theta, iterations, rounds = theta0, 0, 0
        max_rounds = ws_opts.max_rounds if ws_opts else 1
        batch = (ws_opts.batch if ws_opts and ws_opts.batch else max(20, self.model.n_params // 2))
        while True:
            rounds += 1
            result = self._solve_subset(index, theta, options)
            iterations += result.iterations
            if not result.success:
                return _Attempt(theta, np.zeros(self.data.n_samples), result, rounds, index, iterations)
            theta = self.norm.theta_of(result.x, self.model.n_params)
            lam = self._full_multipliers(-result.lam_g[:len(index)], index)
            mu = -result.lam_g[len(index):len(index) + self._n_sign_constraints()]
            info = {}
            if polish:
                theta, lam, info = self._polish(theta, lam, mu)
            violated = np.nonzero(self.source.values(theta) < 1.0 - VIOLATION_TOL)[0]
            if violated.size == 0 or rounds >= max_rounds:
                return _Attempt(theta, lam, result, rounds, index, iterations, info, mu)
            index = self._grow(index, violated, theta, batch)

    def _grow(self, index, violated, theta, batch):
        order = np.argsort(self.source.values(theta, violated))
        return np.union1d(index, violated[order[:batch]])

    def _n_sign_constraints(self) -> int:
        summary = getattr(self.source, "summary", None)
        return summary.n_sign_constraints if summary else 0

    def _full_multipliers(self, lam_ws, index):
        lam = np.zeros(self.data.n_samples)
        lam[index] = lam_ws
        return lam

    def _solve_subset(self, index, theta0, options) -> ipopt.NLPResult:
        if options.get("ipopt.mehrotra_algorithm") != "yes" or options["ipopt.max_iter"] <= MEHROTRA_MAX_ITER:
            return self._ipopt(index, theta0, options)
        result = self._ipopt(index, theta0, {**options, "ipopt.max_iter": MEHROTRA_MAX_ITER})
        if result.success:
            return result
        # Mehrotra's method does not detect infeasibility: fall back to IPOPT's default algorithm
        return self._ipopt(index, theta0, {**options, "ipopt.mehrotra_algorithm": "no"})

    def _ipopt(self, index, theta0, options) -> ipopt.NLPResult:
        P = self.model.n_params
        z = self.source.symbol.sym("z", self.norm.n_decision(P))
        theta = self.norm.theta_of(z, P)
        g = self.source.expression(theta, index)
        for extra in (self.source.extra_constraints(theta), self.norm.extra_constraints(z, P)):
            if extra is not None:
                g = ca.vertcat(g, extra)
        lbg = np.concatenate([np.ones(len(index)), np.zeros(g.shape[0] - len(index))])
        lbx, ubx = self.norm.bounds(P)
        return ipopt.solve_nlp(z, self.norm.objective_of(z, P), g, x0=self.norm.decision_from_theta(theta0),
                               lbg=lbg, ubg=np.inf, lbx=lbx, ubx=ubx, options=options)

    def _ipopt_options(self, max_iter, extra):
        # no relaxation of f_n >= 1: certificates are checked without tolerance on feasibility
        options = {"ipopt.max_iter": int(max_iter), "ipopt.bound_relax_factor": 0.0}
        if self.source.convex and self.norm.is_quadratic_or_linear:
            options.update(ipopt.CONVEX_QP_OPTIONS)
        elif not self.source.convex and has_curvature_kinks(self.model):
            options["ipopt.hessian_approximation"] = "limited-memory"
        self._exact_hessian_fallback = ("ipopt.hessian_approximation" in options
                                        and "ipopt.hessian_approximation" not in (extra or {}))
        return {**options, **(extra or {})}

    # -- polish --------------------------------------------------------------------------------------
    def _polish(self, theta, lam, mu):
        """Newton on the KKT system of the support set: exact to machine precision when it converges."""
        if self.norm.name not in ("l2", "lp") or (self.norm.name == "lp" and self.norm.p < 2):
            return theta, lam, {"applied": False, "reason": f"no smooth KKT system for norm {self.norm.label}"}
        if mu.size and np.max(mu) > 1e-8 * max(1.0, float(np.max(lam))):
            return theta, lam, {"applied": False, "reason": "sign constraints of the activation region are active"}
        support = support_set(lam, self.source.values(theta) - 1.0, multiplier_tol=1e-8, slack_tol=1e-5)
        if support.size == 0:
            return theta, lam, {"applied": False, "reason": "empty support"}
        new_theta, lam_s, residual, steps = _kkt_newton(self, theta, lam[support], support)
        ok = (np.isfinite(residual) and residual < 1e-10 and np.all(lam_s >= 0)
              and np.min(self.source.values(new_theta)) >= 1.0 - VIOLATION_TOL and self._signs_hold(new_theta)
              and self.norm.objective_value(new_theta) <= self.norm.objective_value(theta) * (1 + 1e-7) + 1e-12)
        if not ok:
            return theta, lam, {"applied": False, "reason": "Newton polish did not verify", "residual": residual}
        new_lam = np.zeros_like(lam)
        new_lam[support] = lam_s
        return new_theta, new_lam, {"applied": True, "newton_steps": steps, "kkt_residual": residual,
                                    "support_size": int(support.size)}

    def _signs_hold(self, theta) -> bool:
        return not self._n_sign_constraints() or float(np.min(self.source.sign_values(theta))) >= -VIOLATION_TOL

    # -- result ----------------------------------------------------------------------------------------
    def _best(self, attempts):
        good = [a for a in attempts if a.result.success]
        pool = good or attempts
        return min(pool, key=lambda a: self.norm.objective_value(a.theta) if a.result.success else np.inf)

    def _certificate(self, best: _Attempt, attempts, seconds) -> Certificate:
        theta, lam = best.theta, best.multipliers
        margins = self.source.values(theta)
        jac = self.source.jacobian(theta)
        signs, sign_jac, mu = self._sign_terms(theta, best)
        ineq_jac = np.vstack([jac, sign_jac])
        multipliers = np.concatenate([lam, mu])
        grad = self.norm.closest_subgradient(theta, ineq_jac.T @ multipliers)
        kkt = kkt_residuals(grad, ineq_jac, np.concatenate([margins - 1.0, signs]), multipliers,
                            stationarity_scale=max(1.0, float(np.max(np.abs(grad)))))
        support = support_set(lam, margins - 1.0, multiplier_tol=1e-8, slack_tol=1e-6)
        status = self._status(best, kkt)
        extras = {"objective": self.norm.objective_label, "model": self.model.name,
                  "working_set_rounds": best.rounds, "working_set_size": int(len(best.working_set)),
                  "starts": [{"status": a.result.status, "objective": self.norm.objective_value(a.theta)}
                             for a in attempts],
                  "polish": best.polish, "linear_in_params": isinstance(self.source, _LinearMargins)}
        constraints = "f_n(theta) >= 1"
        if hasattr(self.source, "summary"):
            extras["activation_region"] = self._region_extras(signs, mu)
            constraints += " within the activation region of the start (sign constraints on pre-activations)"
        return Certificate(
            problem="max_margin", status=status, theta=theta, objective=self.norm.objective_value(theta),
            norm=self.norm.label, margins=margins, normalized_margin=self._normalized_margin(theta, margins),
            multipliers=lam, support=support, kkt=kkt, licq=licq(np.vstack([jac[support], sign_jac[signs < 1e-7]])),
            solver=SolverInfo("ipopt", status, best.result.return_status, sum(a.iterations for a in attempts),
                              seconds, _message(best)),
            constraints=constraints, extras=extras)

    def _sign_terms(self, theta, best: _Attempt):
        if not self._n_sign_constraints():
            return np.zeros(0), np.zeros((0, self.model.n_params)), np.zeros(0)
        mu = best.sign_multipliers if best.sign_multipliers.size else np.zeros(self._n_sign_constraints())
        return self.source.sign_values(theta), self.source.sign_jacobian(theta), mu

    def _region_extras(self, signs, mu) -> dict:
        tight = int(np.sum(signs < 1e-7))
        return {**self.source.summary.to_dict(), "tight_sign_constraints": tight, "interior": tight == 0,
                "sign_multipliers_max": float(np.max(mu)) if mu.size else 0.0,
                "meaning": ("interior of the region: a KKT point of the original max-margin problem" if tight == 0
                            else "on the region's boundary: a KKT point of the region-restricted problem only")}

    def _status(self, best: _Attempt, kkt) -> str:
        if best.result.success:
            return best.result.status if kkt.primal_feasibility <= 1e-6 else "failed"
        return "infeasible" if self._linearly_infeasible() else best.result.status

    def _normalized_margin(self, theta, margins):
        degree, size = self.model.degree, self.norm.value(theta)
        if degree is None or size == 0:
            return None
        return float(np.min(margins)) / size ** degree

    def _raise(self, cert: Certificate):
        if isinstance(self.source, _LinearMargins) and cert.status == "infeasible":
            raise NotSeparableError(f"max_margin({self.model.name}): the data is not separable by this model "
                                    "(the linear feasibility problem f_n(theta) >= 1 is infeasible)")
        if cert.status == "infeasible":
            proof = "" if self.source.convex else (f" from all {len(cert.extras['starts'])} start(s); for a "
                                                   "nonconvex model this is local evidence, not a proof")
            raise NotSeparableError(f"max_margin({self.model.name}): IPOPT detected infeasibility of "
                                    f"f_n(theta) >= 1{proof}: the data appears not separable by this model")
        raise SolverError(f"max_margin({self.model.name}) failed: {cert.solver.message}", status=cert.status)

    def _linearly_infeasible(self) -> bool:
        if not isinstance(self.source, _LinearMargins):
            return False
        A, c = self.source.A, self.source.c
        lp = linprog(np.zeros(A.shape[1]), A_ub=-A, b_ub=c - 1.0, bounds=(None, None), method="highs")
        return lp.status == 2


def _nnls_seed(A, extra: int, weight: float = 1e3) -> np.ndarray:
    """Support estimate of min ||theta||^2 s.t. A theta >= 1 via its min-norm-point dual.

    theta* is proportional to the minimum-norm point u* of the convex hull of the rows of A; u* = A^T alpha
    with alpha >= 0, sum(alpha) = 1 is found by Lawson-Hanson NNLS (the sum enforced by a heavy row).
    Only a working-set seed: IPOPT then solves and certifies on it, adding violated constraints.
    """
    n, dim = A.shape
    system = np.vstack([A.T, np.full((1, n), weight)])
    target = np.append(np.zeros(dim), weight)
    alpha = nnls(system, target, maxiter=50 * n)[0]
    u = A.T @ alpha
    support = np.nonzero(alpha > 0)[0]
    if not np.any(u):
        return support
    lowest = np.argsort(A @ u)[:support.size + extra]
    return np.union1d(support, lowest)


def _message(attempt: _Attempt) -> str:
    r = attempt.result
    return (f"IPOPT {r.return_status} after {attempt.iterations} iterations in {attempt.rounds} working-set "
            f"round(s) on {len(attempt.working_set)} constraints")


def _kkt_newton(problem: MaxMarginProblem, theta, lam_s, support, max_steps: int = 30):
    """Solve grad obj(theta) = J_S^T lam, f_S(theta) = 1 by Newton's method."""
    src, norm = problem.source, problem.norm
    residual = np.inf
    for step in range(max_steps + 1):
        J = src.jacobian(theta, support)
        grad = norm.closest_subgradient(theta, J.T @ lam_s)
        F = np.concatenate([grad - J.T @ lam_s, src.values(theta, support) - 1.0])
        residual = float(np.max(np.abs(F)))
        if residual < 1e-13 * max(1.0, float(np.max(np.abs(grad)))) or step == max_steps:
            return theta, lam_s, residual, step
        H = _objective_hessian(norm, theta) - src.weighted_hessian(theta, support, lam_s)
        K = np.block([[H, -J.T], [J, np.zeros((len(support), len(support)))]])
        delta = np.linalg.lstsq(K, -F, rcond=None)[0]
        theta, lam_s = theta + delta[:theta.size], lam_s + delta[theta.size:]
    return theta, lam_s, residual, max_steps


def _objective_hessian(norm: Norm, theta):
    if norm.name == "l2":
        return 2.0 * np.eye(theta.size)
    return np.diag(norm.p * (norm.p - 1) * np.abs(theta) ** (norm.p - 2))


def max_margin(model: Model, data, norm: str = "l2", *, p: float | None = None, **solve_options) -> Certificate:
    """Solve min ||theta|| s.t. f_n(theta) >= 1 and return a Certificate (see MaxMarginProblem.solve)."""
    return MaxMarginProblem(model, data, norm, p).solve(**solve_options)
