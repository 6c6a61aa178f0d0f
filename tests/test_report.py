import json
from dataclasses import dataclass

import numpy as np
import pytest

from lexmargin import DataError, Dataset, ModelError, load_model
from lexmargin.report import (
    angle_between,
    as_theta_source,
    certificate_from_dict,
    load_certificate,
    load_theta_npz,
    stationarity_report,
)

# Two points on the axes, both labelled +1: the L2 SVM is w* = (1, 1) with margins (1, 1) and
# multipliers lambda = (1, 1) for  min 1/2||w||^2 s.t. <w, x_n> >= 1  (w = sum lambda_n x_n).
AXES = Dataset(np.eye(2), np.ones(2))


@pytest.fixture(scope="module")
def linear():
    return load_model("linear", input_dim=2)


@pytest.fixture(scope="module")
def teacher():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 2))
    y = np.where(X @ np.array([1.0, -0.5]) >= 0, 1.0, -1.0)
    return Dataset(X + 0.2 * y[:, None] * np.array([1.0, -0.5]), y)


@pytest.fixture(scope="module")
def svm_certificate(linear, teacher):
    from lexmargin.problems.maxmargin import max_margin

    return max_margin(linear, teacher)


def test_exact_kkt_point_is_rescaled_and_certified(linear):
    report = stationarity_report(linear, AXES, 3.0 * np.ones(2))
    assert report.scale == pytest.approx(3.0)
    np.testing.assert_allclose(report.margins, [1.0, 1.0])
    np.testing.assert_allclose(report.multipliers, [1.0, 1.0], atol=1e-12)
    assert report.kkt.epsilon < 1e-12 and abs(report.kkt.delta) < 1e-12
    assert report.normalized_margin == pytest.approx(3.0 / np.linalg.norm([3.0, 3.0]))
    assert report.licq.holds and report.licq.rank == 2
    assert report.alignment == pytest.approx(1.0, abs=1e-12)
    assert report.is_approximate_kkt()


def test_non_kkt_point_has_the_expected_residual(linear):
    report = stationarity_report(linear, AXES, np.array([2.0, 1.0]), support_tol=0.01)
    assert report.support.tolist() == [1]
    # theta_hat = (2, 1) against span{(0, 1)}: best lambda = 1, residual (2, 0)
    np.testing.assert_allclose(report.multipliers, [0.0, 1.0], atol=1e-12)
    assert report.kkt.epsilon == pytest.approx(2.0)
    assert report.kkt.relative_epsilon == pytest.approx(2.0 / np.sqrt(5.0))
    assert not report.is_approximate_kkt()
    # with both points in the near-support set the NNLS fit is exact and delta measures the slack
    wide = stationarity_report(linear, AXES, np.array([2.0, 1.0]), support_tol=1.5)
    np.testing.assert_allclose(wide.multipliers, [2.0, 1.0], atol=1e-12)
    assert wide.kkt.delta == pytest.approx(2.0) and wide.kkt.complementarity == pytest.approx(2.0)


def test_homogeneous_degree_two_normalization(teacher):
    model = load_model("deep_linear", input_dim=2, depth=2, width=2)
    theta = model.flatten({"W1": 3 * np.eye(2), "W2": 3 * np.array([1.0, -0.5])})
    report = stationarity_report(model, teacher, theta)
    q_min = np.min(model.margins(theta, teacher))
    assert q_min > 0 and report.scale == pytest.approx(np.sqrt(q_min))
    assert np.min(report.margins) == pytest.approx(1.0)
    assert report.normalized_margin == pytest.approx(q_min / np.dot(theta, theta))
    # a misclassifying point cannot be rescaled to margin 1: theta is kept and the violation reported
    flipped = stationarity_report(model, teacher, model.flatten({"W1": 3 * np.eye(2), "W2": -3 * np.array([1.0, -0.5])}))
    assert flipped.scale == 1.0 and flipped.kkt.primal_violation > 0 and not flipped.is_approximate_kkt()


def test_non_homogeneous_model_keeps_theta_and_uses_its_own_level(teacher):
    model = load_model("log_predictor", input_dim=2)
    theta = np.array([1.0, -0.5])
    report = stationarity_report(model, teacher, theta)
    assert report.normalized_margin is None and report.scale == 1.0
    assert report.constraint_level == pytest.approx(np.min(model.margins(theta, teacher)))


