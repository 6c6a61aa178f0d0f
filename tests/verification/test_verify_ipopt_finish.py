"""IPOPT's answer in lexmargin's convention (lexmargin.nlp.ipopt) and the exact finish (lexmargin.nlp.finish):
multipliers with the right signs for every kind of row and bound, in any variable scaling, and a finish that
only ever hands back a point the certificate accepts."""

from dataclasses import replace

import casadi as ca
import numpy as np
import pytest
from verify_helpers import QP, kkt_qp

from lexmargin.nlp import finish as F
from lexmargin.nlp.certify import certify
from lexmargin.nlp.ipopt import IpoptSolver, solve
from lexmargin.nlp.nlp import NLP, Point, Rows
from lexmargin.nlp.options import Tolerances
from lexmargin.nlp.status import Status


def solvable(seed=0, **kw):
    p = kkt_qp(np.random.default_rng(seed), **{"n": 6, "active": 2, "inactive": 2, "equalities": 1, "bounds": True,
                                               **kw})
    return replace(p, casadi=True)


def assert_solution(result, p, tol=1e-7):
    assert result.status == Status.OPTIMAL and result.converged and result.return_status == "Solve_Succeeded"
    np.testing.assert_allclose(result.z, p.z, atol=tol)
    np.testing.assert_allclose(result.multipliers, p.multipliers, atol=tol)
    np.testing.assert_allclose(result.lower_multipliers, p.lo, atol=tol)
    np.testing.assert_allclose(result.upper_multipliers, p.up, atol=tol)
    assert result.objective == pytest.approx(p.nlp().evaluate(p.z).objective, abs=1e-9)


# ---- IPOPT ------------------------------------------------------------------------------------------------
def test_ipopt_multipliers_follow_our_convention():
    """lambda >= 0 for active rows c >= 0, free-signed mu for equalities, lower/upper bound multipliers >= 0:
    the known KKT multipliers of a strictly convex QP (unique by LICQ)."""
    p = solvable()
    assert p.mu[0] < 0                              # an equality whose multiplier is negative
    result = IpoptSolver(p.nlp()).solve(np.zeros(p.n))
    assert_solution(result, p)
    assert result.iterations > 0 and 0 < result.seconds < 60
    assert certify(p.nlp(), result.z, result.multipliers, result.lower_multipliers,
                   result.upper_multipliers).residuals.max < 1e-6


def test_ipopt_in_scaled_variables_reports_original_units():
    p = replace(solvable(1), x_scale=np.array([4.0, 0.5, 2.0, 1.0, 8.0, 0.25]))
    assert_solution(IpoptSolver(p.nlp()).solve(np.zeros(p.n)), p)
    p = replace(p, x_scale=np.array([3.0, 0.1, 7.0, 1.0, 10.0, 0.3]))
    assert_solution(IpoptSolver(p.nlp()).solve(np.zeros(p.n)), p)


def test_ipopt_without_rows_and_from_a_start_outside_the_bounds():
    Q = np.diag([1.0, 2.0])
    z = np.array([0.5, 1.0])
    p = QP(Q, -Q @ z + np.array([0.7, 0.0]), np.zeros((0, 2)), np.zeros(0), np.zeros((0, 2)), np.zeros(0),
           np.array([0.5, -5.0]), np.array([3.0, 5.0]), z, np.zeros(0), np.zeros(0), np.array([0.7, 0.0]),
           np.zeros(2), np.zeros(0), np.zeros(0), casadi=True)
    result = solve(p.nlp(), np.array([[9.0], [-9.0]]))
    assert_solution(result, p)
    assert result.multipliers.shape == (0,)


def test_ipopt_options_precedence_and_status():
    p = replace(solvable(2), options={"ipopt.max_iter": 0})
    stopped = IpoptSolver(p.nlp()).solve(np.zeros(p.n))
    assert stopped.status == Status.MAX_ITERATIONS and not stopped.converged
    assert stopped.return_status == "Maximum_Iterations_Exceeded" and stopped.iterations == 0
    solver = IpoptSolver(p.nlp(), {"ipopt.max_iter": 100})
    assert solver.options["ipopt.max_iter"] == 100 and solver.options["ipopt.bound_relax_factor"] == 0.0
    assert_solution(solver.solve(np.zeros(p.n)), p)
    assert_solution(solve(replace(p, options=None).nlp(), np.zeros(p.n), options=None), p)


def parametric_nlp():
    """min 0.5 ||z||^2 - p.z  s.t.  1 - z0 >= 0, z1 + z2 = p2: z = (min(p0, 1), ...)"""
    def expressions(z, p):
        return 0.5 * ca.dot(z, z) - ca.dot(p, z), ca.vertcat(1 - z[0], z[1] + z[2] - p[2])

    def evaluate(z, p):
        return Point(float(0.5 * z @ z - p @ z), z - p, np.array([1 - z[0], z[1] + z[2] - p[2]]),
                     np.array([[-1.0, 0, 0], [0, 1.0, 1.0]]), np.ones(2))

    return NLP("par", 3, (Rows("ball", 1), Rows("fixed", 1, equality=True)), -np.inf, np.inf, expressions, evaluate,
               theta=lambda z: z, hessian=lambda z, p, lam: np.eye(3), parameters=3)


