"""Depth-sensitive margins (Theorem 1) and the SVM with an unregularized bias."""

import json

import cvxpy as cp
import numpy as np
import pytest
from sklearn.svm import SVC

import lexmargin as lm
from lexmargin import Block, Model, ops
from lexmargin.problems.depth import block_groups, depth_gamma_path, depth_sensitive, svm_with_bias
from lexmargin.errors import LexmarginError, ModelError, NoSeparatingPointError, NotSeparableError
from lexmargin.problems.paths import margin_path

D = 3


def shallow_plus_diagonal():
    """f = y (w . x + (u * v) . x): a linear block (degree 1) plus a diagonal network (degree 2)."""
    return Model("linear+diagonal", [Block.array("w", D, degree=1), Block("deep", {"u": (D,), "v": (D,)}, degree=2)],
                 input_dim=D, summands={"w": lambda p, x: ops.dot(p["w"], x),
                                        "deep": lambda p, x: ops.dot(p["u"] * p["v"], x)})


@pytest.fixture(scope="module")
def model():
    return shallow_plus_diagonal()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((12, D))
    y = np.sign(X @ np.array([1.0, -1.0, 0.5]) + 0.3)
    return lm.Dataset(X, y)


@pytest.fixture(scope="module")
def l1_max_margin(data):
    b = cp.Variable(D)
    cp.Problem(cp.Minimize(cp.norm1(b)), [cp.multiply(data.y, data.X @ b) >= 1]).solve(solver="CLARABEL")
    return b.value


@pytest.fixture(scope="module")
def sequential(model, data):
    return depth_sensitive(model, data)


def beta(model, theta):
    p = model.unflatten(theta)
    return p["u"] * p["v"]


def test_block_groups(model):
    assert block_groups(model) == [(1, ("w",)), (2, ("deep",))]
    with pytest.raises(ModelError, match="sum of blocks"):
        block_groups(lm.load_model("linear", input_dim=2))


def test_unnecessary_shallow_block_is_discarded(model, sequential, l1_max_margin):
    first, second = sequential.stages
    assert first.blocks == ("w",) and first.value < 1e-12 and first.discarded
    assert sequential.discarded == ("w",)
    assert np.all(model.unflatten(sequential.theta)["w"] == 0.0)
    # min ||u||^2 + ||v||^2 s.t. y (u*v).x >= 1 is 2 x the l1 max margin in beta = u * v
    assert np.allclose(beta(model, sequential.theta), l1_max_margin, atol=1e-6)
    assert second.value == pytest.approx(2 * np.abs(l1_max_margin).sum(), rel=1e-7)
    for stage in sequential.stages:
        assert stage.certificate.success and stage.certificate.kkt.max < 1e-8
    assert second.certificate.licq.holds


def test_finite_gamma_converges_to_the_block_lexicographic_solution(model, data, sequential):
    gammas = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5]
    path = depth_gamma_path(model, data, gammas)
    assert path.success and max(p.certificate.kkt.max for p in path.points) < 1e-8
    shallow = np.array([p.block_squared_norms["w"] for p in path.points])
    assert np.all(np.diff(shallow) < 0) and shallow[-1] < 1e-8
    target = beta(model, sequential.theta)
    gaps = np.array([np.linalg.norm(beta(model, p.theta) - target) for p in path.points])
    assert np.all(np.diff(gaps) < 0) and gaps[-1] < 1e-4
    assert np.all(path.margins >= 1 - 1e-9)


def test_shallow_block_needed_is_kept():
    """f = y (w . x + (v . x)^2): the degree-2 block is >= 0 and cannot give negative labels a margin."""
    model = Model("linear+square", [Block.array("w", 2, degree=1), Block.array("v", 2, degree=2)], input_dim=2,
                  summands={"w": lambda p, x: ops.dot(p["w"], x), "v": lambda p, x: ops.dot(p["v"], x) ** 2})
    X = np.array([[2.0, 0.0], [-2.0, 0.5], [0.2, 1.0], [0.0, -1.0]])
    y = np.array([1.0, 1.0, -1.0, -1.0])
    result = depth_sensitive(model, lm.Dataset(X, y))
    assert result.discarded == ()
    assert all(s.certificate.success and s.certificate.kkt.max < 1e-7 for s in result.stages)
    assert np.min(y * (X @ result.theta[:2] + (X @ result.theta[2:]) ** 2)) >= 1 - 1e-8


