"""The Clarke-KKT check on hand-written QPs (no CasADi, no IPOPT): a kinked row certifies exactly when some
element of the convex hull of its pattern gradients makes the point stationary, the chosen element and slopes
are reported, rows off the active set are no candidates, undecided rows never certify, equality rows keep free
multipliers, and the verdict does not depend on the scale of the objective or of the rows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.optimize import nnls
from verify_helpers import kkt_qp

from lexmargin.nlp.clarke import KinkedRow, clarke_check
from lexmargin.nlp.options import Tolerances

TOL = Tolerances()


def kinked(qp, row, columns, slopes, complete=True):
    return {row: KinkedRow(row, ((0, 0),), np.asarray(slopes, dtype=float), np.asarray(columns, dtype=float),
                           complete)}


def hull_around(qp, row, rng, t=0.25):
    """Two pattern gradients whose hull holds the row's gradient A_row = (1 - t) G0 + t G1 (slopes 0 and 1)."""
    d = rng.standard_normal(qp.n)
    return np.array([qp.A[row] - t * d, qp.A[row] + (1 - t) * d])


@pytest.mark.parametrize("seed", range(4))
def test_a_kink_whose_hull_holds_the_needed_gradient_certifies(seed):
    rng = np.random.default_rng(seed)
    qp = kkt_qp(rng, n=4, active=2, inactive=2)
    G = hull_around(qp, 0, rng)
    check = clarke_check(qp.nlp(), qp.z, kinked(qp, 0, G, [[0.0], [1.0]]), tolerances=TOL)
    assert check.holds(TOL) and check.report.residuals.max <= 1e-10
    assert check.kinks == 1 and check.kinked_rows == 1 and check.undecided == 0
    np.testing.assert_allclose(check.report.multipliers[:4], qp.lam, rtol=1e-9, atol=1e-12)
    # the chosen element is the row's gradient (LICQ: unique), at slope t = 0.25 of the way from G0 to G1
    np.testing.assert_allclose(check.report.extended.jacobian[0], qp.A[0], rtol=1e-9, atol=1e-12)
    (entry,) = check.slopes
    assert entry["row"] == 0 and entry["slopes"] == pytest.approx([0.25], abs=1e-9)
    summary = check.summary()
    assert summary["kinks"] == 1 and summary["kinked_rows"] == 1 and summary["undecided_rows"] == 0
    assert summary["slopes"] == list(check.slopes) and summary["residuals"] == check.report.residuals.to_dict()


@pytest.mark.parametrize("seed", range(4))
def test_a_kink_whose_hull_misses_the_needed_gradient_is_reported_in_stationarity(seed):
    """Both patterns' gradients on one side of A_0 (A_0 + d, A_0 + 2d, d off the other active row's span): no
    element of the hull makes z stationary; the violation is in stationarity, not in the other residuals."""
    rng = np.random.default_rng(seed)
    qp = kkt_qp(rng, n=4, active=2, inactive=2)
    d = rng.standard_normal(qp.n)
    d -= (d @ qp.A[1]) / (qp.A[1] @ qp.A[1]) * qp.A[1]
    d *= np.linalg.norm(qp.A[0]) / np.linalg.norm(d)
    G = np.array([qp.A[0] + d, qp.A[0] + 2 * d])
    check = clarke_check(qp.nlp(), qp.z, kinked(qp, 0, G, [[0.0], [1.0]]), tolerances=TOL)
    r = check.report.residuals
    assert not check.holds(TOL) and r.stationarity > 1e-3
    assert r.primal_feasibility <= 1e-12 and r.dual_feasibility == 0.0 and r.complementarity <= 1e-12
    # the best choice is reported: lambda_0 g_0 = w_0 G_0 + w_1 G_1 (w >= 0) and lambda_1 >= 0 minimize the
    # stationarity residual (an independent NNLS over the two patterns and the other active row)
    best = nnls(np.array([G[0], G[1], qp.A[1]]).T, qp.Q @ qp.z + qp.q)[1]
    ext = check.report.extended
    got = np.linalg.norm(ext.point.gradient - ext.jacobian.T @ check.report.multipliers)
    assert got <= best * (1 + 1e-9) + 1e-12 and best > 1e-3


def test_an_undecided_row_never_certifies():
    """A kinked row whose patterns were not enumerated: the check is undecided even at a KKT point (its own
    gradient is used for the residuals, which are met)."""
    qp = kkt_qp(np.random.default_rng(1), n=4, active=2, inactive=2)
    entry = kinked(qp, 0, np.zeros((0, qp.n)), np.zeros((0, 1)), complete=False)
    check = clarke_check(qp.nlp(), qp.z, entry, tolerances=TOL)
    assert check.report.kkt_met(TOL) and check.undecided == 1 and not check.holds(TOL)
    assert check.slopes == () and check.summary()["undecided_rows"] == 1