def test_ipopt_parameters():
    solver = IpoptSolver(parametric_nlp())
    result = solver.solve(np.zeros(3), p=[3.0, 1.0, 4.0])
    # z0 = 1 (multiplier 2); min 0.5 (z1^2 + z2^2) - z1 - 4 z2 s.t. z1 + z2 = 4 -> (0.5, 3.5)
    np.testing.assert_allclose(result.z, [1.0, 0.5, 3.5], atol=1e-7)
    report = certify(solver.nlp, result.z, result.multipliers, result.lower_multipliers, result.upper_multipliers,
                     p=[3.0, 1.0, 4.0])
    assert report.residuals.max < 1e-7 and result.multipliers[0] == pytest.approx(2.0, abs=1e-7)
    np.testing.assert_allclose(result.z[1] + result.z[2], 4.0, atol=1e-9)
    again = solver.solve(np.zeros(3), p=[0.5, 0.0, 0.0])
    np.testing.assert_allclose(again.z, [0.5, 0.0, 0.0], atol=1e-8)
    once = solve(parametric_nlp(), np.zeros(3), p=[0.5, 0.0, 0.0])
    np.testing.assert_allclose(once.z, [0.5, 0.0, 0.0], atol=1e-8)


# ---- the exact finish ---------------------------------------------------------------------------------------
def interior(p, shift=1e-6, noise=1e-7, seed=0):
    """An interior-point-like answer: z moved into the feasible region, multipliers perturbed."""
    rng = np.random.default_rng(seed)
    lam = p.multipliers + noise * rng.standard_normal(p.multipliers.size)
    z = p.z + shift * rng.standard_normal(p.n)
    lower = np.where(np.isfinite(p.lower), np.maximum(z, p.lower + shift), z)
    z = np.where(np.isfinite(p.upper), np.minimum(lower, p.upper - shift), lower)
    return z, lam, p.lo + noise, p.up + noise


@pytest.mark.parametrize("diagonal", [False, True])
def test_finish_recovers_the_exact_kkt_point(diagonal):
    p = replace(kkt_qp(np.random.default_rng(3), n=6, active=2, inactive=2, equalities=1, bounds=True),
                diagonal=diagonal)
    nlp = p.nlp()
    z, lam, lo, up = interior(p)
    before = certify(nlp, z, lam, lo, up).residuals.max
    fin = F.finish(nlp, z, lam, lo, up)
    info = fin.info
    assert info.applied and info.reason == "" and info.rounds >= 1 and info.newton_steps >= 1
    assert info.working_set == 2 + 1 + 2                    # active rows, the equality, two bounds
    assert info.residual_before == pytest.approx(before) and info.residual_after < 1e-14
    np.testing.assert_allclose(fin.z, p.z, atol=1e-13)
    np.testing.assert_allclose(fin.multipliers, p.multipliers, atol=1e-12)
    np.testing.assert_allclose(fin.lower_multipliers, p.lo, atol=1e-12)
    np.testing.assert_allclose(fin.upper_multipliers, p.up, atol=1e-12)
    assert fin.z[0] == p.lower[0] and fin.z[1] == p.upper[1]      # bounds held exactly
    assert certify(nlp, fin.z, fin.multipliers, fin.lower_multipliers, fin.upper_multipliers).residuals.max < 1e-14
    assert info.to_dict()["applied"] is True


def test_finish_picks_a_vertex_of_a_degenerate_active_set():
    """Three active rows in R^2 with the gradient in the cone of two of them: multipliers from NNLS use
    linearly independent rows, the third (redundant) row gets 0."""
    Q = np.eye(2)
    z = np.array([1.0, 1.0])
    A = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    lam = np.array([1.0, 2.0, 0.0])
    q = A.T @ lam - Q @ z
    p = QP(Q, q, A, A @ z, np.zeros((0, 2)), np.zeros(0), np.full(2, -np.inf), np.full(2, np.inf), z, lam,
           np.zeros(0), np.zeros(2), np.zeros(2), np.ones(3), np.ones(0))
    fin = F.finish(p.nlp(), z + 1e-5, np.array([0.6, 1.6, 0.4]), np.zeros(2), np.zeros(2))
    assert fin.info.applied
    np.testing.assert_allclose(fin.z, z, atol=1e-14)
    assert certify(p.nlp(), fin.z, fin.multipliers).residuals.max < 1e-14
    assert np.sum(fin.multipliers > 0) == 2 and np.all(fin.multipliers >= 0)


def test_finish_repairs_a_wrong_working_set():
    """IPOPT's point leaves a row out that the solution needs (far from active, no multiplier): Newton on the
    first working set violates it, the finish adds it and solves again."""
    Q = np.eye(2)
    A = np.array([[1.0, 0.0], [0.0, 1.0]])
    b = np.array([1.0, -2.0])
    z = np.array([1.0, -2.0])
    lam = np.array([2.0, 1.0])
    q = A.T @ lam - Q @ z                       # the unconstrained optimum (-1, -3) violates both rows
    p = QP(Q, q, A, b, np.zeros((0, 2)), np.zeros(0), np.full(2, -np.inf), np.full(2, np.inf), z, lam,
           np.zeros(0), np.zeros(2), np.zeros(2), np.ones(2), np.ones(0))
    fin = F.finish(p.nlp(), np.array([1.0 + 1e-5, 0.0]), np.array([2.0, 0.0]), np.zeros(2), np.zeros(2))
    assert fin.info.applied and fin.info.rounds == 2 and fin.info.working_set == 2
    np.testing.assert_allclose(fin.z, z, atol=1e-14)
    np.testing.assert_allclose(fin.multipliers, lam, atol=1e-13)