def test_non_separable_data_is_reported(model):
    xor = lm.Dataset(np.array([[1.0, 1.0, 0.0], [-1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [-1.0, 1.0, 0.0]]),
                     np.array([1.0, 1.0, -1.0, -1.0]))
    # a nonconvex model: no proof, a distinct status (not NotSeparableError)
    with pytest.raises(NoSeparatingPointError, match="no separating point") as info:
        depth_sensitive(model, xor)
    assert info.value.status == "no_separating_point" and not isinstance(info.value, NotSeparableError)
    with pytest.raises(NoSeparatingPointError, match="gamma=1"):
        depth_gamma_path(model, xor, [1.0, 2.0])


def test_schedule_and_tolerance_errors(model, data):
    with pytest.raises(LexmarginError, match="strictly increasing"):
        depth_gamma_path(model, data, [10.0, 1.0])
    with pytest.raises(LexmarginError, match="positive"):
        depth_gamma_path(model, data, [0.0, 1.0])
    with pytest.raises(LexmarginError, match="tol"):
        depth_sensitive(model, data, tol=2.0)


# ---- SVM with an unregularized bias -------------------------------------------------------------
def svm_data(seed=3, n=16):
    rng = np.random.default_rng(seed)
    X = 0.5 * rng.standard_normal((n, 2)) + np.array([1.0, 0.5])
    y = np.where(X[:, 0] - 0.5 * X[:, 1] > 0.8, 1.0, -1.0)
    X = X + 0.15 * y[:, None] * np.array([1.0, -0.5])
    return lm.Dataset(X, y)


@pytest.fixture(scope="module")
def svm():
    data = svm_data()
    return data, svm_with_bias(data)


def test_svm_with_bias_reproduces_sklearn(svm):
    data, (w, b, result) = svm
    reference = SVC(kernel="linear", C=1e10, tol=1e-12).fit(data.X, data.y)
    assert np.allclose(w, reference.coef_[0], atol=1e-6)
    assert b == pytest.approx(reference.intercept_[0], abs=1e-6)
    assert result.success and result.discarded == ()
    assert all(s.certificate.kkt.max < 1e-8 for s in result.stages)


def test_svm_with_bias_matches_exact_qp(svm):
    data, (w, b, _) = svm
    wv, bv = cp.Variable(2), cp.Variable()
    cp.Problem(cp.Minimize(cp.sum_squares(wv)), [cp.multiply(data.y, data.X @ wv + bv) >= 1]).solve(
        solver="CLARABEL", tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    assert np.allclose(w, wv.value, atol=1e-8) and b == pytest.approx(bv.value, abs=1e-8)


def test_augmented_features_regularize_the_bias(svm):
    """Max margin on [x, 1] minimizes ||w||^2 + b^2: a different classifier (Nar et al.)."""
    data, (w, b, _) = svm
    augmented = lm.Dataset(np.hstack([data.X, np.ones((data.n_samples, 1))]), data.y)
    point = margin_path(lm.load_model("linear", input_dim=3), augmented, [1.0]).last
    wb = point.theta / point.margin  # min ||(w, b)||^2 s.t. margins >= 1
    assert np.abs(wb[:2] - w).max() > 0.1 and abs(wb[2] - b) > 0.03
    assert wb @ wb < w @ w + b * b - 1e-3


def test_positive_bias_model(svm):
    """f = y (w.x + b^2) reaches b >= 0 only: flipping the labels flips (w, b), so b > 0 is reproduced."""
    data, (w, b, _) = svm
    assert b < 0
    flipped = lm.Dataset(data.X, -data.y)
    w_pos, b_pos, result = svm_with_bias(flipped, sign="positive")
    assert np.allclose(w_pos, -w, atol=1e-7) and b_pos == pytest.approx(-b, abs=1e-7)
    assert result.success
    # on the original labels the best non-negative bias is b = 0, a worse (larger-norm) classifier
    w_zero, b_zero, _ = svm_with_bias(data, sign="positive")
    assert abs(b_zero) < 1e-6 and w_zero @ w_zero > w @ w + 1e-3


def test_svm_result_to_dict(svm):
    _, (_, _, result) = svm
    back = json.loads(json.dumps(result.to_dict()))
    assert [s["blocks"] for s in back["stages"]] == [["w"], ["b"]]

