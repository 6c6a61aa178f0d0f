"""Exact max-margin solutions:  min ||theta||  s.t.  f_n(theta) >= 1  (eq. 18 of Nacson et al. 2019).

Pipeline (shared with every problem): the problem is written as an ``NLP`` (``margin_nlp``: the
norm's objective form over its lift z, one margin row per sample, the norm's own rows, and the sign
rows of an activation region), solved by IPOPT, finished exactly (``nlp.finish``) and certified on
all N samples (``nlp.certify``).

* Models linear in theta are solved in theta' = 2^e theta with A' = A / 2^e (exact), so any data
  scale gives the same problem; when IPOPT fails, a Farkas certificate (``separability``) decides
  ``not_separable``.  Convex LP/QP use Mehrotra's predictor-corrector.
* Large N: a working set of constraints grows by the violated ones until all N hold.
* Nonconvex models: several random starts (rescaled to min_n f_n = 1), the best certified one wins;
  when no start reaches a separating point the status is ``no_separating_point`` (not a proof).
* ReLU nets: solved within the activation region of each start, walking to the adjacent region while
  sign rows bind; ``optimal`` only when the Clarke check (``nlp.clarke``: every realizable slope choice at
  the kinks) certifies the original problem, else ``region_boundary``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields, replace
from functools import cached_property

import casadi as ca
import numpy as np

from ..errors import DataError, ModelError, NoSeparatingPointError, NotSeparableError, SolverError
from ..modeling import ops
from ..modeling.model import Block, Model
from ..modeling.multiclass import problem_data, with_margin_rows
from ..modeling.regions import RegionFamily, RegionMargins, has_curvature_kinks, uses_piecewise_linear_activations
from ..nlp import ipopt
from ..nlp.certificate import Certificate, Diagnostics, SolverInfo, assemble, residuals_from
from ..nlp.certify import KKTReport, Residuals, certify
from ..nlp.clarke import KinkedRow, clarke_check
from ..nlp.finish import NOT_RUN, FinishInfo, finish_or_keep, fit_multipliers
from ..nlp.nlp import NLP, Point, Rows, exact_affine_values, split_extended_multipliers
from ..nlp.nnls import nnls
from ..nlp.norms import L2, OBJECTIVE, Lift, PartialL2, get_norm
from ..nlp.options import SolveOptions
from ..nlp.status import Status, decide
from ..nlp.threads import single_blas_thread
from ..progress import bar, get_logger, verbose_call
from .dual import ROUTES, dual_applies, dual_certificate, linear_margins
from .lp import lp_applies, lp_certificate
from .margins import (
    STRUCTURES,
    InputAffineMargins,
    LiftedSolver,
    balanced_factorization,
    deep_linear_widths,
    model_margins,
    power_of_two_exponent,
)
from .relu_convex import TwoLayerRegions
from .separability import FarkasProof, farkas_proof
from .starts import gd_start, separating_gd

log = get_logger(__name__)
VIOLATION_TOL = 1e-9       # working set: rows with f_n < 1 - VIOLATION_TOL join the next round
NO_TIME_LEFT = 1e-9     # IPOPT's wall-time limit when none of the time limit is left (it must be positive)
CLOSED_FORM = "closed form"
DEEP_LINEAR_MESSAGE = ("deep linear net: the balanced rank-one factorization of the linear max-margin solution (the global "
                       "minimum), finished and certified without IPOPT")
DEFAULT_STARTS = 5         # random starts of a nonconvex model (ReLU nets: the GD start alone when it separates)
REGION_MAX_ITER = 1000     # a region that needs more is given up for the next start
WALK_STEP_MAX_ITER = 300   # a region entered by the walk (at its boundary): measured 27-36 iterations when it converges
                           # (N = 1000, width 8); one that did not ran 2 x 1000 iterations and its fallbacks (42 s)
                           # to end infeasible: such a step now ends the walk, without fallbacks
WALK_MAX_STEPS = 25        # regions visited by one start's walk
WALK_MAX_STEPS_CONVEX = 400   # ... when the regions are solved in their convex form (about 0.05-0.3 s per region)
# a region whose convex form Clarabel cannot solve (it can call a degenerate region infeasible although the walk's
# point lies in it), or whose solution the exact finish cannot certify, goes to IPOPT up to this many sign rows
# (N x units); beyond, the convex outcome stands (judged).  Measured (teacher data, width 8): at N = 300 (2400 sign
# rows) IPOPT from the convex point reached the Clarke-certified optimum in ~5 s; at N = 1000 (8000) it took 4 s
# without changing the walk's end, at N = 10^4 over 35 s
CONVEX_FALLBACK_MAX_SIGN_ROWS = 5_000
SIGN_ROWS_NEAR = 0.02      # a region's sign working set starts with the rows whose slack is <= this fraction of their
                           # unit's largest |z| (regions.unit_relative_slacks); violated ones join round by round
SIGN_ROWS_MIN_SET = 1500    # automatic sign working set only above this many sign rows: measured (d=5, width 8) it
                           # was 15 % slower at N=100 (800 rows: one solver build per region) and 2x the IPOPT
                           # iterations per second at N=300 (2400 rows)
START_KEPT = "the start itself: no solve from it reached a smaller objective"
SOLVER_NAMES = {"ipopt": "IPOPT", "clarabel": "Clarabel (the activation region's convex form)", "highs": "HiGHS"}
# the activation-region route forms the N U x P sign-row Jacobian and P x P Hessians densely (CasADi, IPOPT, the
# certificate); beyond this many bytes for either it is refused up front instead of running out of memory after
# minutes without a progress record (measured: 64-256-256-1 on 360 digits, 121 GB and 54 GB)
REGION_DENSE_BYTES = 4 << 30


# ---- options and diagnostics ----------------------------------------------------------------------
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
class StartOutcome:
    """One start: the certificate status it reached, its objective, residual and IPOPT iterations."""

    status: Status
    objective: float
    kkt_max: float
    iterations: int

    def to_dict(self) -> dict:
        return {"status": self.status.value, "objective": self.objective, "kkt_max": self.kkt_max,
                "iterations": self.iterations}


@dataclass(frozen=True)
class WalkStep:
    """One region on a start's walk: the status of its solution, its objective, the sign rows binding there
    (the units flipped to enter the next region)."""

    status: Status
    objective: float
    binding_sign_rows: int

    def to_dict(self) -> dict:
        return {"status": self.status.value, "objective": self.objective, "binding_sign_rows": self.binding_sign_rows}

    @classmethod
    def from_dict(cls, d: dict) -> WalkStep:
        return cls(Status(d["status"]), float(d["objective"]), int(d["binding_sign_rows"]))


@dataclass(frozen=True)
class RegionDiagnostics:
    """The activation region a ReLU solve was restricted to, the restricted problem's residuals, the Clarke
    check of the original problem and the walk across regions that led there.

    tight_sign_constraints: sign rows active at theta (pre-activations at a kink).
    sign_row_weight: the largest weight |mu_i| ||grad s_i|| of a sign row in the restricted problem's
    stationarity balance, relative to that balance's scale (0 when the region constraints are not
    binding; scale-free).
    clarke: ``ClarkeCheck.summary()``: kinked units of active samples, the residuals with the chosen Clarke
    gradients, the chosen slopes (relu'(0) in [0, 1], leaky_relu'(0) in [alpha, 1]) per kinked margin row.
    walk: the regions visited from the start, in order (this point's region is the last).
    """

    n_units: int
    n_active_units: int
    n_sign_constraints: int
    tight_sign_constraints: int
    sign_row_weight: float
    restricted_kkt: Residuals
    clarke: dict | None = None
    walk: tuple = ()

    @property
    def interior(self) -> bool:
        return self.tight_sign_constraints == 0

    def to_dict(self) -> dict:
        return {"n_units": self.n_units, "n_active_units": self.n_active_units,
                "n_sign_constraints": self.n_sign_constraints, "tight_sign_constraints": self.tight_sign_constraints,
                "interior": self.interior, "sign_row_weight": self.sign_row_weight,
                "restricted_kkt": self.restricted_kkt.to_dict(), "clarke": self.clarke,
                "walk": [step.to_dict() for step in self.walk]}

    @classmethod
    def from_dict(cls, d: dict) -> RegionDiagnostics:
        return cls(int(d["n_units"]), int(d["n_active_units"]), int(d["n_sign_constraints"]),
                   int(d["tight_sign_constraints"]), float(d["sign_row_weight"]), residuals_from(d["restricted_kkt"]),
                   d.get("clarke"), tuple(WalkStep.from_dict(w) for w in d.get("walk", ())))


@dataclass(frozen=True)
class MaxMarginDiagnostics(Diagnostics):
    kind = "max_margin"

    model: str
    objective_label: str
    linear_in_params: bool
    scale_exponent: int
    working_set_rounds: int
    working_set_size: int
    starts: tuple[StartOutcome, ...] = ()
    region: RegionDiagnostics | None = None
    farkas: FarkasProof | None = None

    @classmethod
    def _from_fields(cls, d: dict) -> MaxMarginDiagnostics:
        d = dict(d)
        d["starts"] = tuple(StartOutcome(Status(s["status"]), float(s["objective"]), float(s["kkt_max"]),
                                         int(s["iterations"])) for s in d.get("starts", ()))
        region = d.get("region")
        if region:
            d["region"] = RegionDiagnostics.from_dict(region)
        d["farkas"] = FarkasProof.from_dict(d["farkas"]) if d.get("farkas") else None
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


# ---- the NLP ----------------------------------------------------------------------------------------
def margin_nlp(source, lift: Lift, index, *, extra: bool = True, name: str = "max_margin") -> NLP:
    """min objective(z)  s.t.  f_n(T z) - 1 >= 0 (n in index), the norm's rows, the source's extra rows."""
    index = np.asarray(index, dtype=int)
    extra = extra and source.n_extra > 0
    rows = [Rows("margin", index.size, samples=index)]
    if lift.n_rows:
        rows.append(Rows("norm", lift.n_rows))
    if extra:
        rows.append(Rows(source.extra_kind, source.n_extra))
    k, r = index.size, lift.n_rows
    # linear sources over all rows in order: their A itself (no copy), and no pull-back for an identity lift
    rows_of = slice(None) if source.linear and np.array_equal(index, np.arange(source.n_samples)) else index
    identity = lift.n == lift.n_params and not lift.split

    parameters = getattr(source, "parameters", 0)   # a parametric source (an activation region: its pattern)
    given = (lambda p: (p,)) if parameters else (lambda p: ())

    def expressions(z, p):
        theta = lift.theta(z)
        parts = [source.expression(theta, index, *given(p)) - 1, lift.rows(z)]
        if extra:
            parts.append(source.extra_expression(theta, *given(p)))
        return lift.objective(z), ca.vertcat(*parts)

    def evaluate(z, p=None) -> Point:
        theta = lift.theta(z)
        values = [source.values(theta, rows_of) - 1.0, lift.row_values(z)]
        J = source.jacobian(theta, rows_of)
        jacobian = [J if identity else lift.pull_back(J), lift.row_jacobian(z)]
        levels = [np.ones(k), lift.row_levels(z)]
        if extra:
            values.append(source.extra_values(theta))
            jacobian.append(lift.pull_back(source.extra_jacobian(theta)))
            levels.append(source.extra_levels(theta))
        jacobian = [part for part in jacobian if part.shape[0]] or jacobian[:1]
        return Point(lift.objective_value(z), lift.objective_gradient(z), np.concatenate(values),
                     jacobian[0] if len(jacobian) == 1 else np.vstack(jacobian), np.concatenate(levels))

    def hessian(z, p, multipliers):
        if source.linear:
            return _objective_hessian_diagonal(lift, z)
        theta = lift.theta(z)
        H = lift.objective_hessian(z) - lift.push_hessian(source.weighted_hessian(theta, index, multipliers[:k]))
        H = H - lift.row_hessian(z, multipliers[k:k + r])
        if extra:
            H = H - lift.push_hessian(source.extra_hessian(theta, multipliers[k + r:]))
        return H

    def exact_values(z, wanted):
        """The margin rows among ``wanted`` (A T z + c - 1, T the lift) exactly rounded; other rows not done."""
        wanted = np.asarray(wanted, dtype=int)
        margin = wanted < k
        values, done = np.full(wanted.size, np.nan), np.zeros(wanted.size, dtype=bool)
        if margin.any():
            samples = index[wanted[margin]]
            J = lift.pull_back(source.A[samples])
            offsets = np.column_stack([source.c[samples], np.full(samples.size, -1.0)])
            values[margin], done[margin] = exact_affine_values(J, z, offsets)
        return values, done

    lower, upper = lift.bounds()
    exact = exact_values if source.linear and hasattr(source, "A") and hasattr(source, "c") else None
    return NLP(name=name, n=lift.n, rows=tuple(rows), lower=lower, upper=upper, expressions=expressions,
               evaluate=evaluate, theta=lift.theta, hessian=hessian, symbol=source.symbol, parameters=parameters,
               hessian_diagonal=bool(source.linear), x_scale=_lift_scale(lift, source.column_scale),
               exact_values=exact)


def lifted_margin_nlp(source, lift: Lift, index) -> NLP:
    """IPOPT's form of ``margin_nlp`` for a model affine in its input (f = A beta(theta) + y c(theta)): the margins
    lifted into u = (beta, c), z = [lift; u], rows  A u_beta + y u_c - 1 >= 0 (n in index), the norm's rows,
    u - (beta, c)(theta) = 0 (link).  The N x P Jacobian becomes N x (d + 1) plus (d + 1) x P; only IPOPT sees
    it (``margins.LiftedSolver``), the finish and the certificate work on ``margin_nlp``."""
    index = np.asarray(index, dtype=int)
    k, n = source.n_link, lift.n
    rows = [Rows("margin", index.size)]
    if lift.n_rows:
        rows.append(Rows("norm", lift.n_rows))
    rows.append(Rows("link", k, equality=True))

    def expressions(z, p):
        u = z[n:]
        return lift.objective(z[:n]), ca.vertcat(source.lifted_expression(u, index) - 1, lift.rows(z[:n]),
                                                 u - source.link_expression(lift.theta(z[:n])))

    lower, upper = lift.bounds()
    return NLP(name="max_margin_lifted", n=n + k, rows=tuple(rows), lower=np.concatenate([lower, np.full(k, -np.inf)]),
               upper=np.concatenate([upper, np.full(k, np.inf)]), expressions=expressions, evaluate=None,
               theta=lambda z: lift.theta(z[:n]), symbol=source.symbol)


def _objective_hessian_diagonal(lift: Lift, z) -> np.ndarray:
    """The diagonal of the objective's Hessian (diagonal in every norm's objective form); l2's (2, or 2 mask for
    ``PartialL2``) without forming the n x n matrix (800 MB at n = 10^4)."""
    if isinstance(lift.norm, L2) and lift.n == lift.n_params and not lift.split:
        return 2.0 * lift.norm.mask(lift.n) if isinstance(lift.norm, PartialL2) else np.full(lift.n, 2.0)
    return np.diag(lift.objective_hessian(z)).copy()


def proposal_certificate(problem, nlp: NLP, result: ipopt.IpoptResult, opts: SolveOptions, started, rounds: int,
                         working_set, row_gram=None) -> tuple[Certificate, Status]:
    """(certificate, verdict) of an exact route's proposal (the dual active set's, HiGHS's: an ``IpoptResult`` with
    ``vertex=True``) on the full max-margin NLP ``nlp`` of ``problem``: finished where it can matter
    (``finish_or_keep``, from the solver's vertex; ``row_gram``: ``certify``'s), certified on every row and assembled
    like an IPOPT attempt with the one start it is.  The caller sets the route's ``SolverInfo`` (with
    ``representable``'s note)."""
    source, lift = problem.source, problem.lift
    point, report = finish_or_keep(nlp, result, opts, row_gram=row_gram)
    assert report is not None           # want_report: finish_or_keep always certifies here
    verdict = decide(report.kkt_met(opts.tolerances), result.status)
    attempt = _Attempt(point.z, point.multipliers, point.lower_multipliers, point.upper_multipliers, result.status,
                       result.return_status, result.iterations, result.seconds, rounds, working_set, point.info,
                       report, solver=result.solver)
    with np.errstate(over="ignore"):        # theta and its norm may overflow in the data's units (``representable``)
        start = StartOutcome(verdict, float(problem.norm.objective_value(source.to_user(lift.theta(point.z)))),
                             report.residuals.max, result.iterations)
    return problem._certificate(source, attempt, report, verdict, opts, started, starts=(start,)), verdict