def test_repair_steps():
    class Ext:
        equality = np.array([False, False, True, False])
        values = np.array([0.0, 0.0, 0.0, -1e-3])
        levels = np.ones(4)
        jacobian = np.eye(4)         # independent rows: a violated row joins without an exchange
    tol = Tolerances()
    working = np.array([True, True, True, False])
    lam = np.array([1.0, -0.5, -3.0, 0.0])       # the equality's negative multiplier is fine
    assert F._repair(Ext, working, lam, tol)
    assert working.tolist() == [True, False, True, False] and lam.tolist() == [1.0, 0.0, -3.0, 0.0]
    assert F._repair(Ext, working, lam, tol)            # now the violated row joins
    assert working.tolist() == [True, False, True, True]
    assert not F._repair(Ext, working, lam, tol)
    # a negative multiplier at the support tolerance of the largest one is noise; a violation of
    # tol.active / 100 relative is not a violation
    working = np.array([True, True, False, False])
    lam = np.array([1.0, -1e-9 * 3.0 + 1e-12, 0.0, 0.0])

    class Tiny(Ext):
        equality = np.zeros(4, bool)
        values = np.array([0.0, 0.0, -1e-10, 0.5])
        levels = np.array([1.0, 1.0, 1.0, 1.0])
    assert not F._repair(Tiny, working, lam * np.array([3, 1, 1, 1]), tol)
    assert F._repair(Tiny, np.array([True, True, False, False]), np.array([3.0, -4e-9, 0.0, 0.0]), tol)

    class Violated(Tiny):
        values = np.array([0.0, 0.0, -2e-10, 0.5])
    working = np.array([True, True, False, False])
    assert F._repair(Violated, working, np.array([3.0, 1.0, 0.0, 0.0]), tol) and working[2]
    # small multipliers: "negative" is relative to the largest of them, not to 1
    working = np.array([True, True, False, False])
    lam = np.array([1e-3, -2e-12, 0.0, 0.0])
    assert F._repair(Tiny, working, lam, tol) and not working[1]
    # a violation is relative to the row's level: -1e-9 at level 100 is -1e-11, within tol.active / 100

    class Level(Tiny):
        values = np.array([0.0, 0.0, -1e-9, 0.5])
        levels = np.array([1.0, 1.0, 100.0, 1.0])
    working = np.array([True, True, False, False])
    assert not F._repair(Level, working, np.array([3.0, 1.0, 0.0, 0.0]), tol) and not working[2]
    empty = type("E", (), {"equality": np.zeros(0, bool), "values": np.zeros(0), "levels": np.zeros(0),
                           "jacobian": np.zeros((0, 2))})
    assert not F._repair(empty, np.zeros(0, bool), np.zeros(0), tol)


class Vertex:
    """Rows a_0 = (1, 0), a_1 = (0, 1) hold a vertex in R^2 with multipliers (2, 1); a_2 = (1, 1) is violated and
    depends on them (alpha = (1, 1)); a_3 = (1, -1) too (alpha = (1, -1)); a_4 = (-1, -1) has no blocking row."""

    equality = np.zeros(5, bool)
    values = np.array([0.0, 0.0, -0.5, -0.1, -0.1])
    levels = np.ones(5)
    jacobian = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])


def test_a_dependent_row_joins_in_exchange_for_the_blocking_row():
    """The ratio test: t = min_j lambda_j / alpha_j over alpha_j > 0 = min(2, 1) = 1 at row 1, which leaves; the new
    multipliers (2 - 1, 1 - 1, 1) still give grad phi = (2, 1) = 1 a_0 + 1 a_2."""
    working, lam = np.array([True, True, False, False, False]), np.array([2.0, 1.0, 0.0, 0.0, 0.0])
    assert F._repair(Vertex, working, lam, Tolerances())
    assert working.tolist() == [True, False, True, False, False] and lam.tolist() == [1.0, 0.0, 1.0, 0.0, 0.0]
    np.testing.assert_allclose(Vertex.jacobian.T @ lam, [2.0, 1.0], rtol=0, atol=1e-15)


def test_the_exchange_takes_only_rows_with_a_positive_coefficient():
    """a_3 = a_0 - a_1: only row 0 blocks (alpha_0 = 1 > 0), at t = 2; row 1's multiplier grows to 1 + 2."""
    class Third(Vertex):
        values = np.array([0.0, 0.0, 0.5, -0.5, 0.5])
    working, lam = np.array([True, True, False, False, False]), np.array([2.0, 1.0, 0.0, 0.0, 0.0])
    F._enter(Third, working, lam, 3)
    assert working.tolist() == [False, True, False, True, False]
    np.testing.assert_allclose(lam, [0.0, 3.0, 0.0, 2.0, 0.0], rtol=0, atol=1e-15)


def test_a_row_no_working_row_blocks_joins_as_before():
    """a_4 = -(a_0 + a_1): no alpha_j > 0, so nothing leaves (the old rule); an equality row never blocks; an
    independent row joins with multiplier 0."""
    working, lam = np.array([True, True, False, False, False]), np.array([2.0, 1.0, 0.0, 0.0, 0.0])
    F._enter(Vertex, working, lam, 4)
    assert working.tolist() == [True, True, False, False, True] and lam.tolist() == [2.0, 1.0, 0.0, 0.0, 0.0]

    class Equalities(Vertex):
        equality = np.array([True, True, False, False, False])
    working, lam = np.array([True, True, False, False, False]), np.array([2.0, 1.0, 0.0, 0.0, 0.0])
    F._enter(Equalities, working, lam, 2)
    assert working.tolist() == [True, True, True, False, False] and lam.tolist() == [2.0, 1.0, 0.0, 0.0, 0.0]
    working, lam = np.array([True, False, False, False, False]), np.array([2.0, 0.0, 0.0, 0.0, 0.0])
    F._enter(Vertex, working, lam, 2)                # (1, 1) is not in the span of (1, 0): no exchange
    assert working.tolist() == [True, False, True, False, False] and lam.tolist() == [2.0, 0.0, 0.0, 0.0, 0.0]