def test_solver_certificate_is_a_kkt_point_and_agrees(linear, teacher, svm_certificate):
    report = stationarity_report(linear, teacher, 7.0 * svm_certificate.theta, certificate=svm_certificate,
                                 support_tol=1e-6)
    assert report.kkt.relative_epsilon < 1e-8
    c = report.comparison
    assert c.angle < 1e-10 and c.margin_vector_angle < 1e-10
    assert c.margin_ratio == pytest.approx(1.0, rel=1e-10)
    assert c.multiplier_scale == 0.5  # certificate solves min ||theta||^2 (no 1/2)
    assert c.multiplier_relative_error < 1e-6
    assert c.support_jaccard == 1.0


def test_certificate_json_round_trip(tmp_path, svm_certificate):
    path = tmp_path / "cert.json"
    path.write_text(svm_certificate.to_json())
    back = load_certificate(path)
    np.testing.assert_array_equal(back.theta, svm_certificate.theta)
    np.testing.assert_array_equal(back.multipliers, svm_certificate.multipliers)
    assert back.kkt == svm_certificate.kkt and back.licq == svm_certificate.licq
    assert back.status == svm_certificate.status and back.objective == svm_certificate.objective
    with pytest.raises(DataError, match="not a lexmargin certificate"):
        certificate_from_dict({"problem": "x"})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_certificate(tmp_path / "bad.json")


def gd_checkpoints(data, steps=(10, 100, 1000, 10000)):
    Z = data.y[:, None] * data.X
    w, out, lr = np.zeros(2), [], 1.0 / np.linalg.norm(Z, 2) ** 2
    for t in range(1, steps[-1] + 1):
        w = w + lr * (np.exp(-(Z @ w)) @ Z)
        if t in steps:
            out.append(w.copy())
    return np.array(out), np.array(steps, dtype=float)


def test_trajectory_of_gradient_descent_approaches_the_svm(linear, teacher, svm_certificate):
    thetas, its = gd_checkpoints(teacher)

    @dataclass
    class Hist:
        thetas: np.ndarray
        iterations: np.ndarray

    report = stationarity_report(linear, teacher, Hist(thetas, its), certificate=svm_certificate)
    t = report.trajectory
    assert t.reference == "certificate" and t.iterations.tolist() == its.tolist()
    assert t.angles[-1] < t.angles[0] and t.margins[-1] > t.margins[0]
    assert t.margins[-1] <= svm_certificate.normalized_margin + 1e-12
    np.testing.assert_array_equal(report.theta, thetas[-1])


def test_numeric_history_input(linear, teacher):
    numeric = pytest.importorskip("lexmargin.numeric")
    kernel = numeric.kernel_for(linear, teacher.X, teacher.y)
    history = numeric.train(kernel, np.array([[0.1, 0.0], [0.0, 0.1]]), rule=numeric.Constant(0.1), n_steps=200,
                            checkpoints=8)
    report = stationarity_report(linear, teacher, history, run=1)
    np.testing.assert_allclose(report.theta, history.theta[1])
    assert report.trajectory.iterations[-1] == 200
    np.testing.assert_allclose(as_theta_source(history, run=1).thetas[0], [0.0, 0.1])
    from_zero = numeric.train(kernel, np.zeros((1, 2)), rule=numeric.Constant(0.1), n_steps=50, checkpoints=4)
    trajectory = stationarity_report(linear, teacher, from_zero).trajectory
    assert trajectory.iterations[0] == 0 and np.isnan(trajectory.margins[0]) and np.isfinite(trajectory.margins[-1])
    with pytest.raises(DataError, match="run 5 is out of range"):
        as_theta_source(history, run=5)


def test_npz_inputs_and_errors(tmp_path, linear, teacher):
    np.savez(tmp_path / "t.npz", theta=np.array([1.0, -0.5]), X=teacher.X, y=teacher.y)
    report = stationarity_report(linear, None, tmp_path / "t.npz")
    assert report.n_samples == teacher.n_samples and report.trajectory is None
    np.savez(tmp_path / "k.npz", thetas=np.ones((3, 2)), iterations=[1, 10, 100])
    src = load_theta_npz(tmp_path / "k.npz")
    assert src.iterations.tolist() == [1, 10, 100] and src.data is None
    np.savez(tmp_path / "none.npz", w=np.ones(2))
    with pytest.raises(DataError, match="no array 'theta'"):
        load_theta_npz(tmp_path / "none.npz")
    with pytest.raises(DataError, match="not found"):
        load_theta_npz(tmp_path / "missing.npz")
    with pytest.raises(DataError, match="no data"):
        stationarity_report(linear, None, np.ones(2))
    with pytest.raises(ModelError, match="3 entries but model 'linear' has 2"):
        stationarity_report(linear, teacher, np.ones(3))
    with pytest.raises(DataError, match="theta is zero"):
        stationarity_report(linear, teacher, np.zeros(2))
    with pytest.raises(DataError, match="non-finite"):
        stationarity_report(linear, teacher, np.array([np.nan, 1.0]))
    np.savez(tmp_path / "bad_iters.npz", thetas=np.ones((3, 2)), iterations=[1, 2])
    with pytest.raises(DataError, match="one entry per checkpoint"):
        load_theta_npz(tmp_path / "bad_iters.npz")