def representable(theta, status: Status, scale_exponent: int) -> tuple[Status, str]:
    """(status, note): a solution certified on the prescaled problem (theta' = 2^e theta) whose theta overflows in the
    data's units (data at ~1e-308 and below: theta ~ 1 / |x| is beyond the largest double) is ``failed``, never
    ``optimal``: the returned theta is not the certified point.  The note says so in the solver's message."""
    if np.all(np.isfinite(theta)):
        return status, ""
    return Status.FAILED, (f"; theta overflows double precision in the data's units (the certified point is theta' = "
                           f"2^{scale_exponent} theta of the prescaled problem; rescale the data)")


def _lift_scale(lift: Lift, column_scale):
    """Variable scaling of the lift from per-parameter scales (the lift's auxiliary t gets the largest)."""
    if column_scale is None or np.all(column_scale == 1.0):
        return None
    if lift.split:
        return np.concatenate([column_scale, column_scale])
    extra = lift.n - lift.n_params
    return np.concatenate([column_scale, np.full(extra, np.max(column_scale))])


# ---- one start ----------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Attempt:
    z: np.ndarray                 # the solved (scaled) lift
    multipliers: np.ndarray       # rows of the full NLP (all N margin rows first)
    lower: np.ndarray
    upper: np.ndarray
    solver_status: Status
    return_status: str
    iterations: int
    seconds: float
    rounds: int
    working_set: np.ndarray
    finish: FinishInfo = NOT_RUN
    report: KKTReport | None = None   # the KKT report when the working set covered every sample
    solver: str = "ipopt"         # who proposed the point: "ipopt", or "clarabel" (a region's convex form)