def test_rows_that_are_not_finite_join_without_an_exchange():
    """A Jacobian entry that is NaN or inf (a point outside a model's domain): no least squares (LAPACK's SVD raises
    on them), the row joins as before."""
    for bad in (np.nan, np.inf):
        class Broken(Vertex):
            jacobian = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, bad], [1.0, -1.0], [-1.0, -1.0]])
        working, lam = np.array([True, True, False, False, False]), np.array([2.0, 1.0, 0.0, 0.0, 0.0])
        F._enter(Broken, working, lam, 2)
        assert working.tolist() == [True, True, True, False, False] and lam.tolist() == [2.0, 1.0, 0.0, 0.0, 0.0]
        Broken.jacobian = np.array([[1.0, bad], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])
        working, lam = np.array([True, True, False, False, False]), np.array([2.0, 1.0, 0.0, 0.0, 0.0])
        F._enter(Broken, working, lam, 2)
        assert working.tolist() == [True, True, True, False, False]


def test_a_nearly_dependent_row_is_judged_by_the_relative_residual():
    """a = (1, 1e-9) beside the working row (1, 0): residual 1e-9 of |a| > DEPENDENT, so it joins without an exchange;
    (1, 1e-11) is dependent to 1e-11 and replaces it."""
    class Near(Vertex):
        jacobian = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1e-9], [1.0, 1e-11], [0.0, 0.0]])
    working, lam = np.array([True, False, False, False, False]), np.array([2.0, 0.0, 0.0, 0.0, 0.0])
    F._enter(Near, working, lam, 2)
    assert working.tolist() == [True, False, True, False, False]
    working, lam = np.array([True, False, False, False, False]), np.array([2.0, 0.0, 0.0, 0.0, 0.0])
    F._enter(Near, working, lam, 3)
    assert working.tolist() == [False, False, False, True, False] and lam[3] == pytest.approx(2.0, rel=1e-15)


def test_the_finish_reaches_the_vertex_from_an_interior_start_by_exchanges():
    """svm_with_bias's QP (12 samples in the plane, theta = (w, b)) from IPOPT's starting point (max_iter = 0): the
    repairs add violated rows to a working set that already holds a vertex; without the exchange its KKT system was
    singular (multipliers ~1e16) and the repairs cycled between two sets for all 12 rounds (seen on an AMD EPYC
    machine; an Intel one's rounding happened to escape).  With it: three rounds, the exact optimum."""
    from test_verify_svm_bias import offset_data

    from lexmargin.nlp.options import SolveOptions
    from lexmargin.problems import svm_bias as S

    data = offset_data(n=12, d=2)
    qp = S.svm_with_bias_qp(data, route="qp", options=SolveOptions(max_iter=0, raise_on_failure=False))[2].qp
    assert qp.solver.iterations == 0 and qp.finish.applied and qp.finish.rounds <= 4 and qp.status == "optimal"
    exact = S.svm_with_bias_qp(data)[2].qp
    np.testing.assert_allclose(qp.theta, exact.theta, rtol=0, atol=1e-12 * np.max(np.abs(exact.theta)))


def test_finish_keeps_the_point_it_cannot_certify():
    """min -z0^2 + z1^2 (a saddle at 0 with no constraint): Newton stops at the saddle? No: the finish works on
    the active set only, a point that is not KKT stays uncertified and IPOPT's point is returned."""
    Q = np.diag([1.0, 1.0])
    p = QP(Q, np.zeros(2), np.array([[1.0, 0.0]]), np.array([5.0]), np.zeros((0, 2)), np.zeros(0),
           np.full(2, -np.inf), np.full(2, np.inf), np.zeros(2), np.zeros(1), np.zeros(0), np.zeros(2),
           np.zeros(2), np.ones(1), np.ones(0))
    # the row z0 >= 5 is violated by IPOPT's point (an infeasible problem's last iterate is similar)
    z = np.array([4.0, 0.0])
    fin = F.finish(p.nlp(), z, np.array([0.0]), np.zeros(2), np.zeros(2))
    assert fin.info.applied or fin.z.tolist() == z.tolist()
    no_hessian = NLP("nh", 2, p.nlp().rows, -np.inf, np.inf, None, p.nlp().evaluate, theta=lambda z: z)
    kept = F.finish(no_hessian, z, [0.0], np.zeros(2), np.zeros(2))
    assert kept.info.applied is False and kept.info.reason == "no Hessian of the Lagrangian"
    assert kept.z.tolist() == z.tolist() and kept.multipliers.tolist() == [0.0]
    assert kept.lower_multipliers.tolist() == [0.0, 0.0] and kept.upper_multipliers.tolist() == [0.0, 0.0]
    assert kept.info.residual_before == pytest.approx(certify(p.nlp(), z, [0.0]).residuals.max)
    nan = F.finish(p.nlp(), np.array([np.nan, 0.0]), [0.0], np.zeros(2), np.zeros(2))
    assert not nan.info.applied and nan.info.reason == "IPOPT's point is not finite"
    huge = F.finish(p.nlp(), np.array([1e200, 0.0]), [0.0], np.zeros(2), np.zeros(2))   # finite z, objective inf
    assert not huge.info.applied and huge.info.reason == "IPOPT's point is not finite"