def test_model_by_name_with_options(teacher):
    report = stationarity_report("two_layer", teacher, np.ones(6) * 0.3, model_options={"width": 2})
    assert report.model == "two_layer_relu" and report.n_params == 6
    with pytest.raises(ModelError, match="options apply to a model name"):
        stationarity_report(load_model("linear", input_dim=2), teacher, np.ones(2), model_options={"w": 1})


def test_save_writes_json_markdown_and_plots(tmp_path, linear, teacher, svm_certificate):
    thetas, _ = gd_checkpoints(teacher, steps=(10, 100, 1000))
    report = stationarity_report(linear, teacher, thetas, certificate=svm_certificate)
    files = report.save(tmp_path / "out")
    assert sorted(files) == ["angle", "json", "margin", "markdown", "multipliers"]
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["model"] == "linear" and len(data["multipliers"]) == teacher.n_samples
    assert data["schema_version"] == 1 and data["kind"] == "stationarity_report" and data["seed"] is None
    assert data["environment"]["lexmargin"] and "compiled_gd" in data["environment"]
    assert set(data["kkt"]) >= {"epsilon", "relative_epsilon", "delta", "complementarity"}
    assert data["comparison"]["multiplier_scale"] == 0.5 and len(data["trajectory"]["angles"]) == 3
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Comparison with the solver certificate" in md and "![angle](angle.png)" in md
    assert "\\|delta\\|" in md  # pipes inside cells are escaped
    for name in ("multipliers", "margin", "angle"):
        assert (tmp_path / "out" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert not (tmp_path / "out" / f"{name}.pdf").exists()          # PNG only unless asked


def test_angle_between_is_accurate_for_tiny_angles():
    assert angle_between([1.0, 0.0], [1.0, 1e-9]) == pytest.approx(1e-9, rel=1e-6)
    assert angle_between([1.0, 0.0], [-1.0, 0.0]) == pytest.approx(np.pi)
    assert np.isnan(angle_between([0.0, 0.0], [1.0, 0.0]))


def test_multipliers_agree_with_the_numeric_module(teacher):
    """Two independent implementations (CasADi Jacobian at theta_hat vs numpy rescaled Jacobian)."""
    numeric = pytest.importorskip("lexmargin.numeric")
    model = load_model("deep_linear", input_dim=2, depth=2, width=2)
    from lexmargin.problems.maxmargin import max_margin

    kkt_point = max_margin(model, teacher, starts=2).theta
    theta = 2.0 * kkt_point + 0.01 * np.random.default_rng(0).standard_normal(model.n_params)
    report = stationarity_report(model, teacher, theta, support_tol=0.3)
    assert report.support.size >= 2 and 1e-6 < report.kkt.relative_epsilon < 0.1
    theirs = numeric.nnls_multipliers(theta, model.margins(theta, teacher), model.margin_jacobian(theta, teacher),
                                      degree=2.0, rtol=0.3)
    np.testing.assert_array_equal(report.support, theirs.support)
    np.testing.assert_allclose(report.multipliers, theirs.multipliers, rtol=1e-8, atol=1e-12)
    assert report.kkt.relative_epsilon == pytest.approx(theirs.residual, rel=1e-8)


def test_constrained_path_input(linear, teacher, svm_certificate):
    paths = pytest.importorskip("lexmargin.problems.paths")
    path = paths.constrained_path(linear, teacher, [1.0, 4.0, 16.0])
    report = stationarity_report(linear, teacher, path, certificate=svm_certificate)
    np.testing.assert_allclose(report.theta, 16.0 * path.thetas[-1])
    t = report.trajectory
    assert t.iterations.tolist() == [1.0, 4.0, 16.0] and t.angles[-1] < t.angles[0] and t.axis == "rho"
