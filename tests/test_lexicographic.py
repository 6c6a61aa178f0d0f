"""Lexicographic max-margin (Definition 5) and the constrained-path limit (Theorem 4)."""

import json

import cvxpy as cp
import numpy as np
import pytest

import lexmargin as lm
from lexmargin import Block, Model, ops
from lexmargin.errors import LexmarginError, NotSeparableError
from lexmargin.problems.lexicographic import lexicographic_max_margin, sum_smallest
from lexmargin.problems.paths import constrained_path

# linf ball, f = w . x:  margins w1, 2 + w2, 2.5 - 2 w2.  The max-margin set {w1 = 1, -1 <= w2 <= 3/4}
# is a segment; the lexicographic solution equalizes the 2nd and 3rd margins: w = (1, 1/6),
# sorted margins (1, 13/6, 13/6).  The constrained path solves exp(-rho(2 + w2)) = 2 exp(-rho(2.5 - 2 w2)):
# w(rho) = (1, 1/6 - log(2) / (3 rho))  ->  the lexicographic solution (Theorem 4).
LINF_X = np.array([[1.0, 0.0], [2.0, 1.0], [2.5, -2.0]])
LINF_LEX = np.array([1.0, 1.0 / 6.0])
# l1 ball: margins w1 + w2 (= 1 on the whole face w >= 0) and 2 w1 + w2; lexicographic: w = (1, 0).
L1_X = np.array([[1.0, 1.0], [2.0, 1.0]])
# Resolvable range: in double precision the tie-breaking samples (margin gap ~1.17 rho) stop moving the
# solution once rho * gap exceeds ~ -log(IPOPT tol); rho <= 10 keeps it below 12.
THEOREM4_RHOS = np.array([1.0, 2.0, 5.0, 10.0])


@pytest.fixture(scope="module")
def linear2():
    return lm.load_model("linear", input_dim=2)


@pytest.fixture(scope="module")
def linf_data():
    return lm.Dataset(LINF_X, np.ones(3))


@pytest.fixture(scope="module")
def linf_lex(linear2, linf_data):
    return lexicographic_max_margin(linear2, linf_data, norm="linf")


def test_sum_smallest():
    assert sum_smallest([3.0, 1.0, 2.0, -1.0], 2) == 0.0
    assert sum_smallest([3.0, 1.0], 5) == 4.0


def test_linf_lexicographic_stages(linf_lex):
    first, second = linf_lex.stages
    assert first.level == pytest.approx(1.0, abs=1e-9) and first.fixed == (0,)
    assert not first.unique and first.width > 0.5            # the max-margin set is a segment
    assert second.level == pytest.approx(13.0 / 6.0, abs=1e-8) and second.fixed == (1, 2)  # a tie
    assert second.unique and linf_lex.unique                 # every sample fixed after stage 2
    assert np.allclose(linf_lex.theta, LINF_LEX, atol=1e-7)
    assert np.allclose(linf_lex.sorted_margins, [1.0, 13.0 / 6.0, 13.0 / 6.0], atol=1e-7)
    assert np.allclose(linf_lex.levels, [1.0, 13.0 / 6.0], atol=1e-8)
    for stage in linf_lex.stages:
        cert = stage.certificate
        assert cert.success and cert.kkt.max < 1e-8
        assert np.allclose(cert.margins[list(stage.fixed)], stage.level, atol=1e-9)  # fixed at their level
        assert sum_smallest(cert.margins, 1) == pytest.approx(1.0, abs=1e-9)          # earlier levels kept


def test_linf_stage_two_multipliers(linf_lex):
    """max min(2 + w2, 2.5 - 2 w2) with w1 = 1 held: weights sum to 1 and w2-stationarity gives q1 = 2 q2.
    Sample 0 is held by its equality row and by the ball bound w1 <= 1 at once: LICQ fails (4 active rows
    in 3 variables), which the certificate reports."""
    cert = linf_lex.stages[1].certificate
    assert {1, 2} <= set(cert.support)
    assert np.allclose(cert.multipliers[1:], [2.0 / 3.0, 1.0 / 3.0], atol=1e-7)
    assert not cert.licq.holds and cert.licq.n_active == 4 and cert.licq.rank == 3
    assert cert.second_order.strict is True                  # the active rows pin the point: unique


def test_theorem4_constrained_path_reaches_the_linf_lexicographic_solution(linear2, linf_data, linf_lex):
    path = constrained_path(linear2, linf_data, THEOREM4_RHOS, norm="linf", reference=linf_lex.theta)
    closed_form = 1.0 / 6.0 - np.log(2.0) / (3.0 * THEOREM4_RHOS)
    assert np.allclose(path.thetas[:, 0], 1.0, atol=1e-9)
    assert np.allclose(path.thetas[:, 1], closed_form, atol=1e-8)
    d = path.distances_to_reference
    assert np.allclose(d, np.log(2.0) / (3.0 * THEOREM4_RHOS), atol=1e-8)  # -> 0 like 1/rho
    # the margin path (IPOPT on the flat max-margin set) lands elsewhere in that set
    mp_theta = path.points[0].margin_path_theta
    assert np.min(linf_data.X @ mp_theta) == pytest.approx(1.0, abs=1e-8)
    assert np.linalg.norm(mp_theta - LINF_LEX) > 0.5
    assert all(p.lemma3_holds for p in path.points)