def test_finish_never_returns_an_uncertified_point():
    """An infeasible problem (z0 >= 1 and z0 <= -1): nothing to certify, IPOPT's point is kept with the
    reason and the residual the finish reached."""
    Q = np.eye(1)
    A = np.array([[1.0], [-1.0]])
    p = QP(Q, np.zeros(1), A, np.array([1.0, 1.0]), np.zeros((0, 1)), np.zeros(0), np.full(1, -np.inf),
           np.full(1, np.inf), np.zeros(1), np.zeros(2), np.zeros(0), np.zeros(1), np.zeros(1), np.ones(2),
           np.ones(0))
    z = np.array([0.1])
    fin = F.finish(p.nlp(), z, np.array([0.5, 0.5]), np.zeros(1), np.zeros(1))
    assert not fin.info.applied and fin.info.reason == "the finished point is not certified"
    assert fin.z.tolist() == [0.1] and fin.multipliers.tolist() == [0.5, 0.5]
    assert fin.info.residual_after > 1e-3 and fin.info.rounds >= 1
    assert fin.info.residual_before == pytest.approx(certify(p.nlp(), z, [0.5, 0.5]).residuals.max)


def test_finish_does_not_trade_a_certified_point_for_a_worse_one(monkeypatch):
    """A certified IPOPT point is replaced only by a point with an objective no worse (to 1e-9 relative)."""
    p = kkt_qp(np.random.default_rng(5), n=3, active=1, inactive=1)
    nlp = p.nlp()
    worse_z = p.z + np.array([0.0, 0.0, 1e-3])
    real_newton = F._newton

    def newton_then_move(state, working, lam):
        steps = real_newton(state, working, lam)
        state.z[:] = worse_z
        return steps
    monkeypatch.setattr(F, "_newton", newton_then_move)
    monkeypatch.setattr(F, "residuals", lambda ext, lam: type("R", (), {"max": 0.0})())
    fin = F.finish(nlp, p.z, p.multipliers, p.lo, p.up)
    assert not fin.info.applied and fin.info.reason == "objective increased"
    assert fin.z.tolist() == p.z.tolist()
    # within the slack: accepted
    worse_z = p.z + np.array([0.0, 0.0, 1e-12])
    assert F.finish(nlp, p.z, p.multipliers, p.lo, p.up).info.applied
    # the slack is 1e-9 of max(1, |objective|): 1e-6 worse on an objective of size ~1e4 is within it ...
    big = p.objective_scaled(1e4)
    objective = big.nlp().evaluate(big.z).objective
    assert abs(objective) > 1e3
    direction = big.Q @ big.z + big.q
    worse_z = big.z + 1e-6 * abs(objective) * 1e-3 * direction / (direction @ direction)
    assert F.finish(big.nlp(), big.z, big.multipliers, big.lo, big.up).info.applied
    # ... and 1.5e-9 worse on an objective of size <= 1 is not
    small = p.objective_scaled(1e-3 / max(1.0, abs(nlp.evaluate(p.z).objective)))
    direction = small.Q @ small.z + small.q
    worse_z = small.z + 1.5e-9 * direction / (direction @ direction)
    assert F.finish(small.nlp(), small.z, small.multipliers, small.lo, small.up).info.reason == "objective increased"


def test_finish_takes_the_exact_vertex_below_which_an_infeasible_point_lay():
    """A certified point violating its active row by 5e-9 has an objective lower than the exact optimum's by about
    lambda 5e-9 (> 1e-9 of |f|): that is what its infeasibility buys (infeasibility_gain), not a worse finish."""
    p = kkt_qp(np.random.default_rng(5), n=3, active=1, inactive=1)
    nlp = p.nlp()
    a = p.A[0]
    z0 = p.z - 5e-9 * a / (a @ a)
    assert certify(nlp, z0, p.multipliers, p.lo, p.up).residuals.max <= 1e-8
    assert nlp.evaluate(p.z).objective - nlp.evaluate(z0).objective > 1e-9 * abs(nlp.evaluate(z0).objective)
    fin = F.finish(nlp, z0, p.multipliers, p.lo, p.up)
    assert fin.info.applied and np.abs(fin.z - p.z).max() <= 1e-15


def test_infeasibility_gain_is_the_multipliers_times_the_violations():
    from types import SimpleNamespace
    ext = SimpleNamespace(values=np.array([-2.0, 3.0, -1.0, 0.5, -0.25]),
                          equality=np.array([False, False, False, True, True]))
    lam = np.array([0.5, 7.0, -4.0, 2.0, -8.0])
    # violations 2, 0, 1 (inequalities), 0.5, 0.25 (equalities, either sign) times |lambda|
    assert F.infeasibility_gain(ext, lam) == 0.5 * 2 + 4.0 * 1 + 2.0 * 0.5 + 8.0 * 0.25
    assert F.infeasibility_gain(SimpleNamespace(values=np.zeros(0), equality=np.zeros(0, bool)), np.zeros(0)) == 0.0


