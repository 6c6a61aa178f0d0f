"""The decisions of max_margin for ReLU-type nets that do not need a solve: which outcome of a walk is reported,
the multipliers of a sign-row working set placed on the whole region, which starts are kept, which samples are
kinked.  Fast (no IPOPT): mutmut runs them for every mutant of these functions."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from verify_helpers import kinked_point as two_layer_kinked_point

import lexmargin as lm
from lexmargin.modeling.regions import RegionMargins
from lexmargin.nlp.options import SolveOptions, Tolerances
from lexmargin.nlp.status import Status
from lexmargin.problems import maxmargin as M


# ---- which outcome is reported ---------------------------------------------------------------------------
def outcome(objective, status, feasible=True, residual=0.0):
    return SimpleNamespace(objective=objective, status=status, feasible=feasible,
                           report=SimpleNamespace(residuals=SimpleNamespace(max=residual)))


def test_the_smallest_objective_among_feasible_points_wins():
    """Feasible points (min f >= 1) only: the smallest objective (largest normalized margin) wins whatever the
    statuses, except that a certified point within TIE of it is preferred; an infeasible point never beats a
    feasible one, however small its objective."""
    low = outcome(1.0, Status.REGION_BOUNDARY)
    certified_far = outcome(1.0 + 10 * M.TIE, Status.OPTIMAL)
    assert M._region_rank_best([certified_far, low]) is low
    certified_near = outcome(1.0 + 0.1 * M.TIE, Status.OPTIMAL)
    assert M._region_rank_best([low, certified_near]) is certified_near
    infeasible = outcome(0.5, Status.OPTIMAL, feasible=False)
    assert M._region_rank_best([infeasible, low, certified_far]) is low
    assert M._region_rank_best([outcome(2.0, Status.INACCURATE), low]) is low
    # a tie is relative to the objective's size
    big = outcome(1e6, Status.REGION_BOUNDARY)
    assert M._region_rank_best([big, outcome(1e6 * (1 + 0.1 * M.TIE), Status.OPTIMAL)]).status == Status.OPTIMAL
    assert M._region_rank_best([big, outcome(1e6 * (1 + 10 * M.TIE), Status.OPTIMAL)]) is big
    # among equal objectives: certified, then region boundary, then inaccurate
    same = [outcome(3.0, s) for s in (Status.INACCURATE, Status.REGION_BOUNDARY, Status.OPTIMAL)]
    assert M._region_rank_best(same).status == Status.OPTIMAL
    assert M._region_rank_best(same[:2]).status == Status.REGION_BOUNDARY
    # objectives within TIE are equal: the first of the best status wins, not the last digits
    first, second = outcome(5.0 * (1 + 0.5 * M.TIE), Status.OPTIMAL), outcome(5.0, Status.OPTIMAL)
    assert M._region_rank_best([first, second]) is first and M._region_rank_best([second, first]) is second
    assert M._region_rank_best([outcome(5.0, Status.REGION_BOUNDARY), first, second]) is first


def test_without_a_feasible_point_the_best_status_then_the_smallest_residual_wins():
    failed = [outcome(1.0, Status.INFEASIBLE, False, residual=0.3), outcome(0.1, Status.FAILED, False, residual=0.2),
              outcome(5.0, Status.INFEASIBLE, False, residual=0.01)]
    assert M._region_rank_best(failed) is failed[2]
    inaccurate = outcome(9.0, Status.INACCURATE, False, residual=1.0)
    assert M._region_rank_best(failed + [inaccurate]) is inaccurate
    # two infeasible inaccurate points: the smaller objective; feasible ones that failed: the smaller residual
    other = outcome(4.0, Status.INACCURATE, False, residual=2.0)
    assert M._region_rank_best([inaccurate, other]) is other
    gave_up = [outcome(1.0, Status.MAX_ITERATIONS, residual=0.3), outcome(1.0, Status.FAILED, residual=0.1)]
    assert M._region_rank_best(gave_up) is gave_up[1]


# ---- a sign-row working set's multipliers on the whole region -------------------------------------------
def test_working_set_multipliers_are_placed_on_their_rows_and_zero_elsewhere():
    """The view's rows are (margin rows, then its sign rows in increasing order): the margin multipliers stay,
    each sign multiplier goes to its row of the whole region, every other sign row gets 0; the view's report
    (of fewer rows) is dropped."""
    region = SimpleNamespace(n_extra=7)
    rows = np.array([1, 4, 6])
    head = np.array([0.5, 0.0, 2.0])
    attempt = M._Attempt(np.zeros(2), np.concatenate([head, [3.0, 0.0, 7.0]]), np.zeros(2), np.zeros(2),
                         Status.OPTIMAL, "Solve_Succeeded", 5, 0.1, 2, np.arange(3), report=object())
    out = M.MaxMarginProblem._on_all_sign_rows(None, region, rows, attempt)
    np.testing.assert_array_equal(out.multipliers, [0.5, 0.0, 2.0, 0.0, 3.0, 0.0, 0.0, 0.0, 0.0, 7.0])
    assert out.report is None and out.z is attempt.z and out.rounds == 2
    none = M.MaxMarginProblem._on_all_sign_rows(None, region, np.zeros(0, int), replace(attempt, multipliers=head))
    np.testing.assert_array_equal(none.multipliers, np.concatenate([head, np.zeros(7)]))


# ---- which starts are kept as outcomes -------------------------------------------------------------------
DEEP = lm.load_model("deep_linear", input_dim=2, depth=2, width=2)
X4 = np.array([[1.0, 0.2], [0.3, 1.0], [-1.0, -0.4], [-0.2, -1.1]])
Y4 = np.array([1.0, 1.0, -1.0, -1.0])


def test_only_separating_starts_are_kept():
    """A nonconvex problem keeps each start with min f >= 1 (up to VIOLATION_TOL) as an outcome of its own, at
    the start itself; a start that violates a margin by 1e-6, or does not separate, is not kept; a convex problem
    keeps none (its solve does not depend on the start)."""
    problem = M.MaxMarginProblem(DEEP, lm.Dataset(X4, Y4))
    rng = np.random.default_rng(2)
    while True:
        theta = rng.standard_normal(DEEP.n_params)
        low = float(np.min(problem.source.values(theta)))
        if low > 0:
            break
    exact = theta / np.sqrt(low)                                   # degree 2: min f = 1
    short = exact * np.sqrt(1.0 - 1e-6)                             # min f = 1 - 1e-6
    assert np.min(problem.source.values(exact)) == pytest.approx(1.0, abs=1e-13)
    kept = problem._kept_starts([short, exact, np.zeros(DEEP.n_params), 0.5 * exact, 3 * exact])
    assert len(kept) == 2
    np.testing.assert_allclose(problem.lift.theta(kept[0].z), exact, rtol=1e-15)
    np.testing.assert_allclose(problem.lift.theta(kept[1].z), 3 * exact, rtol=1e-15)
    for attempt in kept:
        assert attempt.solver_status != Status.OPTIMAL and attempt.iterations == 0
        assert attempt.multipliers.size == 4 and np.all(attempt.multipliers >= 0)
    linear = M.MaxMarginProblem(lm.load_model("linear", input_dim=2), lm.Dataset(X4, Y4))
    assert linear._kept_starts([np.array([5.0, 5.0])]) == []


def test_a_kept_start_at_a_kkt_point_is_certified_and_elsewhere_not():
    """A kept start is judged like a solution: its multipliers are fitted, so a start that happens to be a KKT
    point is certified optimal, and a feasible point that is not one is reported with its stationarity residual."""
    problem = M.MaxMarginProblem(DEEP, lm.Dataset(X4, Y4))
    solved = lm.max_margin(DEEP, lm.Dataset(X4, Y4))
    assert solved.status == Status.OPTIMAL
    opts = SolveOptions.resolve(None)
    at_optimum, = problem._kept_starts([solved.theta])
    report, status, region = problem._judge(at_optimum, opts)
    assert status == Status.OPTIMAL and report.kkt_met(opts.tolerances) and region is None
    away, = problem._kept_starts([solved.theta * 1.5])
    report, status, _ = problem._judge(away, opts)
    assert status == Status.INACCURATE and report.residuals.stationarity > 1e-3 and report.residuals.primal_feasibility <= 1e-12


# ---- which margin rows are kinked (the Clarke columns) ------------------------------------------------------
def kinked_point(seed, width=3, d=3, n=5):
    """verify_helpers.kinked_point as (theta, data)."""
    V, a, data = two_layer_kinked_point(seed, width, d, n)
    return np.concatenate([V.ravel(), a]), data


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_kinked_rows_are_the_active_samples_with_a_kink(norm):
    """Clarke columns for exactly the samples that are active (f - 1 <= tol.active) and have a unit at a kink:
    the gradients of every realizable pattern, in the lifted variables z (linf: (theta, t), t's column 0)."""
    net = lm.load_model("two_layer", input_dim=3, activation="relu", width=3)
    theta, data = kinked_point(5)
    problem = M.MaxMarginProblem(net, data, norm)
    region = RegionMargins(net, data, theta)
    tol = Tolerances()
    margins = region.values(theta)
    np.testing.assert_allclose(margins, 1.0, rtol=1e-12)
    kinks = region.kinks(theta, tol.active)
    assert 0 in kinks
    rows = problem._kinked_rows(region, theta, margins, tol)
    assert set(rows) == set(kinks)
    entry = rows[0]
    v = region.vertices(theta, 0, kinks[0], tol.active)
    assert entry.row == 0 and entry.units == v.units and entry.complete
    np.testing.assert_array_equal(entry.slopes, v.slopes)
    P = net.n_params
    assert entry.columns.shape == (v.gradients.shape[0], problem.lift.n) and v.gradients.shape[0] == 2
    np.testing.assert_allclose(entry.columns[:, :P], v.gradients, rtol=1e-15)
    np.testing.assert_array_equal(entry.columns[:, P:], 0.0)
    for gap, kept in ((2.0, False), (0.5, True)):
        shifted = margins.copy()
        shifted[0] = 1.0 + gap * tol.active
        assert (0 in problem._kinked_rows(region, theta, shifted, tol)) is kept


# ---- how a point is judged -----------------------------------------------------------------------------------
def test_a_point_is_judged_by_its_own_residuals_and_the_solvers_reason_to_stop():
    """Smooth nonconvex model: 'optimal' exactly when the point's own residuals are met (whatever the solver
    claimed); otherwise a solver limit is kept and a claimed convergence is overruled ('inaccurate')."""
    data = lm.Dataset(X4, Y4)
    problem = M.MaxMarginProblem(DEEP, data)
    solved = lm.max_margin(DEEP, data)
    opts = SolveOptions.resolve(None)
    at, = problem._kept_starts([solved.theta])
    theta = solved.theta.copy()
    theta[:4] *= 1.1                                    # the first layer grown: feasible, not stationary
    away, = problem._kept_starts([theta / np.sqrt(np.min(problem.source.values(theta)))])
    assert problem._judge(away, opts)[0].residuals.stationarity > 0.05
    for claimed in (Status.OPTIMAL, Status.MAX_ITERATIONS, Status.INACCURATE):
        assert problem._judge(replace(at, solver_status=claimed), opts)[1] == Status.OPTIMAL
    assert problem._judge(replace(away, solver_status=Status.OPTIMAL), opts)[1] == Status.INACCURATE
    assert problem._judge(replace(away, solver_status=Status.MAX_ITERATIONS), opts)[1] == Status.MAX_ITERATIONS
    assert problem._judge(replace(away, solver_status=Status.MAX_TIME), opts)[1] == Status.MAX_TIME
    # the caller's tolerances decide: a loose stationarity tolerance accepts the point away from the optimum
    loose = SolveOptions.resolve(None, tolerances=Tolerances(kkt=0.9))
    assert problem._judge(replace(away, solver_status=Status.OPTIMAL), loose)[1] == Status.OPTIMAL


def test_relu_points_are_judged_by_the_clarke_check_in_their_own_region():
    """f = y a relu(v x) on one sample x = 1: min a^2 + v^2 s.t. a v >= 1 at a = v = 1 (lambda = 2).  Judged
    without regions (activation_region=False) it is the Clarke check in the point's own region that certifies;
    a feasible point on a v = 1 that is not stationary is not certified (stationarity reported)."""
    net = lm.load_model("two_layer", input_dim=1, activation="relu", width=1)
    data = lm.Dataset(np.array([[1.0]]), np.array([1.0]))
    problem = M.MaxMarginProblem(net, data)
    opts = SolveOptions.resolve(None)
    theta = np.array([1.0, 1.0])                        # (v, a)
    at, = problem._kept_starts([theta])
    report, status, region = problem._judge(replace(at, solver_status=Status.OPTIMAL), opts)
    assert status == Status.OPTIMAL and report.kkt_met(opts.tolerances)
    assert region is not None and region.interior and region.walk == ()
    np.testing.assert_allclose(report.multipliers[:1], [2.0], rtol=1e-9)
    judged = problem._judge_at_point(at, opts)
    assert judged.feasible and judged.objective == pytest.approx(problem.norm.objective_value(theta), rel=1e-15)
    short, = problem._kept_starts([theta * 1.0])
    short = replace(short, z=problem.lift.start(0.5 * theta))       # margin 0.25: not feasible
    assert not problem._judge_at_point(short, opts).feasible
    away, = problem._kept_starts([np.array([2.0, 0.5])])
    report, status, region = problem._judge(replace(away, solver_status=Status.OPTIMAL), opts)
    assert status not in (Status.OPTIMAL, Status.REGION_BOUNDARY) and report.residuals.stationarity > 0.1
    assert region.clarke["residuals"]["stationarity"] == report.residuals.stationarity


# ---- the sign-row working set: violated rows join before a point is accepted ------------------------------
def region_with_violations(seed, violations, scale=1.0):
    """A two-layer ReLU region and points theta_k that violate chosen sign rows by given relative amounts (slack
    over level), every other row satisfied: v_u is moved along x_n for each chosen row (n, u)."""
    rng = np.random.default_rng(seed)
    net = lm.load_model("two_layer", input_dim=3, activation="relu", width=3)
    X = rng.standard_normal((12, 3)) * scale
    V, a = rng.standard_normal((3, 3)), rng.standard_normal(3)
    data = lm.Dataset(X, np.sign(np.maximum(X @ V.T, 0.0) @ a + 1e-3))
    theta0 = np.concatenate([V.ravel(), a])
    region = RegionMargins(net, data, theta0)
    slack = region.extra_values(theta0) / region.extra_levels(theta0)
    order = np.argsort(slack)                       # the rows nearest their kink: moving them disturbs least
    rows = [int(r) for r in order[:len(violations)]]
    assert len({r % 3 for r in rows}) == len(rows)   # distinct units
    theta = theta0.copy()
    for r, target in zip(rows, violations):
        n, u = divmod(r, 3)
        x, s = data.X[n], region.signs[n, u]
        for _ in range(3):                           # the level moves with theta: a few fixed-point steps
            level = region.extra_levels(theta)[r]
            value = s * theta[3 * u:3 * u + 3] @ x
            theta[3 * u:3 * u + 3] += s * (target * level - value) / (x @ x) * x
    got = region.extra_values(theta) / region.extra_levels(theta)
    return net, data, region, theta0, theta, rows, got


def fake_solver(problem, points, calls):
    """problem._attempt replaced by a 'solver' that returns the given points in turn (converged), recording the
    sign rows it was given."""
    def attempt(source, theta, opts, ws):
        calls.append(None if source.sign_rows is None else source.sign_rows.tolist())
        z = problem.lift.start(points[min(len(calls), len(points)) - 1])
        return M._Attempt(z, np.arange(1.0, 1.0 + problem.data.n_samples + source.n_extra), np.zeros(z.size),
                          np.zeros(z.size), Status.OPTIMAL, "Solve_Succeeded", 3, 0.0, 1,
                          np.arange(problem.data.n_samples))
    return attempt


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_a_sign_row_violated_by_1e_minus_6_joins_before_the_point_is_accepted(monkeypatch, scale):
    """At any data scale (violations relative to the rows' levels)."""
    net, data, region, theta0, theta, rows, got = region_with_violations(0, [-1e-6, -3e-6], scale)
    np.testing.assert_allclose(got[rows], [-1e-6, -3e-6], rtol=1e-3)
    assert np.sum(got < -1e-9) == 2
    monkeypatch.setattr(M, "SIGN_ROWS_NEAR", -1.0)          # no row near its kink: the set starts empty
    problem = M.MaxMarginProblem(net, data)
    calls = []
    monkeypatch.setattr(problem, "_attempt", fake_solver(problem, [theta, theta, theta0], calls))
    ws = M.WorkingSetOptions(enabled=True, batch=1)
    out = problem._attempt_in_region(region, theta0, SolveOptions.resolve(None), ws, True)
    # round 1 on no sign row; the most violated row joins first (batch 1), then the other; theta0 violates none
    assert calls == [[], [rows[1]], sorted(rows)]
    np.testing.assert_array_equal(out.z, problem.lift.start(theta0))
    # the last round's multipliers on its rows of the whole region, zero on every other sign row
    N = data.n_samples
    expected = np.zeros(N + region.n_extra)
    expected[:N] = np.arange(1.0, N + 1.0)
    expected[N + np.array(sorted(rows))] = [N + 1.0, N + 2.0]
    np.testing.assert_array_equal(out.multipliers, expected)
    assert out.report is None


def test_sign_row_rounds_share_the_time_limit(monkeypatch):
    """Each round gets what is left of the limit; past it no further round starts (the point, with rows still
    violated off the set, is then judged on the whole region)."""
    import time
    net, data, region, theta0, theta, rows, got = region_with_violations(0, [-1e-6, -3e-6])
    monkeypatch.setattr(M, "SIGN_ROWS_NEAR", -1.0)
    problem = M.MaxMarginProblem(net, data)
    calls, limits = [], []
    solver = fake_solver(problem, [theta, theta, theta0], calls)

    def slow(source, theta, opts, ws):
        limits.append(opts.time_limit)
        time.sleep(0.05)
        return solver(source, theta, opts, ws)
    monkeypatch.setattr(problem, "_attempt", slow)
    ws = M.WorkingSetOptions(enabled=True, batch=1)
    problem._attempt_in_region(region, theta0, SolveOptions.resolve(None, time_limit=0.01), ws, True)
    assert calls == [[]] and limits[0] <= 0.1            # the rows violated after round 1 wait for no round 2
    calls.clear(), limits.clear()
    problem._attempt_in_region(region, theta0, SolveOptions.resolve(None, time_limit=1e4), ws, True)
    assert len(calls) == 3 and 1e4 - 1.0 < limits[0] <= 1e4 and limits[0] > limits[1] > limits[2]


@pytest.mark.parametrize("scale", [1e-3, 1e3])
def test_a_violation_below_the_tolerance_is_accepted_and_no_working_set_poses_every_row(monkeypatch, scale):
    net, data, region, theta0, theta, rows, got = region_with_violations(0, [-1e-12], scale)
    assert np.all(got >= -1e-11)
    monkeypatch.setattr(M, "SIGN_ROWS_NEAR", -1.0)
    problem = M.MaxMarginProblem(net, data)
    calls = []
    monkeypatch.setattr(problem, "_attempt", fake_solver(problem, [theta, theta0], calls))
    ws = M.WorkingSetOptions(enabled=True)
    out = problem._attempt_in_region(region, theta0, SolveOptions.resolve(None), ws, True)
    assert calls == [[]] and out.multipliers.size == data.n_samples + region.n_extra
    calls.clear()
    out = problem._attempt_in_region(region, theta0, SolveOptions.resolve(None), ws, False)
    assert calls == [None] and out.multipliers.size == data.n_samples + region.n_extra
    # the decision: ws.enabled when set; automatic only above the threshold of rows and SIGN_ROWS_MIN_SET
    assert problem._sign_working_set(region, M.WorkingSetOptions(enabled=True))
    assert not problem._sign_working_set(region, M.WorkingSetOptions(enabled=False, threshold=0))
    monkeypatch.setattr(M, "SIGN_ROWS_MIN_SET", 0)
    assert not problem._sign_working_set(region, M.WorkingSetOptions(threshold=region.n_extra))
    assert problem._sign_working_set(region, M.WorkingSetOptions(threshold=region.n_extra - 1))
    monkeypatch.setattr(M, "SIGN_ROWS_MIN_SET", region.n_extra)
    assert not problem._sign_working_set(region, M.WorkingSetOptions(threshold=region.n_extra - 1))


# ---- the walk across regions, with a scripted solver and judge ---------------------------------------------
RB, OPT, INACC = Status.REGION_BOUNDARY, Status.OPTIMAL, Status.INACCURATE


def scripted_walk(monkeypatch, start, steps, max_steps=25, opts=None, started=0.0, seen=None):
    """Run _walk with the start judged as ``start`` and the k-th region's solution as ``steps[k]``: (status,
    objective, feasible, binding sign rows).  Returns the outcomes and the regions solved in."""
    monkeypatch.setattr(M, "WALK_MAX_STEPS", max_steps)
    net, data, region, theta0, *_ = region_with_violations(0, [])
    problem = M.MaxMarginProblem(net, data)
    regions, script = [], [start] + list(steps)

    def judge(region, attempt, opts, walk):
        status, objective, feasible, flips = script.pop(0)
        diag = M.RegionDiagnostics(3, 1, region.n_extra, len(flips), 0.0, None, walk=tuple(walk))
        return M._RegionOutcome(region, attempt, None, status, diag, np.asarray(flips, dtype=int), objective,
                                feasible)

    def solve(region, theta, region_opts, ws, fallbacks):
        assert fallbacks == (not regions)          # the first region only
        regions.append(region)
        if seen is not None:
            seen.append(region_opts)
        return problem._attempt_at(region, theta)

    monkeypatch.setattr(problem, "_judge_region", judge)
    monkeypatch.setattr(problem, "_region_attempt", solve)
    outcomes = problem._walk(theta0, opts or SolveOptions.resolve(None), M.WorkingSetOptions(), started)
    return outcomes, regions, region


def test_the_walk_enters_the_region_across_the_binding_sign_rows_until_a_certified_point(monkeypatch):
    outcomes, regions, first = scripted_walk(monkeypatch, (INACC, 5.0, True, []),
                                             [(RB, 4.0, True, [0, 5]), (RB, 3.5, True, [7]), (OPT, 3.0, True, []),
                                              (OPT, 1.0, True, [])])
    assert [o.status for o in outcomes] == [RB, RB, OPT] and len(regions) == 3
    assert regions[0].key() == first.key()
    np.testing.assert_array_equal(regions[1].active, first.flipped([0, 5]))
    np.testing.assert_array_equal(regions[2].active, regions[1].flipped([7]))
    walk = outcomes[-1].diagnostics.walk
    assert [(w.status, w.objective, w.binding_sign_rows) for w in walk] == [(RB, 4.0, 2), (RB, 3.5, 1), (OPT, 3.0, 0)]
    assert all(o.diagnostics.walk == walk for o in outcomes)


@pytest.mark.parametrize("stop", [INACC, Status.INFEASIBLE, Status.MAX_ITERATIONS])
def test_the_walk_stops_at_a_failure(monkeypatch, stop):
    outcomes, regions, _ = scripted_walk(monkeypatch, (INACC, 5.0, True, []),
                                         [(RB, 4.0, True, [0]), (stop, 3.0, True, [1]), (OPT, 1.0, True, [])])
    assert [o.status for o in outcomes] == [RB, stop] and len(regions) == 2


def test_the_walk_stops_without_binding_rows_at_a_region_seen_before_and_after_max_steps(monkeypatch):
    outcomes, regions, _ = scripted_walk(monkeypatch, (INACC, 9.0, True, []), [(RB, 4.0, True, []), (OPT, 1.0, True, [])])
    assert len(outcomes) == 1 and len(regions) == 1
    # flipping row 3 twice comes back to the first region: not solved again
    outcomes, regions, _ = scripted_walk(monkeypatch, (INACC, 9.0, True, []),
                                         [(RB, 4.0, True, [3]), (RB, 4.0, True, [3]), (OPT, 1.0, True, [])])
    assert len(regions) == 2 and [o.status for o in outcomes] == [RB, RB]
    # ... and to any region of the walk: R1 -> R2 -> R3 -> R2 stops at R3
    outcomes, regions, _ = scripted_walk(monkeypatch, (INACC, 9.0, True, []),
                                         [(RB, 4.0, True, [1]), (RB, 4.0, True, [2]), (RB, 4.0, True, [2]),
                                          (OPT, 1.0, True, [])])
    assert len(regions) == 3 and len({r.key() for r in regions}) == 3
    outcomes, regions, _ = scripted_walk(monkeypatch, (INACC, 9.0, True, []),
                                         [(RB, 4.0, True, [1]), (RB, 3.0, True, [2]), (OPT, 1.0, True, [])],
                                         max_steps=2)
    assert len(regions) == 2 and [o.status for o in outcomes] == [RB, RB]


def test_the_start_is_kept_only_when_no_feasible_point_of_the_walk_beats_it(monkeypatch):
    """The start (rescaled to min f = 1) is an outcome when it is feasible and its objective is below every
    feasible solution's by more than TIE (or none is feasible): the walk never reports a smaller normalized margin
    than its start."""
    t = M.TIE
    cases = [((INACC, 2.0, True, []), [(OPT, 3.0, True, [])], True),
             ((INACC, 3.0 * (1 - 0.5 * t), True, []), [(OPT, 3.0, True, [])], False),
             ((INACC, 3.0 * (1 - 2 * t), True, []), [(OPT, 3.0, True, [])], True),
             ((INACC, 5.0, True, []), [(OPT, 3.0, True, [])], False),
             ((INACC, 5.0, True, []), [(INACC, 1.0, False, [])], True),
             ((INACC, 2.0, False, []), [(INACC, 3.0, False, [])], False),
             ((INACC, 2.0, True, []), [(RB, 4.0, True, [1]), (INACC, 1.0, False, [])], True)]
    for start, steps, kept in cases:
        outcomes, regions, _ = scripted_walk(monkeypatch, start, steps)
        assert len(outcomes) == len(regions) + int(kept), (start, steps)
        if kept:
            assert outcomes[-1].objective == start[1] and outcomes[-1].diagnostics.walk == outcomes[0].diagnostics.walk
            assert outcomes[-1].region.key() == regions[0].key()


# ---- the starts' walks: which outcome the certificate reports ----------------------------------------------
def walk_outcome(status, objective, feasible=True, residual=0.0, iterations=1):
    return M._RegionOutcome(SimpleNamespace(name=f"region {objective}"), SimpleNamespace(iterations=iterations),
                            SimpleNamespace(residuals=SimpleNamespace(max=residual)), status,
                            SimpleNamespace(name=f"diagnostics {objective}"), np.zeros(0, int), objective, feasible)


def scripted_starts(monkeypatch, walks, time_limit=None, started=None):
    """_solve_in_regions over starts whose walks return the given outcomes; returns what _certificate got."""
    net, data, *_ = region_with_violations(0, [])
    problem = M.MaxMarginProblem(net, data)
    points = [np.full(net.n_params, float(k)) for k in range(len(walks))]
    monkeypatch.setattr(problem, "_region_anchor", lambda theta0, opts: theta0)
    monkeypatch.setattr(problem, "_walk", lambda anchor, opts, ws, started: walks[int(anchor[0])])
    got = {}

    def certificate(source, attempt, report, status, opts, started, starts=(), region=None, farkas=None):
        got.update(source=source, attempt=attempt, report=report, status=status, starts=starts, region=region)
        return got

    monkeypatch.setattr(problem, "_certificate", certificate)
    opts = SolveOptions.resolve(None, time_limit=time_limit)
    import time
    problem._solve_in_regions(points, opts, M.WorkingSetOptions(), time.perf_counter() if started is None else started)
    return got


def test_the_best_outcome_of_all_walks_is_certified(monkeypatch):
    walks = [[walk_outcome(RB, 4.0, iterations=5), walk_outcome(OPT, 3.0, iterations=7)],
             [walk_outcome(OPT, 2.0, residual=1e-12, iterations=2)],
             [walk_outcome(Status.INFEASIBLE, 1.0, feasible=False, residual=0.5, iterations=9)]]
    got = scripted_starts(monkeypatch, walks)
    best = walks[1][0]
    assert got["status"] == OPT and got["attempt"] is best.attempt and got["report"] is best.report
    assert got["source"] is best.region and got["region"] is best.diagnostics
    assert [(s.status, s.objective, s.kkt_max, s.iterations) for s in got["starts"]] == [
        (OPT, 3.0, 0.0, 12), (OPT, 2.0, 1e-12, 2), (Status.INFEASIBLE, 1.0, 0.5, 9)]


def test_no_separating_point_only_when_every_walk_is_infeasible(monkeypatch):
    infeasible = [[walk_outcome(Status.INFEASIBLE, 1.0, feasible=False, residual=0.5)],
                  [walk_outcome(Status.INFEASIBLE, 2.0, feasible=False, residual=0.2)]]
    got = scripted_starts(monkeypatch, infeasible)
    assert got["status"] == Status.NO_SEPARATING_POINT and got["report"] is infeasible[1][0].report
    mixed = infeasible + [[walk_outcome(Status.MAX_ITERATIONS, 3.0, feasible=False, residual=0.9)]]
    assert scripted_starts(monkeypatch, mixed)["status"] == Status.INFEASIBLE
    failing = [[walk_outcome(INACC, 3.0, feasible=True, residual=0.1)], infeasible[0]]
    assert scripted_starts(monkeypatch, failing)["status"] == INACC


def test_past_the_time_limit_no_further_start_is_walked(monkeypatch):
    walks = [[walk_outcome(RB, 4.0)], [walk_outcome(OPT, 2.0)]]
    got = scripted_starts(monkeypatch, walks, time_limit=1.0, started=-1e9)      # long past the limit
    # the best walked point is not certified and the search was cut: max_time, not the point's region_boundary
    assert len(got["starts"]) == 1 and got["status"] == Status.MAX_TIME
    free = scripted_starts(monkeypatch, walks, time_limit=1e6)
    assert len(free["starts"]) == 2 and free["status"] == OPT
    # a certified point found before the limit keeps its status
    assert scripted_starts(monkeypatch, walks[::-1], time_limit=1.0, started=-1e9)["status"] == OPT


# ---- a region's solve and its fallbacks ------------------------------------------------------------------------
def scripted_region_solves(monkeypatch, statuses, working=None, ipopt=None):
    """_region_attempt with _attempt_in_region scripted: the k-th solve ends with statuses[k] (its working set of
    ``working`` samples, all by default); returns the attempt and the solves' (working set enabled, mu strategy)."""
    net, data, region, theta0, *_ = region_with_violations(0, [])
    problem = M.MaxMarginProblem(net, data)
    N = data.n_samples
    calls, made = [], []

    def solve(region, theta, opts, ws, sign_set):
        status = statuses[len(calls)]
        assert sign_set is True          # decided once (ws enabled): the fallbacks keep the sign rows' working set
        calls.append((ws.enabled, opts.ipopt_options().get("ipopt.mu_strategy")))
        assert opts.max_iter == 77 and opts.ipopt_options()["ipopt.mu_init"] == 1e-3     # the caller's options
        attempt = replace(problem._attempt_at(region, theta), solver_status=status,
                          working_set=np.arange(N if working is None or len(calls) > 1 else working))
        made.append(attempt)
        return attempt

    monkeypatch.setattr(problem, "_attempt_in_region", solve)
    out = problem._region_attempt(region, theta0, SolveOptions.resolve(None, max_iter=77,
                                                                      ipopt={"mu_init": 1e-3, **(ipopt or {})}),
                                  M.WorkingSetOptions(enabled=True))
    return out, calls, made


def test_without_fallbacks_a_failed_region_solve_is_the_result(monkeypatch):
    net, data, region, theta0, *_ = region_with_violations(0, [])
    problem = M.MaxMarginProblem(net, data)
    calls = []

    def solve(region, theta, opts, ws, sign_set):
        calls.append(ws.enabled)
        return replace(problem._attempt_at(region, theta), solver_status=Status.MAX_ITERATIONS,
                       working_set=np.arange(3))
    monkeypatch.setattr(problem, "_attempt_in_region", solve)
    out = problem._region_attempt(region, theta0, SolveOptions.resolve(None), M.WorkingSetOptions(enabled=True),
                                  fallbacks=False)
    assert calls == [True] and out.solver_status == Status.MAX_ITERATIONS
    problem._region_attempt(region, theta0, SolveOptions.resolve(None), M.WorkingSetOptions(enabled=True))
    assert len(calls) == 4          # with fallbacks: all margin rows, then the adaptive barrier


def test_a_converged_region_solve_is_kept_and_a_failed_one_is_tried_again(monkeypatch):
    for status in (OPT, INACC, Status.INFEASIBLE):
        out, calls, made = scripted_region_solves(monkeypatch, [status])
        assert out is made[0] and calls == [(True, None)]
    # not converged on a working set of margin rows: solved again on every row, then with the adaptive barrier
    out, calls, made = scripted_region_solves(monkeypatch, [Status.MAX_ITERATIONS, OPT], working=3)
    assert out is made[1] and calls == [(True, None), (False, None)]
    out, calls, made = scripted_region_solves(monkeypatch, [Status.MAX_ITERATIONS, Status.FAILED, OPT], working=3)
    assert out is made[2] and calls == [(True, None), (False, None), (False, "adaptive")]
    # on every row already: straight to the adaptive barrier; a retry that fails too keeps the first attempt
    out, calls, made = scripted_region_solves(monkeypatch, [Status.FAILED, Status.MAX_ITERATIONS])
    assert out is made[0] and calls == [(True, None), (True, "adaptive")]
    # the caller's own barrier strategy is not overridden
    out, calls, made = scripted_region_solves(monkeypatch, [Status.FAILED], ipopt={"mu_strategy": "monotone"})
    assert out is made[0] and calls == [(True, "monotone")]


def test_a_region_solve_and_its_fallbacks_share_the_time_limit(monkeypatch):
    """The fallbacks get what is left of the limit; once it has passed, no fallback is started."""
    import time
    net, data, region, theta0, *_ = region_with_violations(0, [])
    problem = M.MaxMarginProblem(net, data)
    limits = []

    def solve(region, theta, opts, ws, sign_set, spend=0.0):
        limits.append(opts.time_limit)
        time.sleep(spend)
        return replace(problem._attempt_at(region, theta), solver_status=Status.MAX_ITERATIONS,
                       working_set=np.arange(3))
    monkeypatch.setattr(problem, "_attempt_in_region", solve)
    opts = SolveOptions.resolve(None, time_limit=1e4)
    problem._region_attempt(region, theta0, opts, M.WorkingSetOptions(enabled=True))
    assert len(limits) == 3 and limits[0] == 1e4 and all(0 < t < 1e4 for t in limits[1:])
    limits.clear()
    monkeypatch.setattr(problem, "_attempt_in_region", lambda *a: solve(*a, spend=0.05))
    out = problem._region_attempt(region, theta0, SolveOptions.resolve(None, time_limit=0.01),
                                  M.WorkingSetOptions(enabled=True))
    assert len(limits) == 1 and out.solver_status == Status.MAX_ITERATIONS
    limits.clear()            # the limit passes during the first fallback: the adaptive barrier is not tried
    monkeypatch.setattr(problem, "_attempt_in_region", lambda *a: solve(*a, spend=0.05 * len(limits)))
    problem._region_attempt(region, theta0, SolveOptions.resolve(None, time_limit=0.03),
                            M.WorkingSetOptions(enabled=True))
    assert len(limits) == 2


def test_a_relu_point_is_judged_in_its_region_whatever_report_it_carries():
    """An attempt may carry the report of the model's own NLP (working set on every sample): the region's judge
    certifies the region's problem, with its sign rows (a unit at its kink is a tight sign row), not that report."""
    net = lm.load_model("two_layer", input_dim=3, activation="relu", width=3)
    theta, data = kinked_point(5)
    problem = M.MaxMarginProblem(net, data)
    opts = SolveOptions.resolve(None)
    attempt, = problem._kept_starts([theta])
    for carried in (None, problem._certify(problem.source, attempt, opts)):
        _, status, region = problem._judge(replace(attempt, report=carried), opts)
        assert region.tight_sign_constraints >= 1 and region.n_sign_constraints == 5 * 3
        assert region.clarke["kinks"] >= 1


def test_kinked_rows_use_the_callers_active_tolerance_and_keep_their_shapes():
    """x = (0, 1), W1 = [[1, 0], [0, e]], W2 = (w, w): z1_0 = 0 is a kink, and z2 = w e joins it when
    e / sqrt(2) <= tol.active ||theta|| (test_verify_regions): with tol.active = 1e-4 and e = 1.2e-4 ||theta|| it
    does, with the default 1e-8 it does not.  Every row's columns are (patterns, lifted variables)."""
    from test_verify_regions import fed_net
    net = fed_net()
    data = lm.Dataset(np.array([[0.0, 1.0]]), np.array([1.0]))
    theta = np.array([1.0, 0.0, 0.0, 0.0, 0.1, 0.1, 1.0])
    theta[3] = 1.2e-4 * np.linalg.norm(theta)
    region = RegionMargins(net, data, theta)
    for norm in ("l2", "linf"):
        problem = M.MaxMarginProblem(net, data, norm)
        loose = problem._kinked_rows(region, theta, np.ones(1), Tolerances(active=1e-4))[0]
        tight = problem._kinked_rows(region, theta, np.ones(1), Tolerances())[0]
        assert len(loose.units) == 2 and len(tight.units) == 1
        for entry in (loose, tight):
            assert entry.columns.shape == (entry.slopes.shape[0], problem.lift.n)
    # a row whose every pattern was dropped keeps a (0, n) block of columns
    dead = np.array([1.0, 0.0, 0.0, -1.0, 0.0, 1.0, 1.0])
    region = RegionMargins(net, data, dead)
    problem = M.MaxMarginProblem(net, data, "linf")
    entry = problem._kinked_rows(region, dead, np.ones(1), Tolerances())[0]
    assert entry.columns.ndim == 2 and entry.columns.shape == (entry.slopes.shape[0], problem.lift.n)


def test_each_region_is_solved_with_the_callers_options_within_the_limits(monkeypatch):
    """A region's solve keeps the caller's IPOPT options and tolerance, at most REGION_MAX_ITER iterations (the
    first region; WALK_STEP_MAX_ITER for the regions the walk enters) and what is left of the time limit; past the
    time limit no region solve is launched (the start is the outcome)."""
    import time
    seen = []
    opts = SolveOptions.resolve(None, max_iter=5000, tol=1e-7, ipopt={"mu_init": 1e-3}, time_limit=1e4)
    started = time.perf_counter() - 100.0                        # 100 s of the limit spent
    scripted_walk(monkeypatch, (INACC, 9.0, True, []), [(RB, 4.0, True, [1]), (OPT, 3.0, True, [])], opts=opts,
                  started=started, seen=seen)
    assert len(seen) == 2
    assert [o.max_iter for o in seen] == [M.REGION_MAX_ITER, M.WALK_STEP_MAX_ITER]
    assert M.WALK_STEP_MAX_ITER < M.REGION_MAX_ITER < 5000
    for region_opts in seen:
        assert region_opts.tol == 1e-7
        assert region_opts.ipopt_options()["ipopt.mu_init"] == 1e-3
        assert 0 < region_opts.time_limit <= 1e4 - (time.perf_counter() - started) + 1.0
    few = SolveOptions.resolve(None, max_iter=10)
    scripted_walk(monkeypatch, (INACC, 9.0, True, []), [(OPT, 3.0, True, [])], opts=few, seen=seen)
    assert seen[-1].max_iter == 10 and seen[-1].time_limit is None
    late = SolveOptions.resolve(None, time_limit=1.0)
    outcomes, regions, _ = scripted_walk(monkeypatch, (INACC, 9.0, True, []),
                                         [(RB, 4.0, True, [1]), (OPT, 3.0, True, [])], opts=late, started=-1e9)
    assert len(regions) == 0 and [(o.status, o.objective) for o in outcomes] == [(INACC, 9.0)]



def test_a_sample_with_too_many_kinks_is_an_undecided_row():
    """13 units at their kink on one sample: 2^13 patterns exceed MAX_VERTICES; the row is passed on as not
    complete (the Clarke check is then undecided and never certifies)."""
    net = lm.load_model("two_layer", input_dim=2, activation="relu", width=13)
    rng = np.random.default_rng(0)
    V = np.column_stack([rng.standard_normal(13), np.zeros(13)])       # v_u . (0, 1) = 0 for every unit
    theta = np.concatenate([V.ravel(), rng.standard_normal(13)])
    data = lm.Dataset(np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([1.0, 1.0]))
    problem = M.MaxMarginProblem(net, data)
    region = RegionMargins(net, data, theta)
    rows = problem._kinked_rows(region, theta, np.ones(2), Tolerances())
    assert rows[0].complete is False and len(rows[0].units) == 13 and rows[0].columns.shape == (0, problem.lift.n)


def test_default_starts_of_a_relu_net_are_its_separating_gd_start(monkeypatch):
    """starts=None: the normalized-GD start alone when it separates; starts=K: it and K - 1 random starts;
    without a separating GD start, DEFAULT_STARTS random ones."""
    from lexmargin.sweep import relu_teacher_data
    net = lm.load_model("two_layer", input_dim=3, activation="relu", width=3)
    problem = M.MaxMarginProblem(net, relu_teacher_data(30, d=3, width=3, seed=4))
    default = problem._initial_points(SolveOptions.resolve(None))
    assert len(default) == 1 and np.min(net.margins(default[0], problem.data)) > 0
    three = problem._initial_points(SolveOptions.resolve(None, starts=3))
    assert len(three) == 3 and np.array_equal(three[0], default[0])
    monkeypatch.setattr(problem, "_gd_start", lambda opts: None)
    assert len(problem._initial_points(SolveOptions.resolve(None))) == M.DEFAULT_STARTS


def test_a_gd_start_that_does_not_separate_yet_is_continued(monkeypatch):
    from lexmargin.sweep import relu_teacher_data
    net = lm.load_model("two_layer", input_dim=3, activation="relu", width=3)
    problem = M.MaxMarginProblem(net, relu_teacher_data(30, d=3, width=3, seed=4))
    good = problem._gd_start(SolveOptions.resolve(None))
    assert good is not None
    bad = np.zeros_like(good)                     # every margin 0: not separating
    continued = []
    monkeypatch.setattr(M, "gd_start", lambda model, data, seed=None: bad)
    monkeypatch.setattr(M, "separating_gd", lambda model, data, theta: continued.append(theta) or 2.0 * good)
    start = problem._gd_start(SolveOptions.resolve(None))
    assert np.array_equal(continued[0], bad) and np.min(net.margins(start, problem.data)) == pytest.approx(1.0)
    monkeypatch.setattr(M, "separating_gd", lambda model, data, theta: None)
    assert problem._gd_start(SolveOptions.resolve(None)) is None