def test_theorem4_l1_ball(linear2):
    data = lm.Dataset(L1_X, np.ones(2))
    lex = lexicographic_max_margin(linear2, data, norm="l1")
    assert np.allclose(lex.theta, [1.0, 0.0], atol=1e-7)
    assert not lex.stages[0].unique and lex.stages[-1].unique
    assert np.allclose(lex.levels, [1.0, 2.0], atol=1e-8)
    path = constrained_path(linear2, data, THEOREM4_RHOS, norm="l1", reference=lex.theta)
    assert np.all(path.distances_to_reference < 1e-5)
    assert np.all(np.abs(path.theta_norms - 1) < 1e-9)
    mp_theta = path.points[-1].margin_path_theta
    assert np.linalg.norm(mp_theta - lex.theta) > 0.1  # another max-margin solution


@pytest.mark.parametrize("rho", [1.0, 10.0])
def test_non_homogeneous_log_predictor_has_the_same_lexicographic_solution(linf_data, rho):
    """log is increasing, so the lexicographic order of sorted margins is that of the linear model."""
    model = lm.load_model("log_predictor", input_dim=2)
    lex = lexicographic_max_margin(model, linf_data, norm="linf", rho=rho, init=[1.0, 0.0])
    assert np.allclose(lex.theta, LINF_LEX, atol=1e-7)
    assert np.allclose(np.exp(lex.sorted_margins) / rho, [1.0, 13.0 / 6.0, 13.0 / 6.0], atol=1e-7)
    assert lex.success and lex.unique and len(lex.stages) == 2


def test_l2_linear_is_unique_after_one_stage(linear2):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((12, 2))
    y = np.sign(X @ np.array([1.0, 0.5]))
    X = X + 0.2 * y[:, None]
    data = lm.Dataset(X, y)
    lex = lexicographic_max_margin(linear2, data)
    assert len(lex.stages) == 1 and lex.unique
    w = cp.Variable(2)
    cp.Problem(cp.Minimize(cp.sum_squares(w)), [cp.multiply(y, X @ w) >= 1]).solve(solver="CLARABEL")
    assert np.allclose(lex.theta, w.value / np.linalg.norm(w.value), atol=1e-6)
    assert lex.stages[0].certificate.licq.holds


def test_nonconvex_diagonal_network():
    """f = (u * v) . x on the l2 ball: beta = u * v ranges over the l1 ball of radius 1/2."""
    model = Model("diagonal", [Block("deep", {"u": (2,), "v": (2,)}, degree=2)], input_dim=2,
                  output=lambda p, x: ops.dot(p["u"] * p["v"], x))
    lex = lexicographic_max_margin(model, lm.Dataset(L1_X, np.ones(2)))
    p = model.unflatten(lex.theta)
    assert np.allclose(p["u"] * p["v"], [0.5, 0.0], atol=1e-7)
    assert not lex.stages[0].unique
    assert np.allclose(lex.sorted_margins, [0.5, 1.0], atol=1e-7)
    path = constrained_path(model, lm.Dataset(L1_X, np.ones(2)), THEOREM4_RHOS, init=model.random_params(seed=2))
    for theta in path.thetas:
        p = model.unflatten(theta)
        assert np.allclose(p["u"] * p["v"], [0.5, 0.0], atol=1e-6)


def test_lexicographic_errors(linear2, linf_data):
    with pytest.raises(LexmarginError, match="rho"):
        lexicographic_max_margin(linear2, linf_data, rho=-1.0)
    with pytest.raises(LexmarginError, match="max_stages"):
        lexicographic_max_margin(linear2, linf_data, max_stages=4)
    with pytest.raises(LexmarginError, match="uniqueness_tol"):
        lexicographic_max_margin(linear2, linf_data, uniqueness_tol=0.0)
    xor = lm.Dataset(np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]]), np.array([1, 1, -1, -1]))
    with pytest.raises(NotSeparableError):
        lexicographic_max_margin(linear2, xor)


def test_max_stages_and_to_dict(linear2, linf_data):
    lex = lexicographic_max_margin(linear2, linf_data, norm="linf", max_stages=1)
    assert len(lex.stages) == 1 and not lex.unique
    back = json.loads(json.dumps(lex.to_dict()))
    assert back["stages"][0]["certificate"]["problem"] == "lexicographic_stage_1"