def test_fit_multipliers_on_the_active_rows():
    p = kkt_qp(np.random.default_rng(6), n=5, active=2, inactive=2, equalities=1, bounds=True)
    lam = F.fit_multipliers(p.nlp(), p.z)
    # extended rows: 4 inequalities, 1 equality, lower bounds of z0 and z2, upper bounds of z1 and z2
    expected = np.concatenate([p.lam, p.mu, [p.lo[0], 0.0], [p.up[1], 0.0]])
    np.testing.assert_allclose(lam, expected, atol=1e-12)
    assert certify(p.nlp(), p.z, lam[:5], *split(p, lam)).residuals.max < 1e-12
    # active is relative to the level: an active row moved to slack 1e-6 at level 1e3 (relative 1e-9) still
    # carries its multiplier
    b = p.b.copy()
    b[0] -= 1e-6
    levels = p.levels.copy()
    levels[0] = 1e3
    shifted = QP(**{**p.__dict__, "b": b, "levels": levels})
    lam_s = F.fit_multipliers(shifted.nlp(), p.z)
    assert lam_s[0] == pytest.approx(p.lam[0], rel=1e-9)
    # parameters reach the evaluation
    par = parametric_nlp()
    lam_p = F.fit_multipliers(par, np.array([1.0, 0.5, 3.5]), p=[3.0, 1.0, 4.0])
    assert lam_p[0] == pytest.approx(2.0) and lam_p[1] == pytest.approx(-0.5)
    # rows active only up to tol.active: a looser tolerance takes in the slack rows (multiplier 0 by NNLS)
    assert F.fit_multipliers(p.nlp(), list(p.z), tolerances=Tolerances(active=0.99)).shape == expected.shape


def split(p, lam):
    lo, up = np.zeros(p.n), np.zeros(p.n)
    lo[[0, 2]], up[[1, 2]] = lam[5:7], lam[7:9]
    return lo, up


def test_nnls_multipliers_with_equalities_of_either_sign():
    p = kkt_qp(np.random.default_rng(7), n=4, active=1, inactive=0, equalities=2)
    mu = np.array([-2.0, 3.0])
    q = p.A.T @ p.lam + p.E.T @ mu - p.Q @ p.z
    p = replace(p, q=q, mu=mu)
    ext = certify(p.nlp(), p.z, p.multipliers).extended
    lam = F._nnls_multipliers(ext, np.arange(3))
    np.testing.assert_allclose(lam, p.multipliers, atol=1e-12)
    assert F._nnls_multipliers(ext, np.zeros(0, dtype=int)).shape == (0,)
    # a candidate row with a zero gradient gets multiplier 0, not nan
    A0 = np.vstack([p.A, np.zeros((1, p.n))])
    zero_row = QP(**{**p.__dict__, "A": A0, "b": np.append(p.b, 0.0), "lam": np.append(p.lam, 0.0),
                     "levels": np.ones(2)})
    ext0 = certify(zero_row.nlp(), zero_row.z, zero_row.multipliers).extended
    lam0 = F._nnls_multipliers(ext0, np.arange(4))
    assert np.all(np.isfinite(lam0)) and lam0[1] == 0.0
    # gradients of very different lengths: normalized for NNLS, multipliers in the rows' own units
    A = p.A * 1e6
    ext = certify(replace(p, A=A, b=p.b * 1e6).nlp(), p.z, p.multipliers).extended
    np.testing.assert_allclose(F._nnls_multipliers(ext, np.arange(3)), [p.lam[0] / 1e6, *mu], rtol=1e-9)


# ---- finish_or_keep: the finish runs where it can change the answer ------------------------------------
def ipopt_result(p, status=Status.OPTIMAL, z=None, multipliers=None):
    from lexmargin.nlp.ipopt import IpoptResult
    return IpoptResult(p.z if z is None else z, 0.0, p.multipliers if multipliers is None else multipliers, p.lo,
                       p.up, status, "Solve_Succeeded" if status == Status.OPTIMAL else "Maximum_Iterations_Exceeded",
                       7, 0.01)


def test_complementary_multipliers_zero_the_clearly_inactive_rows():
    p = kkt_qp(np.random.default_rng(10), n=5, active=2, inactive=2, equalities=1, bounds=True)
    lam = p.multipliers.copy()
    lam[2:4] = [1e-9, -1e-9]                     # IPOPT's residual multipliers on the slack rows
    lam[4] = 0.3                                 # the equality keeps whatever it has
    lo, up = p.lo + np.array([0, 0, 1e-9, 0, 0]), p.up + np.array([0, 0, 1e-9, 0, 0])   # z2's bounds are slack
    rows, low, high, point = F.complementary_multipliers(p.nlp(), p.z, lam, lo, up)
    assert rows.tolist() == [*p.lam[:2], 0.0, 0.0, 0.3]
    assert low.tolist() == p.lo.tolist() and high.tolist() == p.up.tolist()
    assert point.values.shape == (5,) and point.objective == p.nlp().evaluate(p.z).objective
    # slack is relative to the row's level: 1e-3 at level 100 is 1e-5, within IDENTIFY_TOL: kept
    b = p.b.copy()
    b[2] = p.A[2] @ p.z - 1e-3
    levels = p.levels.copy()
    levels[2] = 100.0
    rows, *_ = F.complementary_multipliers(QP(**{**p.__dict__, "b": b, "levels": levels}).nlp(), p.z, lam, lo, up)
    assert rows[2] == 1e-9
    # a row within IDENTIFY_TOL (relative) of active keeps its multiplier
    b = p.b.copy()
    b[2] = p.A[2] @ p.z - 0.5 * F.IDENTIFY_TOL
    rows, *_ = F.complementary_multipliers(QP(**{**p.__dict__, "b": b}).nlp(), list(p.z), lam, lo, up)
    assert rows[2] == 1e-9 and rows[3] == 0.0