@dataclass(frozen=True, eq=False)
class _RegionOutcome:
    """A point found in an activation region, judged: its report (Clarke check), status and diagnostics, the
    restricted problem's binding sign rows (indices among the region's sign rows), objective and feasibility."""

    region: RegionMargins
    attempt: _Attempt
    report: object
    status: Status
    diagnostics: RegionDiagnostics
    binding_signs: np.ndarray
    objective: float
    feasible: bool

    def with_walk(self, walk) -> _RegionOutcome:
        return replace(self, diagnostics=replace(self.diagnostics, walk=tuple(walk)))


TIE = 1e-7      # objectives within this relative distance count as equal when ranking region outcomes


def _region_rank_best(outcomes):
    """The outcome with the smallest objective among feasible points (the largest normalized margin), a
    certified one when it is within TIE of that; without a feasible point, the best by status and residual.
    Objectives within TIE are equal: among them the best status wins, then the first outcome (not rounding
    noise: the same point reached from two starts differs in the last digits)."""
    feasible = [o for o in outcomes if o.feasible]
    if not feasible:
        return min(outcomes, key=lambda o: _rank(o.status, o.report, o.objective))
    low = min(o.objective for o in feasible)
    near = [o for o in feasible if o.objective <= low + TIE * abs(low)]
    return min(near, key=lambda o: _status_rank(o.status, o.report))