@pytest.mark.parametrize("slack, candidate", [(0.5, True), (2.0, False)])
def test_only_active_rows_are_candidates(slack, candidate):
    """A row is a candidate when its slack is <= tol.active relative to its level (here 1e3): a kink on a row
    with slack 2 tol.active level is no kink of the check, and an undecided one there does not block it."""
    rng = np.random.default_rng(2)
    qp = kkt_qp(rng, n=4, active=2, inactive=2)
    level = 1e3
    b = qp.b.copy()
    b[2] = qp.A[2] @ qp.z - slack * TOL.active * level
    levels = qp.levels.copy()
    levels[2] = level
    qp = replace(qp, b=b, levels=levels)
    check = clarke_check(qp.nlp(), qp.z, kinked(qp, 2, np.zeros((0, qp.n)), np.zeros((0, 1)), complete=False),
                         tolerances=TOL)
    assert check.kinks == int(candidate) and check.kinked_rows == int(candidate)
    assert check.undecided == int(candidate) and check.holds(TOL) is (not candidate)


def test_equality_rows_keep_free_multipliers():
    rng = np.random.default_rng(3)
    qp = kkt_qp(rng, n=5, active=2, inactive=1, equalities=2)
    qp = replace(qp, mu=np.array([-1.5, 0.7]), q=qp.A.T @ qp.lam + qp.E.T @ np.array([-1.5, 0.7]) - qp.Q @ qp.z)
    G = hull_around(qp, 1, rng, t=0.6)
    check = clarke_check(qp.nlp(), qp.z, kinked(qp, 1, G, [[0.0], [1.0]]), tolerances=TOL)
    assert check.holds(TOL)
    np.testing.assert_allclose(check.report.multipliers[3:5], [-1.5, 0.7], rtol=1e-9)
    assert check.slopes[0]["slopes"] == pytest.approx([0.6], abs=1e-9)


@pytest.mark.parametrize("alpha", [1e-200, 1e-8, 1.0, 1e8, 1e200])
def test_the_verdict_does_not_depend_on_the_objectives_or_the_patterns_scale(alpha):
    """phi -> alpha phi scales the multipliers only; pattern gradients of very different lengths (1e-4 and 1e4
    times the row's) still hold the row's gradient in their hull."""
    rng = np.random.default_rng(4)
    qp = kkt_qp(rng, n=4, active=2, inactive=2).objective_scaled(alpha)
    G = hull_around(qp, 0, rng, t=0.5)
    check = clarke_check(qp.nlp(), qp.z, kinked(qp, 0, G, [[0.0], [1.0]]), tolerances=TOL)
    assert check.holds(TOL)
    np.testing.assert_allclose(check.report.multipliers[:4], qp.lam, rtol=1e-8, atol=1e-12 * alpha)
    # far-apart patterns: A_0 = (1 - t) G0 + t G1 with G0 = 1e-4 A_0 (slope 0) and G1 = 1e4 A_0-ish (slope 1)
    big = np.array([1e-4 * qp.A[0], 1e4 * qp.A[0]])
    check = clarke_check(qp.nlp(), qp.z, kinked(qp, 0, big, [[0.0], [1.0]]), tolerances=TOL)
    assert check.holds(TOL)
    lam = check.report.multipliers
    np.testing.assert_allclose(lam[0] * check.report.extended.jacobian[0], qp.lam[0] * qp.A[0], rtol=1e-8)
    assert 0.0 <= check.slopes[0]["slopes"][0] <= 1.0


def test_no_active_row_no_candidate():
    """At the unconstrained minimizer with every row slack, nothing is a candidate: zero multipliers, the check
    holds (a kink on a slack row is no kink of the check)."""
    rng = np.random.default_rng(5)
    qp = kkt_qp(rng, n=3, active=0, inactive=3)
    assert np.all(qp.lam == 0)
    entry = kinked(qp, 1, np.array([qp.A[1], 2 * qp.A[1]]), [[0.0], [1.0]])
    check = clarke_check(qp.nlp(), qp.z, entry, tolerances=TOL)
    assert check.holds(TOL) and check.kinks == 0 and check.kinked_rows == 0 and check.slopes == ()
    np.testing.assert_array_equal(check.report.multipliers, 0.0)