def test_well_identified_points_need_no_finish():
    tol = Tolerances()
    p = kkt_qp(np.random.default_rng(11), n=5, active=2, inactive=2)
    assert F.well_identified(p.report(), tol)
    # not certified
    assert not F.well_identified(p.report(q=p.q + 1e-3), tol)
    # a near-active row (slack 1e-6) whose multiplier is 0: ambiguous
    b = p.b.copy()
    b[2] = p.A[2] @ p.z - 1e-6
    assert not F.well_identified(p.report(b=b), tol)
    # ... unless its multiplier is clearly in the support (stationarity kept)
    lam = p.lam.copy()
    lam[2] = 0.5
    q = p.A.T @ lam - p.Q @ p.z
    assert not F.well_identified(p.report(b=b, lam=lam, q=q), tol)          # complementarity now fails
    b[2] = p.A[2] @ p.z
    assert F.well_identified(p.report(b=b, lam=lam, q=q), tol)
    lam[2] = 1e-9                                                           # active, weight below 1e-6
    q = p.A.T @ lam - p.Q @ p.z
    assert not F.well_identified(p.report(b=b, lam=lam, q=q), tol)
    # slack and weight of the same small order (an interior point near a degenerate row: s w ~ mu, both ~ sqrt(mu)):
    # ambiguous however clearly the multiplier counts; a slack CLEAR_ACTIVE times the weight or below is active
    lam[2] = 1e-5
    q = p.A.T @ lam - p.Q @ p.z
    report = p.report(b=b, lam=lam, q=q)
    scale, weights = report.balance()
    relative = weights[2] / scale
    assert 1e-6 < relative < 1e-3
    for factor, identified in ((0.1, True), (0.99, True), (1.01, False), (1.5, False), (1 / F.CLEAR_ACTIVE, False)):
        near = b.copy()
        near[2] = p.A[2] @ p.z - factor * F.CLEAR_ACTIVE * relative * report.extended.levels[2]
        assert F.well_identified(p.report(b=near, lam=lam, q=q), tol) is identified, factor
    # LICQ fails: two copies of an active row
    A = np.vstack([p.A, p.A[:1]])
    two = QP(**{**p.__dict__, "A": A, "b": np.append(p.b, p.b[0]), "lam": np.append(p.lam, 0.0),
                "levels": np.ones(5)})
    assert two.report().residuals.max < 1e-12 and not F.well_identified(two.report(), tol)
    # near-active equality rows do not count
    eq = kkt_qp(np.random.default_rng(12), n=5, active=1, inactive=1, equalities=1)
    assert F.well_identified(eq.report(), tol)
    # no near-active row at all (an unconstrained optimum)
    free = kkt_qp(np.random.default_rng(14), n=3, active=0, inactive=2)
    assert F.well_identified(free.report(), tol)
    # "clear" is relative to the stationarity scale, g~ included: at 1e3 times the objective's scale a weight
    # of 1e-6 is not clear, and a huge g~ makes every multiplier unclear
    lam = p.lam.copy()
    lam[1] = 1e-7
    q = p.A.T @ lam - p.Q @ p.z
    unclear = QP(**{**p.__dict__, "lam": lam, "q": q})
    assert not F.well_identified(unclear.report(), tol)
    assert not F.well_identified(unclear.objective_scaled(1e3).report(), tol)
    assert not F.well_identified(QP(**{**p.__dict__, "gradient_scale": np.full(5, 1e9)}).report(), tol)
    # near-active is relative to the row's level: slack 1e-3 at level 100 is 1e-5, near
    b = p.b.copy()
    b[2] = p.A[2] @ p.z - 1e-3
    levels = p.levels.copy()
    levels[2] = 100.0
    assert not F.well_identified(p.report(b=b, levels=levels), tol)