class MaxMarginProblem:
    """``MaxMarginProblem(model, data, norm="l2").solve()`` -> Certificate."""

    default_working_set = WorkingSetOptions()

    def __init__(self, model: Model, data, norm="l2", p: float | None = None, *, structure: str = "auto"):
        if not isinstance(model, Model):
            raise TypeError(f"model must be a lexmargin Model, got {type(model).__name__}")
        self.model = model
        # the margin rows: the Dataset itself (binary), or one row per (n, j) for a model with K outputs
        self.dataset, self.data = problem_data(model, data)
        if self.data.n_features != model.input_dim:
            raise DataError(f"model {model.name!r} expects {model.input_dim} features; "
                            f"data has {self.data.n_features}")
        self.norm = get_norm(norm, p).bind(model)     # a layout-dependent norm ("path") reads the model's arrays
        if structure not in STRUCTURES:
            raise ModelError(f"unknown structure {structure!r}; use one of {STRUCTURES}")
        self.structure = structure
        self.source = linear_margins(model, self.data) if model.is_linear_in_params else \
            model_margins(model, self.data, structure)
        self.lift = self.norm.lift(OBJECTIVE, model.n_params)
        self._solvers: dict = {}

    # -- public ------------------------------------------------------------------------------------
    @verbose_call
    def solve(self, options: SolveOptions | None = None, *, working_set: WorkingSetOptions | None = None,
              activation_region: bool | None = None, route: str = "auto", **overrides) -> Certificate:
        """Solve and certify.

        Args:
            options: SolveOptions (tol, max_iter, time_limit, starts, seed, init, finish, raise_on_failure,
                ipopt, tolerances, verbose: progress at INFO, ``lexmargin.progress``); keyword overrides of its
                fields are accepted too.
            working_set: IPOPT's constraint generation for large N (default: automatic above 400 samples); given,
                it selects IPOPT's route under route="auto" (the dual route has its own working set).
            activation_region: solve relu/leaky_relu models within the activation region of each start
                (default: automatically when the model uses them; IPOPT does not converge on nonsmooth nets).
            route: "auto" (default): models linear in theta with the l2 objective are solved by the dual active-set
                method (problems/dual.py), IPOPT when that is not certified ``optimal`` (and with ``finish=False``,
                which asks for IPOPT's own point); the activation regions of bias-free two-layer ReLU nets under
                the l2 objective are solved in their convex form (``relu_convex``: a second-order cone program per
                region, IPOPT when it fails); models linear in theta with a polyhedral objective (l1, linf) by
                HiGHS's dual simplex on the linear program (``problems.lp``), IPOPT when that is not ``optimal``;
                "ipopt": IPOPT only; "dual": the dual route only; "lp": the LP route only (each: its certificate
                whatever its status).
        Returns:
            The Certificate of the best start (raises on failure unless ``raise_on_failure=False``).
        """
        opts = SolveOptions.resolve(options, **overrides)
        with single_blas_thread():      # dense factorizations and products of a few to a few thousand rows
            return self._solve(opts, working_set, activation_region, route)

    def _solve(self, opts: SolveOptions, working_set, activation_region, route) -> Certificate:
        started = time.perf_counter()
        ws = working_set or self.default_working_set
        points = self._initial_points(opts)
        widths = self._deep_linear_widths(opts)
        closed = self._deep_linear(widths, opts, started) if widths is not None else None
        if closed is not None and closed.success:
            cert = closed
        elif self._use_regions(activation_region):
            self._check_region_size()
            self._convex = self._convex_regions if route == "auto" else None
            cert = self._solve_in_regions(points, opts, ws, started)
        else:
            dual = self._dual(opts, started, route, working_set is not None)
            if dual is not None and (dual.success or dual.status == Status.NOT_SEPARABLE or route in ("dual", "lp")):
                cert = dual
            else:
                # IPOPT gets what the dual route left of the time limit (none left: IPOPT stops at once, max_time)
                left = self._remaining(opts, started, least=NO_TIME_LEFT)
                attempts = [self._attempt(self.source, theta0, left, ws)
                            for theta0 in bar(points, desc="max_margin starts")]
                cert = preferred(self._best_certificate(attempts, opts, started, self._kept_starts(points)), dual)
        cert = with_margin_rows(cert, self.data)
        if opts.raise_on_failure and not cert.success:
            self._raise(cert)
        return cert

    def _dual(self, opts: SolveOptions, started, route: str, working_set_given: bool = False):
        """The certificate of the exact route for linear models, whatever its status (``_solve`` runs IPOPT unless it
        is ``optimal`` or that route was asked for): the dual route (l2 objective) or the LP route (l1 / linf,
        ``problems.lp``); None where neither applies or (unless route="dual") the dual route's rows are
        inconsistent: IPOPT's route and a Farkas proof decide."""
        if route not in ROUTES:
            raise ValueError(f"route must be one of {ROUTES}; got {route!r}")
        if route == "dual" and not dual_applies(self):
            raise ValueError("route='dual' needs a model linear in theta and the l2 objective")
        if route == "lp" and not lp_applies(self):
            raise ValueError("route='lp' needs a model linear in theta and a polyhedral objective (l1, linf)")
        # finish=False asks for IPOPT's own (unfinished) point, WorkingSetOptions configure IPOPT's working set:
        # IPOPT's route
        if route == "ipopt" or (route == "auto" and (not opts.finish or working_set_given)):
            return None
        if route in ("auto", "lp") and lp_applies(self):
            return lp_certificate(self, opts, started)
        if not dual_applies(self):
            return None
        return dual_certificate(self, opts, started, force=route == "dual")

    def _use_regions(self, requested) -> bool:
        if requested is not None:
            return bool(requested)
        return not self.source.linear and uses_piecewise_linear_activations(self.model)

    # -- deep linear nets: the global minimum from the linear max-margin solution --------------------------
    def _deep_linear_widths(self, opts: SolveOptions):
        """The hidden widths of a deep linear net (``margins.deep_linear_widths``) when the closed form applies:
        structure "auto", l2, no init and no requested starts; else None."""
        if getattr(self, "structure", "auto") != "auto" or self.norm.name != "l2" or opts.init is not None \
                or opts.starts is not None:
            return None
        return deep_linear_widths(self.model, self.source)

    def _deep_linear(self, widths, opts: SolveOptions, started) -> Certificate | None:
        """Deep linear net f = y w_L^T ... W_1 x = A beta(theta): ||theta||^2 >= L ||beta||^(2/L) (AM-GM), with
        equality at a balanced rank-one factorization, so the global minimum is the balanced factorization of
        the linear max-margin solution beta* (the convex QP min ||beta||^2 s.t. A beta >= 1 on the linear
        pipeline).  Its multipliers map exactly, mu = lambda s^(2 - 2L) with s = ||beta*||^(1/L).  Only a
        candidate: it is finished and certified on this problem's own NLP like an IPOPT point, and ``None`` (the
        general route runs) unless the linear solve is optimal."""
        d, L = self.model.input_dim, len(widths) + 1
        linear = Model("end_to_end_linear", [Block("beta", {"beta": (d,)}, degree=1)], input_dim=d,
                       output=lambda p, x: ops.dot(p["beta"], x), verify=False)
        inner = MaxMarginProblem(linear, self.data).solve(opts, raise_on_failure=False)
        if not inner.success or not np.any(inner.theta):
            return None
        s = float(np.linalg.norm(inner.theta)) ** (1.0 / L)
        theta = balanced_factorization(self.model, inner.theta, widths)
        nlp = margin_nlp(self.source, self.lift, np.arange(self.data.n_samples))
        z = self.lift.start(theta)
        multipliers = np.concatenate([inner.multipliers * s ** (2 - 2 * L), np.zeros(nlp.m - self.data.n_samples)])
        seconds = time.perf_counter() - started
        result = ipopt.IpoptResult(z, self.norm.objective_value(theta), multipliers, np.zeros(nlp.n), np.zeros(nlp.n),
                                   Status.OPTIMAL, CLOSED_FORM, 0, seconds)
        fin, report = finish_or_keep(nlp, result, opts)
        attempt = _Attempt(fin.z, fin.multipliers, fin.lower_multipliers, fin.upper_multipliers, Status.OPTIMAL,
                           CLOSED_FORM, 0, seconds, 1, np.arange(self.data.n_samples), fin.info, report)
        status = decide(report.kkt_met(opts.tolerances), Status.OPTIMAL)
        start = StartOutcome(status, float(self.norm.objective_value(self.lift.theta(fin.z))), report.residuals.max, 0)
        cert = self._certificate(self.source, attempt, report, status, opts, started, (start,))
        return replace(cert, solver=SolverInfo("closed_form", Status.OPTIMAL, CLOSED_FORM, 0,
                                               time.perf_counter() - started, DEEP_LINEAR_MESSAGE))

    # -- starts --------------------------------------------------------------------------------------
    def _initial_points(self, opts: SolveOptions):
        """``init``; else ``starts`` points: for ReLU nets a normalized-GD start first, then random ones.  By default
        (``starts=None``) a ReLU net whose GD start separates gets that start only: measured (two-layer, d = 5,
        width 8, teacher data, N = 100, two data seeds) the GD start's walk ended at the smallest objective of the
        five starts both times while the four random starts took 95 % of the 175-200 s; at N = 1000 the GD start
        alone walks in 6 s (docs/max_margin.md).  Other nonconvex models get DEFAULT_STARTS random starts."""
        if opts.init is not None:
            return [self._feasible_scaling(self.source, self._check_init(opts.init))]
        if self.source.convex:
            return [np.zeros(self.model.n_params)] * (opts.starts or 1)
        count = opts.starts if opts.starts is not None else DEFAULT_STARTS
        trained = self._gd_start(opts) if count > 1 else None
        if trained is not None and opts.starts is None:
            return [trained]
        rng = np.random.default_rng(opts.seed)
        points = [self._feasible_scaling(self.source, rng.standard_normal(self.model.n_params)) for _ in range(count)]
        return points if trained is None else [trained] + points[:count - 1]

    def _gd_start(self, opts: SolveOptions):
        """ReLU nets: a short normalized-GD run as the first start (``starts.gd_start``), continued until it
        separates (``starts.separating_gd``, its step budget) when it does not yet: at N = 10^4 its 2000 steps
        had not separated teacher data, and five random starts ran instead."""
        if not (self.model.degree and uses_piecewise_linear_activations(self.model)):
            return None
        theta = gd_start(self.model, self.data, seed=opts.seed)
        if theta is not None and np.min(self.source.values(theta)) <= 0:
            theta = separating_gd(self.model, self.data, theta)
        if theta is None or np.min(self.source.values(theta)) <= 0:
            return None
        return self._feasible_scaling(self.source, theta)

    def _check_init(self, init) -> np.ndarray:
        theta = np.asarray(init, dtype=float).reshape(-1)
        if theta.shape != (self.model.n_params,):
            raise ModelError(f"init must have {self.model.n_params} entries for model {self.model.name!r}; "
                             f"got {np.shape(init)}")
        if not np.all(np.isfinite(theta)):
            raise ModelError("init contains non-finite values")
        return theta

    def _feasible_scaling(self, source, theta):
        """For homogeneous models rescale a separating start so that min_n f_n = 1 (e.g. a trained theta
        of norm 1e15 becomes a well-scaled feasible start; positive scaling keeps activation regions)."""
        degree = self.model.degree
        if degree is None:
            return theta
        low = float(np.min(source.values(source.to_scaled(theta))))
        return theta / low ** (1.0 / degree) if low > 0 else theta

    # -- IPOPT ---------------------------------------------------------------------------------------
    def _ipopt_options(self, source, opts: SolveOptions) -> dict:
        options = opts.ipopt_options()
        if source.column_scale is not None and "ipopt.obj_scaling_factor" not in options:
            # theta_j ~ column_scale_j: scale the objective to O(1) there (IPOPT's own gradient-based
            # scaling stops at nlp_scaling_min_value = 1e-8)
            size = self.norm.objective_value(source.column_scale)
            options["ipopt.obj_scaling_factor"] = float(np.ldexp(1.0, -power_of_two_exponent(size)))
        if isinstance(source, RegionMargins) and "ipopt.mumps_pivot_order" not in options:
            # an activation region: N x units sign rows on few variables (docs/max_margin.md, "Measured: ReLU
            # nets"): METIS ordering; AMD, chosen before, went from 7 ms to 0.8 s per IPOPT iteration on some
            # regions of 1500 rows (MUMPS ran out of its estimated memory); QAMD (MUMPS's default) was 2x slower
            options["ipopt.mumps_pivot_order"] = 5
        if not source.convex and has_curvature_kinks(self.model) \
                and "ipopt.hessian_approximation" not in options:
            options["ipopt.hessian_approximation"] = "limited-memory"
        return options

    def _convex_qp(self, source) -> bool:
        return source.convex and (self.norm.polyhedral or self.norm.name == "l2")

    def _run_ipopt(self, source, nlp: NLP, index, z0, options) -> ipopt.IpoptResult:
        if self._convex_qp(source):
            return ipopt.solve_convex(nlp, z0, options=options)
        # parametric sources (activation regions) share one solver per family: the region is its parameters
        key = (getattr(source, "solver_key", id(source)), tuple(index.tolist()), tuple(sorted(options.items(), key=str)))
        if key not in self._solvers:
            if isinstance(source, InputAffineMargins) and source.n_link < self.model.n_params:
                solver = LiftedSolver(nlp, lifted_margin_nlp(source, self.lift, index), np.arange(nlp.m),
                                      lambda z, p: np.concatenate([z, source.link_values(self.lift.theta(z))]),
                                      options)
            else:
                solver = ipopt.IpoptSolver(nlp, options)
            self._solvers = {key: solver}   # keep one: starts share it
        return self._solvers[key].solve(z0, getattr(source, "parameter_values", None))

    # -- one start: working-set loop ---------------------------------------------------------------
    def _attempt(self, source, theta0, opts: SolveOptions, ws: WorkingSetOptions) -> _Attempt:
        """_solve_from; a start that fails with the limited-memory Hessian is solved again from scratch
        with the exact one, so a failed or infeasible verdict never rests on the approximation."""
        options = self._ipopt_options(source, opts)
        first = self._solve_from(source, theta0, opts, ws, options)
        approximated = options.get("ipopt.hessian_approximation") == "limited-memory" \
            and "ipopt.hessian_approximation" not in opts.ipopt_options()
        if first.solver_status in (Status.OPTIMAL, Status.INACCURATE) or not approximated:
            return first
        second = self._solve_from(source, theta0, opts, ws, {**options, "ipopt.hessian_approximation": "exact"})
        return _Attempt(**{**second.__dict__, "iterations": first.iterations + second.iterations,
                           "seconds": first.seconds + second.seconds})

    def _solve_from(self, source, theta0, opts: SolveOptions, ws: WorkingSetOptions, options) -> _Attempt:
        index, ws_on = self._initial_index(source, theta0, ws)
        z = self.lift.start(source.to_scaled(theta0))
        iterations, seconds, rounds = 0, 0.0, 0
        batch = ws.batch or max(20, self.model.n_params // 2)
        while True:
            rounds += 1
            nlp = margin_nlp(source, self.lift, index)
            result = self._run_ipopt(source, nlp, index, z, options)
            iterations, seconds = iterations + result.iterations, seconds + result.seconds
            fin, report = finish_or_keep(nlp, result, opts, want_report=not ws_on)
            z = fin.z
            if not result.converged:
                return self._attempt_on_all(index, fin, result, iterations, seconds, rounds, report)
            theta = self.lift.theta(z)
            violated = np.nonzero(source.values(theta) < 1.0 - VIOLATION_TOL)[0]
            if violated.size == 0 or not ws_on or rounds >= ws.max_rounds:
                return self._attempt_on_all(index, fin, result, iterations, seconds, rounds, report)
            order = np.argsort(source.values(theta, violated))
            index = np.union1d(index, violated[order[:batch]])
            log.info("max_margin working set: round %d left %d rows violated; %d rows next", rounds, violated.size,
                     index.size)

    def _attempt_on_all(self, index, fin, result, iterations, seconds, rounds, report) -> _Attempt:
        """Multipliers of the working-set NLP placed on the full NLP's rows (zero off the working set); the
        report is kept when the working set is every sample in order (it is then the full NLP's)."""
        N, k = self.data.n_samples, index.size
        full = np.zeros(N + fin.multipliers.size - k)
        full[index] = fin.multipliers[:k]
        full[N:] = fin.multipliers[k:]
        whole = k == N and np.array_equal(index, np.arange(N))
        log.info("max_margin start: IPOPT %s after %d iterations, %d working-set round(s)", result.return_status,
                 iterations, rounds)
        return _Attempt(fin.z, full, fin.lower_multipliers, fin.upper_multipliers, result.status,
                        result.return_status, iterations, seconds, rounds, index, fin.info, report if whole else None)

    def _initial_index(self, source, theta0, ws: WorkingSetOptions):
        n = self.data.n_samples
        use_ws = ws.enabled if ws.enabled is not None else n > ws.threshold
        if not use_ws:
            return np.arange(n), False
        size = min(n, ws.initial or max(100, 2 * self.model.n_params))
        if self._nnls_seeding_applies(source, ws, theta0):
            guess = source.A.mean(axis=0)
            candidates = np.argsort(source.values(guess))[:max(1000, 10 * size)]
            return np.sort(candidates[_nnls_seed(source.A[candidates], extra=max(10, size // 5))]), True
        guess = source.to_scaled(theta0) if np.any(theta0) else self._centroid_direction(source)
        return np.sort(np.argsort(source.values(guess))[:size]), True

    def _nnls_seeding_applies(self, source, ws, theta0) -> bool:
        if ws.seeding not in ("auto", "nnls", "margins"):
            raise ValueError(f"unknown working-set seeding {ws.seeding!r}; use 'auto', 'nnls' or 'margins'")
        applies = (source.linear and self.norm.name == "l2" and not np.any(source.c) and not np.any(theta0))
        if ws.seeding == "nnls" and not applies:
            raise ValueError("nnls seeding needs a model linear in theta with f(0) = 0, norm l2 and no init")
        return applies and ws.seeding != "margins"

    def _centroid_direction(self, source):
        return source.A.mean(axis=0) if source.linear else self.model.random_params(0)

    # -- certificates ---------------------------------------------------------------------------------
    def _certify(self, source, attempt: _Attempt, opts: SolveOptions, *, extra: bool = True):
        if extra and attempt.report is not None:
            return attempt.report
        nlp = margin_nlp(source, self.lift, np.arange(self.data.n_samples), extra=extra)
        return certify(nlp, attempt.z, attempt.multipliers, attempt.lower, attempt.upper, tolerances=opts.tolerances)

    def _certificate(self, source, attempt: _Attempt, report, status: Status, opts: SolveOptions, started,
                     starts=(), region=None, farkas=None) -> Certificate:
        # in the data's units theta (and the multipliers, and the objective) may overflow: ``representable`` says so
        with np.errstate(over="ignore"):
            return self._certificate_in_user_units(source, attempt, report, status, opts, started, starts, region,
                                                   farkas)

    def _certificate_in_user_units(self, source, attempt: _Attempt, report, status: Status, opts: SolveOptions,
                                   started, starts, region, farkas) -> Certificate:
        theta = source.to_user(self.lift.theta(attempt.z))
        margins = source.values(self.lift.theta(attempt.z))
        e, k = source.scale_exponent, self.norm.objective_degree
        status, overflow = representable(theta, status, e)
        diagnostics = MaxMarginDiagnostics(
            model=self.model.name, objective_label=self.norm.objective_label, linear_in_params=source.linear,
            scale_exponent=int(e), working_set_rounds=attempt.rounds, working_set_size=int(attempt.working_set.size),
            starts=tuple(starts), region=region, farkas=farkas)
        solver = SolverInfo(attempt.solver, attempt.solver_status, attempt.return_status,
                            sum(s.iterations for s in starts) or attempt.iterations, time.perf_counter() - started,
                            f"{SOLVER_NAMES.get(attempt.solver, attempt.solver)} {attempt.return_status} after "
                            f"{attempt.iterations} iterations in {attempt.rounds} working-set round(s) on "
                            f"{attempt.working_set.size} constraints{overflow}")
        constraints = "f_n(theta) >= 1"
        if region is not None and region.walk:
            constraints += " (solved within the activation region of the start: sign rows on pre-activations)"
        cert = assemble("max_margin", report, status=status, theta=theta, objective=self.norm.objective_value(theta),
                        norm=self.norm.label, margins=margins, normalized_margin=self._normalized_margin(theta, margins),
                        n_samples=self.data.n_samples, solver=solver, finish=attempt.finish,
                        tolerances=opts.tolerances, constraints=constraints, diagnostics=diagnostics)
        if e:
            cert = replace(cert, multipliers=np.ldexp(cert.multipliers, int(-round(k * e))) if float(k).is_integer()
                           else cert.multipliers * 2.0 ** (-k * e))
        return cert

    def _normalized_margin(self, theta, margins):
        degree, size = self.model.degree, self.norm.value(theta)
        if degree is None or size == 0:
            return None
        return float(np.min(margins)) / size ** degree

    def _kept_starts(self, points) -> list[_Attempt]:
        """Nonconvex models: every separating start (scaled to min f = 1) as an outcome of its own, so that a solver
        that wanders off a separating start (IPOPT on a nonsmooth net) never turns it into a failure."""
        if self.source.convex:
            return []
        return [self._attempt_at(self.source, theta0) for theta0 in points
                if np.min(self.source.values(self.source.to_scaled(theta0))) >= 1.0 - VIOLATION_TOL]

    def _best_certificate(self, attempts, opts: SolveOptions, started, kept=()) -> Certificate:
        """The best of the solver's attempts and the kept starts (``_kept_starts``) by ``_rank``; the diagnostics'
        starts list the solver's attempts."""
        judged = [(attempt, *self._judge(attempt, opts)) for attempt in attempts]
        starts = [StartOutcome(s, float(self.norm.objective_value(self.source.to_user(self.lift.theta(a.z)))),
                               r.residuals.max, a.iterations) for a, r, s, _ in judged]
        attempt, report, status, region = min(judged + [(a, *self._judge(a, opts)) for a in kept],
                                              key=lambda j: _rank(j[2], j[1], self.norm.objective_value(
                                                  self.source.to_user(self.lift.theta(j[0].z)))))
        farkas = None
        if not status.success:
            status, farkas = self._infeasibility_status(status, [j[2] for j in judged])
        return self._certificate(self.source, attempt, report, status, opts, started, starts, region=region,
                                 farkas=farkas)

    def _judge(self, attempt: _Attempt, opts: SolveOptions):
        """(report, status, region diagnostics or None) of an attempt on the model's own problem.  For nets with
        ReLU-type activations the Clarke check at the point decides (``_judge_at_point``): the solver's derivative
        at a kink is one convention (and through stacked kinks not even a Clarke element), not a certificate."""
        if self._use_regions(None):
            outcome = self._judge_at_point(attempt, opts)
            return outcome.report, outcome.status, outcome.diagnostics
        report = self._certify(self.source, attempt, opts)
        return report, decide(report.kkt_met(opts.tolerances), attempt.solver_status), None

    def _judge_at_point(self, attempt: _Attempt, opts: SolveOptions) -> _RegionOutcome:
        """``_judge_region`` in the activation region of the attempt's own point, its multipliers extended by zero
        sign-row multipliers (the point solved the unrestricted problem: no sign row was imposed)."""
        region = RegionMargins(self.model, self.data, self.lift.theta(attempt.z), family=self._region_family)
        extended = np.concatenate([attempt.multipliers, np.zeros(region.n_extra)])
        return self._judge_region(region, replace(attempt, multipliers=extended, report=None), opts, ())

    def _infeasibility_status(self, status: Status, statuses):
        """A proof for linear models (Farkas), a distinct status for nonconvex ones."""
        if self.source.linear and status in (Status.INFEASIBLE, Status.FAILED, Status.INACCURATE):
            proof = self._farkas()
            if proof is not None:
                return Status.NOT_SEPARABLE, proof
            return status, None
        if not self.source.convex and all(s == Status.INFEASIBLE for s in statuses):
            return Status.NO_SEPARATING_POINT, None
        return status, None

    def _farkas(self):
        """The Farkas proof of the linear rows (``separability.farkas_proof`` of ``_farkas_rows``), or None: one LP
        per problem (the dual route asks when its rows look inconsistent, the verdict after IPOPT on the same rows;
        the rows are the problem's data, fixed at construction)."""
        if "_farkas_proof" not in self.__dict__:
            self._farkas_proof = farkas_proof(*self._farkas_rows())
        return self._farkas_proof

    def _farkas_rows(self):
        """(A, c) of the rows A theta + c >= 1 a Farkas proof is about: the margins."""
        return self.source.A, self.source.c

    # -- activation regions ---------------------------------------------------------------------------
    def _solve_in_regions(self, points, opts: SolveOptions, ws, started) -> Certificate:
        """Each start: a separating anchor, then a walk across activation regions (``_walk``); the outcome with
        the largest normalized margin (smallest objective at min f = 1) wins, certified ones first among ties."""
        walks: list[list[_RegionOutcome]] = []
        for theta0 in bar(points, desc="max_margin starts"):
            if walks and self._out_of_time(opts, started):
                log.info("max_margin: time limit reached; %d of %d starts walked", len(walks), len(points))
                break
            walks.append(self._walk(self._region_anchor(theta0, opts), opts, ws, started))
        outcomes = [_region_rank_best(walk) for walk in walks]
        starts = [StartOutcome(o.status, o.objective, o.report.residuals.max, sum(w.attempt.iterations for w in walk))
                  for o, walk in zip(outcomes, walks)]
        best = _region_rank_best(outcomes)
        status = best.status
        if not status.success and all(o.status == Status.INFEASIBLE for o in outcomes):
            status = Status.NO_SEPARATING_POINT
        if not status.success and self._out_of_time(opts, started):
            # the walk was cut by the time limit: its best point is reported, as not certified for lack of time
            status = Status.MAX_TIME
        return self._certificate(best.region, best.attempt, best.report, status, opts, started, starts,
                                 region=best.diagnostics)

    def _walk(self, anchor, opts: SolveOptions, ws, started) -> list[_RegionOutcome]:
        """Solve in the region of ``anchor``; while the point is a KKT point of its region but not Clarke-KKT
        (``region_boundary``), enter the adjacent region its binding sign rows point to (flip those units) and
        solve again from the point (feasible there: the flipped pre-activations are 0).  The objective cannot
        increase along the walk; it stops at a certified point, a failure, a region seen before, WALK_MAX_STEPS
        or the time limit.  The start itself (rescaled to min f = 1) is kept as an outcome, so the result is never
        below the start's normalized margin.  Returns the outcome of every region on the walk and the start's."""
        region = RegionMargins(self.model, self.data, anchor, family=self._region_family)
        theta = self._feasible_scaling(region, anchor)
        start = self._judge_region(region, self._attempt_at(region, theta), opts, ())
        outcomes, steps, seen = [], [], {region.key()}
        while not self._out_of_time(opts, started):    # the start is kept even when no region could be solved
            cap = REGION_MAX_ITER if not steps else WALK_STEP_MAX_ITER
            region_opts = SolveOptions.resolve(opts, max_iter=min(opts.max_iter, cap),
                                               time_limit=self._time_left(opts, started))
            outcome = self._judge_region(region, self._region_attempt(region, theta, region_opts, ws,
                                                                      fallbacks=not steps), opts, tuple(steps))
            flips = outcome.binding_signs
            steps.append(WalkStep(outcome.status, outcome.objective, int(flips.size)))
            outcomes.append(outcome)
            log.info("max_margin region %d of the walk: %s, objective %.6g, %d binding sign rows", len(steps),
                     outcome.status, outcome.objective, flips.size)
            if outcome.status != Status.REGION_BOUNDARY or not flips.size or len(steps) >= self._walk_max_steps \
                    or self._out_of_time(opts, started):
                break
            theta = self.lift.theta(outcome.attempt.z)
            region = RegionMargins(self.model, self.data, theta, patterns=region.flipped(flips),
                                   family=self._region_family)
            if region.key() in seen:
                break
            seen.add(region.key())
        walk = tuple(steps)
        outcomes = [o.with_walk(walk) for o in outcomes]
        solved = [o.objective for o in outcomes if o.feasible]
        if start.feasible and (not solved or start.objective < min(solved) * (1 - TIE)) or not outcomes:
            outcomes.append(start.with_walk(walk))
        return outcomes

    def _region_attempt(self, region, theta, opts: SolveOptions, ws: WorkingSetOptions,
                        fallbacks: bool = True) -> _Attempt:
        """_attempt, with fallbacks when it stops without converging: a working-set solve is solved again on all
        margin rows (a round on few margin rows can leave IPOPT far out on a region's degenerate directions,
        v_j -> 0, a_j -> inf), then IPOPT's adaptive barrier update is tried (the monotone one diverged on some data
        scales where the adaptive one converges; a region's problem is not scale-invariant for IPOPT).  Whether the
        sign rows get a working set is decided once (``_sign_working_set``) and kept by the fallbacks: all 8000
        sign rows of N = 1000, width 8 made a fallback run 50 s where the set's solve took 6 s.  Without
        ``fallbacks`` (the walk's later regions, WALK_STEP_MAX_ITER) the first attempt is the result."""
        convex = self._convex_attempt(region, theta, opts)
        if convex is not None:
            if convex.report is None or convex.report.kkt_met(opts.tolerances) \
                    or region.whole.n_extra > CONVEX_FALLBACK_MAX_SIGN_ROWS:
                return convex
            # the SOCP's point finished short of the tolerance (degenerate regions): IPOPT from there
            theta = self.lift.theta(convex.z)
        started = time.perf_counter()    # opts.time_limit bounds the attempt and its fallbacks together
        sign_set = self._sign_working_set(region.whole, ws)
        attempt = self._attempt_in_region(region, theta, opts, ws, sign_set)
        if self._converged(attempt) or self._out_of_time(opts, started) or not fallbacks:
            return attempt
        if attempt.working_set.size < self.data.n_samples:
            ws = WorkingSetOptions(enabled=False)
            attempt = self._attempt_in_region(region, theta, self._remaining(opts, started), ws, sign_set)
        if self._converged(attempt) or "ipopt.mu_strategy" in opts.ipopt_options() or self._out_of_time(opts, started):
            return attempt
        retry = self._attempt_in_region(region, theta, SolveOptions.resolve(
            self._remaining(opts, started), ipopt={**opts.ipopt, "mu_strategy": "adaptive"}), ws, sign_set)
        return retry if self._converged(retry) else attempt

    _convex: TwoLayerRegions | None = None      # set per solve (route "auto"): the regions' convex form

    @property
    def _walk_max_steps(self) -> int:
        return WALK_MAX_STEPS if self._convex is None else WALK_MAX_STEPS_CONVEX

    @cached_property
    def _convex_regions(self) -> TwoLayerRegions | None:
        """The convex form of the regions (``relu_convex``) for bias-free two-layer ReLU nets under the l2
        objective; None for other models and norms."""
        return TwoLayerRegions.of(self.model, self.data) if type(self.norm) is L2 else None

    def _convex_attempt(self, region, theta, opts: SolveOptions) -> _Attempt | None:
        """The region's optimum over theta's output signs by its SOCP (``relu_convex``), as an attempt whose
        multipliers are fitted on the region's NLP and finished (judged like any other); None where the convex
        form does not apply or its solver gave no point (IPOPT then solves the region)."""
        convex = self._convex
        if convex is None or not convex.applies_to(region.whole):
            return None
        solved = convex.solve(region.whole, convex.output_signs(theta), theta, opts.time_limit)
        log.info("max_margin region (convex form): %s in %d iterations, %.3g s", solved.return_status,
                 solved.iterations, solved.seconds)
        if solved.status not in (Status.OPTIMAL, Status.INACCURATE):
            if region.whole.n_extra <= CONVEX_FALLBACK_MAX_SIGN_ROWS:
                return None
            # too large for IPOPT's region solve (N = 10^4, width 8: over 35 s): the walk's point is the outcome
            return replace(self._attempt_at(region.whole, theta), return_status=solved.return_status,
                           iterations=solved.iterations, seconds=solved.seconds, solver="clarabel")
        # the multipliers fitted on the region's NLP at the SOCP's point, then the exact finish (nlp.finish), as
        # for IPOPT's points: the interior-point solution is accurate to its tolerance, the finish to rounding
        N = self.data.n_samples
        nlp = margin_nlp(region.whole, self.lift, np.arange(N))
        z = self.lift.start(solved.theta)
        rows, lower, upper = split_extended_multipliers(nlp, fit_multipliers(nlp, z))
        result = ipopt.IpoptResult(z, self.lift.objective_value(z),
                                   rows, lower, upper, solved.status, solved.return_status, solved.iterations,
                                   solved.seconds, solver="clarabel")
        fin, report = finish_or_keep(nlp, result, opts)
        return _Attempt(fin.z, fin.multipliers, fin.lower_multipliers, fin.upper_multipliers, solved.status,
                        solved.return_status, solved.iterations, solved.seconds, 1, np.arange(N), fin.info, report,
                        solver="clarabel")

    @staticmethod
    def _sign_working_set(whole, ws: WorkingSetOptions) -> bool:
        """A working set of sign rows: ``ws.enabled`` when set, else automatic above ``ws.threshold`` and
        ``SIGN_ROWS_MIN_SET`` rows."""
        return ws.enabled if ws.enabled is not None else whole.n_extra > max(ws.threshold, SIGN_ROWS_MIN_SET)

    def _attempt_in_region(self, region, theta, opts: SolveOptions, ws: WorkingSetOptions,
                           sign_set: bool) -> _Attempt:
        """_attempt on the region, with a working set of its sign rows when ``sign_set`` (as for margin rows).  A
        region of N samples and U units has N U sign rows on few parameters; IPOPT's factorizations cost grows with
        them while only the rows near their kink can bind.  The set starts with those (``SIGN_ROWS_NEAR``); after
        each solve the violated rows (f < -VIOLATION_TOL relative to their level) join, the most violated first, from
        the point reached.  The attempt's multipliers are placed on all of the region's rows (zero off the set)."""
        whole = region.whole
        if not sign_set:
            return self._attempt(whole, theta, opts, ws)
        started = time.perf_counter()    # the rounds share opts.time_limit; none starts past it
        rows = np.nonzero(whole.unit_relative_slacks(theta) <= SIGN_ROWS_NEAR)[0]
        batch = ws.batch or max(50, self.model.n_params)
        for _ in range(ws.max_rounds):
            attempt = self._attempt(whole.with_sign_rows(rows), theta, self._remaining(opts, started), ws)
            if attempt.solver_status not in (Status.OPTIMAL, Status.INACCURATE):    # more rows cannot mend it
                break
            theta = self.lift.theta(attempt.z)
            slack = whole.extra_values(theta) / whole.extra_levels(theta)
            violated = np.setdiff1d(np.nonzero(slack < -VIOLATION_TOL)[0], rows)
            if not violated.size or self._out_of_time(opts, started):   # violated rows left: judged on the whole
                break
            log.info("max_margin region: %d sign rows violated off the working set of %d", violated.size, rows.size)
            rows = np.union1d(rows, violated[np.argsort(slack[violated])[:batch]])
        return self._on_all_sign_rows(whole, rows, attempt)

    def _on_all_sign_rows(self, region, rows, attempt: _Attempt) -> _Attempt:
        """An attempt on ``region.with_sign_rows(rows)`` as one on the whole region (zero multipliers off rows)."""
        head = attempt.multipliers.size - rows.size
        full = np.zeros(head + region.n_extra)
        full[:head] = attempt.multipliers[:head]
        full[head + rows] = attempt.multipliers[head:]
        return replace(attempt, multipliers=full, report=None)

    @staticmethod
    def _converged(attempt: _Attempt) -> bool:
        return attempt.solver_status in (Status.OPTIMAL, Status.INACCURATE, Status.INFEASIBLE)

    @cached_property
    def _region_family(self) -> RegionFamily:
        """The model traced once with symbolic unit slopes: every region of a solve is a view of it."""
        return RegionFamily(self.model, self.data)

    @staticmethod
    def _out_of_time(opts: SolveOptions, started) -> bool:
        return opts.time_limit is not None and time.perf_counter() - started > opts.time_limit

    @staticmethod
    def _remaining(opts: SolveOptions, started, least: float = 0.1) -> SolveOptions:
        """opts with the time limit reduced by what has passed since ``started`` (at least ``least``)."""
        if opts.time_limit is None:
            return opts
        return SolveOptions.resolve(opts, time_limit=MaxMarginProblem._time_left(opts, started, least))

    @staticmethod
    def _time_left(opts: SolveOptions, started, least: float = 0.1):
        """What is left of the time limit (IPOPT's wall-time limit of the next solve; at least ``least``)."""
        if opts.time_limit is None:
            return None
        return max(opts.time_limit - (time.perf_counter() - started), least)

    def _check_region_size(self):
        """ModelError when the region route's dense arrays would exceed REGION_DENSE_BYTES (see there)."""
        from ..modeling.regions import activation_pattern

        P, N = self.model.n_params, self.data.n_samples
        U = sum(p.size for p in activation_pattern(self.model, np.ones(P), self.data.X[0], self.data.y[0]))
        jacobian, hessian = 8 * N * U * P, 8 * P * P
        if max(jacobian, hessian) > REGION_DENSE_BYTES:
            raise ModelError(
                f"max_margin({self.model.name}): the activation-region solve is too large here: {N} samples x {U} "
                f"units x {P} parameters need a {jacobian / 2**30:.3g} GiB sign-row Jacobian and {hessian / 2**30:.3g} "
                f"GiB Hessians (limit {REGION_DENSE_BYTES / 2**30:.3g} GiB); use lexmargin.report.stationarity_report "
                "at this size, or a smaller net or data set")

    def _attempt_at(self, region, theta) -> _Attempt:
        """The start as an attempt (no solve): judged like a solution, kept when nothing better is found."""
        nlp = margin_nlp(region, self.lift, np.arange(self.data.n_samples))
        z = self.lift.start(theta)
        rows, lower, upper = split_extended_multipliers(nlp, fit_multipliers(nlp, z))
        return _Attempt(z, rows, lower, upper, Status.INACCURATE, START_KEPT, 0, 0.0, 0,
                        np.arange(self.data.n_samples))

    def _judge_region(self, region, attempt: _Attempt, opts: SolveOptions, walk) -> _RegionOutcome:
        """Certify the original problem at the solution by the Clarke check (``nlp.clarke``: every realizable
        pattern of the kinked units of active samples); ``optimal`` only when it holds.  The region-restricted
        certificate tells a boundary point (``region_boundary``) from a failure."""
        tol = opts.tolerances
        restricted = self._certify(region, attempt, opts)
        theta = self.lift.theta(attempt.z)
        margins = region.values(theta)
        nlp = margin_nlp(region, self.lift, np.arange(self.data.n_samples), extra=False)
        check = clarke_check(nlp, attempt.z, self._kinked_rows(region, theta, margins, tol), tolerances=tol)
        if check.holds(tol):
            status = Status.OPTIMAL
        elif restricted.kkt_met(tol):
            status = Status.REGION_BOUNDARY
        else:
            status = decide(False, attempt.solver_status)
        ext = restricted.extended
        signs = ext.kind_mask(region.extra_kind)
        scale, weights = restricted.balance()
        binding = np.nonzero(signs & restricted.support)[0] - int(np.argmax(signs)) if signs.any() else np.zeros(0, int)
        diag = RegionDiagnostics(region.summary.n_units, region.summary.n_active_units, region.summary.n_sign_constraints,
                                 int(np.sum(restricted.active & signs)),
                                 float(np.max(weights[signs], initial=0.0)) / scale, restricted.residuals,
                                 clarke=check.summary(), walk=tuple(walk))
        return _RegionOutcome(region, attempt, check.report, status, diag, binding,
                              float(self.norm.objective_value(theta)), bool(np.min(margins) >= 1.0 - tol.active))

    def _kinked_rows(self, region, theta, margins, tol) -> dict:
        """The Clarke columns (in z) of the margin rows of active samples (``margins``: f at theta) with units at
        a kink."""
        rows = {}
        for n, units in region.kinks(theta, tol.active).items():
            if margins[n] - 1.0 > tol.active:
                continue
            v = region.vertices(theta, n, units, tol.active)
            columns = self.lift.pull_back(v.gradients) if v.gradients.shape[0] else np.zeros((0, self.lift.n))
            rows[n] = KinkedRow(n, v.units, v.slopes, columns, v.complete)
        return rows

    def _region_anchor(self, theta0, opts: SolveOptions):
        """A point whose activation region is worth solving in: theta0 if it separates the data, else the end
        point of a short normalized-GD run from theta0 (the numeric module; seconds, not minutes of IPOPT)."""
        if np.min(self.source.values(theta0)) > 0:
            return theta0
        theta = separating_gd(self.model, self.data, theta0)
        return theta if theta is not None else theta0

    # -- failures -------------------------------------------------------------------------------------
    def _raise(self, cert: Certificate):
        name = self.model.name
        if cert.status == Status.NOT_SEPARABLE:
            proof = cert.diagnostics.farkas
            raise NotSeparableError(
                f"max_margin({name}): the data is not separable by this model (Farkas certificate: weights y >= 0 "
                f"with A^T y = 0 to relative {proof.relative_residual:.1e}; see certificate.diagnostics.farkas)",
                certificate=cert)
        if cert.status == Status.NO_SEPARATING_POINT:
            raise NoSeparatingPointError(
                f"max_margin({name}): no separating point found from {len(cert.diagnostics.starts)} start(s) "
                "(IPOPT found f_n(theta) >= 1 locally infeasible from each); for a nonconvex model this is not a "
                "proof that the data is not separable", status=cert.status.value, certificate=cert)
        raise SolverError(f"max_margin({name}) ended {cert.status.value}: {cert.summary()}",
                          status=cert.status.value, certificate=cert)


_STATUS_ORDER = {Status.OPTIMAL: 0, Status.REGION_BOUNDARY: 1, Status.INACCURATE: 2}
# decisive kinds of certificates, best first (``preferred``): a solution, a proof that there is none; the others
# are compared by their residuals
_DECISIVE_ORDER = {Status.OPTIMAL: 0, Status.NOT_SEPARABLE: 1}
DECISIVE = len(_DECISIVE_ORDER)


def preferred(general: Certificate, fallback: Certificate | None) -> Certificate:
    """The general route's certificate, or ``fallback`` (the dual route's, not ``optimal``) where that is better: of a
    decisive kind the other is not (``optimal``, then ``not_separable`` with its proof), or, neither being decisive,
    with the smaller largest residual (``kkt.max``; NaN counts as infinite, ties keep the general route's).  E.g. the
    dual route's point within 1e-6 of every row (``inaccurate``, with its numbers) where IPOPT stopped ``infeasible``
    with a residual of 1 on separable data (multi-class data with a sample at 1e-9 of the others' size); but not a
    dual point off by 1e5 over IPOPT's point at its time limit."""
    if fallback is None:
        return general
    if _kind(fallback.status) < DECISIVE or _kind(general.status) < DECISIVE:
        return fallback if _kind(fallback.status) < _kind(general.status) else general
    return fallback if _largest_residual(fallback) < _largest_residual(general) else general


def _kind(status: Status) -> int:
    return _DECISIVE_ORDER.get(status, DECISIVE)


def _largest_residual(cert: Certificate) -> float:
    value = float(cert.kkt.max)
    return value if np.isfinite(value) else float("inf")


def _rank(status: Status, report, objective: float):
    return (_STATUS_ORDER.get(status, 3), objective if status in _STATUS_ORDER else report.residuals.max)


def _status_rank(status: Status, report):
    """_rank without the objective (outcomes whose objectives count as equal)."""
    return (_STATUS_ORDER.get(status, 3), 0.0 if status in _STATUS_ORDER else report.residuals.max)


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


def max_margin(model: Model, data, norm="l2", *, p: float | None = None, options: SolveOptions | None = None,
               working_set: WorkingSetOptions | None = None, activation_region: bool | None = None,
               structure: str = "auto", route: str = "auto", **overrides) -> Certificate:
    """Solve min ||theta|| s.t. f_n(theta) >= 1 and return a Certificate (see MaxMarginProblem.solve).

    Args:
        model: a lexmargin Model.
        data: a Dataset, or (X, y).
        norm: "l2", "l1", "linf", "lp" (with p), "path" (two-layer nets: sum_j a_j^2 ||v_j||^2), or a Norm.
        p: the exponent of "lp".
        options: SolveOptions; keyword overrides of its fields (tol, max_iter, starts, seed, init, ...).
        working_set: WorkingSetOptions for large N (default: chosen by size).
        activation_region: solve ReLU nets region by region (default: when the model has relu/leaky_relu).
        structure: "auto" (default): models affine in their input are evaluated through beta(theta), and a deep
            linear net (l2, no init, no starts) gets the balanced factorization of the linear max-margin solution
            (its global minimum), certified; "general": the model's own CasADi functions and random starts.
        route: "auto", "ipopt", "dual" or "lp" (see MaxMarginProblem.solve).
        **overrides: SolveOptions fields.

    Returns:
        The Certificate: theta, multipliers, support, relative KKT residuals, LICQ, second order and a
        status that is ``optimal`` only when the residuals say so (a non-optimal status raises unless
        ``raise_on_failure=False``).
    """
    return MaxMarginProblem(model, data, norm, p, structure=structure).solve(options, working_set=working_set,
                                                        activation_region=activation_region, route=route,
                                                        **overrides)


__all__ = ["MaxMarginDiagnostics", "MaxMarginProblem", "RegionDiagnostics", "StartOutcome", "WorkingSetOptions",
           "margin_nlp", "max_margin"]