def test_finish_or_keep_decisions():
    from lexmargin.nlp.options import SolveOptions
    opts = SolveOptions()
    p = kkt_qp(np.random.default_rng(13), n=5, active=2, inactive=2, bounds=True)
    lam = p.multipliers.copy()
    lam[3] = 1e-10
    # a nonlinear (non-diagonal) NLP at a well-identified certified point: kept, with the clean multipliers
    point, report = F.finish_or_keep(p.nlp(), ipopt_result(p, multipliers=lam), opts)
    assert not point.info.applied and point.info.reason == F.NOT_NEEDED
    assert point.info.residual_after == report.residuals.max and report.residuals.max < 1e-12
    assert point.multipliers[3] == 0.0 and np.array_equal(point.z, p.z)
    # diagonal (linear) NLPs are always finished
    diag = replace(p, diagonal=True)
    point, report = F.finish_or_keep(diag.nlp(), ipopt_result(diag), opts)
    assert point.info.applied and report.residuals.max < 1e-12
    # so are NLPs whose sample rows are linear (linear_margins: a margin path or lexicographic stage of a linear
    # model), at the same well-identified certified point that a general NLP keeps
    point, report = F.finish_or_keep(replace(p.nlp(), linear_margins=True), ipopt_result(p, multipliers=lam), opts)
    assert point.info.applied and point.info.reason == "" and report.residuals.max < 1e-12
    # not requested / not converged; the caller's tolerances reach the report
    point, report = F.finish_or_keep(p.nlp(), ipopt_result(p), SolveOptions(finish=False))
    assert point.info == F.NOT_RUN and report.residuals.max < 1e-12
    loose = SolveOptions(tolerances=Tolerances(active=0.99))
    wide = QP(**{**p.__dict__, "levels": np.array([1.0, 1.0, 10.0, 10.0])})     # slack rows: relative <= 0.15
    for options in (loose, SolveOptions(finish=False, tolerances=Tolerances(active=0.99))):
        _, report = F.finish_or_keep(wide.nlp(), ipopt_result(wide), options)
        assert report.active[:4].all()
    wide_diag = replace(wide, diagonal=True)
    _, report = F.finish_or_keep(wide_diag.nlp(), ipopt_result(wide_diag), loose)
    assert report.active[:4].all()
    point, report = F.finish_or_keep(p.nlp(), ipopt_result(p, status=Status.MAX_ITERATIONS), opts)
    assert not point.info.applied
    assert point.info.reason == "IPOPT did not converge (Maximum_Iterations_Exceeded)"
    # ... except an interior point of a diagonal NLP (always finished, even where IPOPT stopped short), unless IPOPT
    # ran out of time or the point is not finite; an active-set solver's vertex at its limit is not
    stopped = ipopt_result(diag, status=Status.MAX_ITERATIONS)
    point, report = F.finish_or_keep(diag.nlp(), stopped, opts)
    assert point.info.applied and report.residuals.max < 1e-12
    point, _ = F.finish_or_keep(diag.nlp(), replace(stopped, status=Status.MAX_TIME, return_status="Maximum_WallTime_"
                                                    "Exceeded"), opts)            # the time is up: not finished
    assert not point.info.applied and point.info.reason == "IPOPT did not converge (Maximum_WallTime_Exceeded)"
    point, _ = F.finish_or_keep(diag.nlp(), replace(stopped, z=np.full(diag.n, np.nan)), opts)
    assert not point.info.applied and point.info.reason.startswith("IPOPT did not converge")
    point, _ = F.finish_or_keep(diag.nlp(), replace(stopped, vertex=True, solver="dual_active_set"), opts)
    assert not point.info.applied
    assert point.info.reason == "dual_active_set did not converge (Maximum_Iterations_Exceeded)"
    # an ambiguous point is finished: a near-active row without multiplier
    z = p.z.copy()
    b = p.b.copy()
    b[2] = p.A[2] @ z - 1e-7
    near = QP(**{**p.__dict__, "b": b})
    point, report = F.finish_or_keep(near.nlp(), ipopt_result(near), opts)
    assert point.info.applied and report is not None and report.residuals.max < 1e-12
    # a finish that cannot certify keeps IPOPT's point and reports on it
    A = np.array([[1.0], [-1.0]])
    bad = QP(np.eye(1), np.zeros(1), A, np.array([1.0, 1.0]), np.zeros((0, 1)), np.zeros(0), np.full(1, -np.inf),
             np.full(1, np.inf), np.array([0.1]), np.array([0.5, 0.5]), np.zeros(0), np.zeros(1), np.zeros(1),
             np.ones(2), np.ones(0))
    point, report = F.finish_or_keep(bad.nlp(), ipopt_result(bad), opts)
    assert not point.info.applied and point.info.reason == "the finished point is not certified"
    assert report.extended.z.tolist() == [0.1] and report.residuals.max > 1e-3


@pytest.mark.parametrize("row, lam0, working, lam", [
    # a = 2 a_0 + a_1 / 2 with multipliers (2, 1): ratios lambda_j / alpha_j = (1, 2), row 0 leaves at t = 1 and the
    # others move by t alpha: (2 - 2, 1 - 0.5, t)
    ([2.0, 0.5], [2.0, 1.0], [False, True, True], [0.0, 0.5, 1.0]),
    # a step t below 1: multipliers (0.5, 1) and a = (1, 1): t = 0.5
    ([1.0, 1.0], [0.5, 1.0], [False, True, True], [0.0, 0.5, 0.5]),
    # a = 2 a_0 (alpha = (2, 0)) beside a_1 with multiplier 0: only row 0 blocks (0 / 0 is no ratio), at t = 1
    ([2.0, 0.0], [2.0, 0.0], [False, True, True], [0.0, 0.0, 1.0]),
])
def test_the_ratio_test_divides_each_multiplier_by_its_positive_coefficient(row, lam0, working, lam):
    """The exchange keeps grad phi = J^T lambda: with rows (1, 0), (0, 1) in the working set and row a joining."""
    class Exchange(Vertex):
        jacobian = np.array([[1.0, 0.0], [0.0, 1.0], row, [1.0, -1.0], [-1.0, -1.0]])
    now, multipliers = np.array([True, True, False, False, False]), np.array([*lam0, 0.0, 0.0, 0.0])
    F._enter(Exchange, now, multipliers, 2)
    assert now.tolist() == [*working, False, False]
    np.testing.assert_allclose(multipliers, [*lam, 0.0, 0.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(Exchange.jacobian.T @ multipliers, Exchange.jacobian[:2].T @ np.array(lam0),
                               rtol=0, atol=1e-15)


def test_dependence_is_relative_to_the_rows_size():
    """Rows of size 1e6: (1e6, 1e-5) beside (1e6, 0) is dependent to 1e-11 relative (an exchange), whatever its
    absolute residual (1e-5)."""
    class Large(Vertex):
        jacobian = np.array([[1e6, 0.0], [0.0, 1.0], [1e6, 1e-5], [1.0, -1.0], [-1.0, -1.0]])
    working, lam = np.array([True, False, False, False, False]), np.array([2.0, 0.0, 0.0, 0.0, 0.0])
    F._enter(Large, working, lam, 2)
    assert working.tolist() == [False, False, True, False, False] and lam[2] == pytest.approx(2.0, rel=1e-12)
