import json

import cvxpy as cp
import numpy as np
import pytest

from lexmargin import Block, DataError, Dataset, Model, NoSeparatingPointError, NotSeparableError, SolverError, ops
from lexmargin.problems.maxmargin import MaxMarginProblem, WorkingSetOptions, max_margin


def linear_model(d):
    return Model("linear", [Block.array("w", d, 1)], input_dim=d, output=lambda p, x: p.w @ x)


def teacher_data(n, d, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return Dataset(X, np.sign(X @ rng.standard_normal(d)))


def cvxpy_max_margin(data, norm="l2"):
    A = data.y[:, None] * data.X
    w = cp.Variable(A.shape[1])
    objective = {"l2": cp.sum_squares(w), "l1": cp.norm1(w), "linf": cp.norm_inf(w), "l3": cp.sum(cp.abs(w) ** 3)}
    problem = cp.Problem(cp.Minimize(objective[norm]), [A @ w >= 1])
    problem.solve(solver="CLARABEL")
    return w.value, problem.value


def test_analytic_two_points():
    data = Dataset([[1.0, 0.0], [0.0, 1.0]], [1, 1])
    cert = max_margin(linear_model(2), data)
    assert cert.status == "optimal"
    np.testing.assert_allclose(cert.theta, [1.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(cert.multipliers, [2.0, 2.0], atol=1e-10)  # 2 theta = sum lambda_n y_n x_n
    assert cert.normalized_margin == pytest.approx(1 / np.sqrt(2), abs=1e-12)
    assert list(cert.support) == [0, 1]
    assert cert.licq.holds and cert.licq.rank == 2


def test_linear_matches_cvxpy_and_certificate_is_tight():
    data = teacher_data(80, 6)
    cert = max_margin(linear_model(6), data)
    w_ref, value = cvxpy_max_margin(data)
    np.testing.assert_allclose(cert.theta, w_ref, atol=1e-6)
    assert cert.objective == pytest.approx(value, rel=1e-7)
    assert cert.kkt.max < 1e-8
    assert cert.licq.holds
    assert np.all(cert.multipliers[cert.support] > 0)
    np.testing.assert_allclose(cert.margins[cert.support], 1.0, atol=1e-9)


def test_working_set_equals_full_solve_on_all_samples():
    """IPOPT's working set (the dual route has its own: tests/test_linear_fast.py)."""
    data = teacher_data(1500, 12, seed=3)
    model = linear_model(12)
    full = max_margin(model, data, working_set=WorkingSetOptions(enabled=False), route="ipopt")
    np.testing.assert_allclose(max_margin(model, data).theta, full.theta, atol=1e-8)
    for seeding in ("nnls", "margins"):
        ws = max_margin(model, data, working_set=WorkingSetOptions(enabled=True, seeding=seeding), route="ipopt")
        assert ws.diagnostics.working_set_size < data.n_samples
        np.testing.assert_allclose(ws.theta, full.theta, atol=1e-8)
        assert ws.kkt.max < 1e-8
        assert ws.margins.shape == (1500,) and ws.margins.min() >= 1 - 1e-9


@pytest.mark.parametrize("norm", ["l1", "linf"])
def test_polyhedral_norms_match_cvxpy_objective(norm):
    data = teacher_data(40, 5, seed=1)
    cert = max_margin(linear_model(5), data, norm=norm)
    _, value = cvxpy_max_margin(data, norm)
    assert cert.objective == pytest.approx(value, rel=1e-7)
    assert cert.kkt.max < 1e-7
    assert cert.norm == norm


def test_lp_norm_matches_cvxpy():
    data = teacher_data(40, 4, seed=2)
    cert = max_margin(linear_model(4), data, norm="lp", p=3)
    w_ref, value = cvxpy_max_margin(data, "l3")
    assert cert.objective == pytest.approx(value, rel=1e-6)
    np.testing.assert_allclose(cert.theta, w_ref, atol=1e-5)
    assert cert.kkt.max < 1e-8


def test_bad_lp_exponent():
    with pytest.raises(Exception, match="p > 1"):
        max_margin(linear_model(2), Dataset([[1.0, 0.0]], [1]), norm="lp", p=1)


def test_non_separable_linear_raises_and_reports_status():
    xor = Dataset([[1, 1], [-1, -1], [1, -1], [-1, 1]], [1, 1, -1, -1])
    with pytest.raises(NotSeparableError, match="not separable") as info:
        max_margin(linear_model(2), xor)
    assert info.value.certificate.status == "not_separable"
    cert = max_margin(linear_model(2), xor, raise_on_failure=False)
    assert not cert.success and cert.status == "not_separable"
    proof = cert.diagnostics.farkas            # y >= 0 with A^T y = 0: no theta has A theta >= 1
    A = xor.y[:, None] * xor.X
    assert np.all(proof.weights >= 0) and proof.weights.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(A.T @ proof.weights, 0.0, atol=1e-15)


def test_iteration_limit_is_explicit():
    for route in ("auto", "ipopt"):     # the dual route stops at its limit too, then IPOPT does (and without the
        with pytest.raises(SolverError) as info:        # finish, which alone can reach the vertex from there)
            max_margin(linear_model(6), teacher_data(80, 6), max_iter=1, route=route, finish=False)
        assert info.value.status == "max_iterations"
    cert = max_margin(linear_model(6), teacher_data(80, 6), max_iter=1, route="dual", raise_on_failure=False)
    assert cert.status == "max_iterations" and cert.solver.name == "dual_active_set"


def test_dimension_mismatch_is_a_data_error():
    with pytest.raises(DataError, match="expects 3 features"):
        MaxMarginProblem(linear_model(3), teacher_data(10, 4))


def quadratic_net(d, width):
    return Model("square_net", [Block("V", {"V": (width, d)}, 2), Block("a", {"a": (width,)}, 1)], input_dim=d,
                 output=lambda p, x: p.a @ ops.square(p.V @ x))


def test_nonconvex_multistart_certificate():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 3))
    data = Dataset(X, np.sign(X[:, 0] ** 2 - 0.5 * X[:, 1] ** 2))
    cert = max_margin(quadratic_net(3, 4), data, starts=3, seed=0)
    assert cert.success
    assert len(cert.diagnostics.starts) == 3
    assert cert.objective <= min(s.objective for s in cert.diagnostics.starts if s.status == "optimal") + 1e-9
    assert cert.kkt.max < 1e-8
    assert cert.finish.applied or cert.finish.reason.startswith("not needed")   # IPOPT's point stands only
    # homogeneous of degree 3: normalized margin is min f / ||theta||^3
    assert cert.normalized_margin == pytest.approx(cert.margins.min() / np.linalg.norm(cert.theta) ** 3)


def test_nonconvex_non_separable_is_reported():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((30, 3))
    data = Dataset(X, np.sign(X[:, 0] + 1e-12))  # odd labels: an even (quadratic) model cannot separate
    with pytest.raises(NoSeparatingPointError, match="from 2 start\\(s\\).*not a proof") as info:
        max_margin(quadratic_net(3, 3), data, starts=2)
    assert info.value.status == "no_separating_point" and not isinstance(info.value, NotSeparableError)


def test_certificate_serializes():
    cert = max_margin(linear_model(3), teacher_data(20, 3))
    payload = json.loads(cert.to_json())
    assert payload["status"] == "optimal" and payload["success"] is True
    assert payload["kkt"]["max"] < 1e-8
    assert len(payload["multipliers"]) == 20
    assert payload["diagnostics"]["kind"] == "max_margin" and payload["diagnostics"]["objective_label"]
    assert payload["tolerances"]["kkt"] == 1e-8 and payload["second_order"]["strict"] is True


def relu_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 2))
    return Dataset(X, np.sign(X[:, 0] + 0.5 * X[:, 1]))


def test_piecewise_linear_activations_are_detected():
    from lexmargin.modeling.regions import uses_piecewise_linear_activations
    from lexmargin import load_model
    assert uses_piecewise_linear_activations(load_model("two_layer", input_dim=2, activation="relu"))
    assert uses_piecewise_linear_activations(load_model("two_layer", input_dim=2, activation="leaky_relu"))
    assert not uses_piecewise_linear_activations(load_model("two_layer", input_dim=2, activation="squared_relu"))
    assert not uses_piecewise_linear_activations(linear_model(2))


def test_squared_relu_nets_get_a_limited_memory_hessian_and_a_kkt_certificate():
    """relu^2 is C^1 but its second derivative jumps: IPOPT's exact Hessian misleads it there."""
    from lexmargin import load_model
    from lexmargin.problems.maxmargin import MaxMarginProblem
    from lexmargin.modeling.regions import has_curvature_kinks
    net = load_model("two_layer", input_dim=2, activation="squared_relu", width=4)
    assert has_curvature_kinks(net)
    for smooth in (load_model("two_layer", input_dim=2, activation="square"),
                   load_model("two_layer", input_dim=2, activation="relu"), linear_model(2)):
        assert not has_curvature_kinks(smooth)
    data = relu_data()
    from lexmargin import SolveOptions
    problem = MaxMarginProblem(net, data)
    options = problem._ipopt_options(problem.source, SolveOptions())
    assert options["ipopt.hessian_approximation"] == "limited-memory"
    exact = problem._ipopt_options(problem.source, SolveOptions(ipopt={"hessian_approximation": "exact"}))
    assert exact["ipopt.hessian_approximation"] == "exact"                  # the caller's choice wins
    cert = max_margin(net, data, starts=3, seed=0)
    assert cert.success and cert.kkt.max < 1e-8 and np.min(cert.margins) > 1 - 1e-9
    # a start that fails with the approximation is solved again with the exact Hessian before failing
    failed = max_margin(net, data, starts=1, max_iter=4, finish=False, raise_on_failure=False)
    assert failed.status == "max_iterations" and failed.solver.iterations == 8


def test_relu_net_is_certified_in_the_activation_region_of_its_start():
    from lexmargin import load_model
    from lexmargin.modeling.regions import activation_pattern
    model, data = load_model("two_layer", input_dim=2, activation="relu", width=4), relu_data()
    cert = max_margin(model, data, starts=5, seed=0)
    region = cert.diagnostics.region
    assert cert.success and cert.kkt.max < 1e-8
    assert region.n_sign_constraints == data.n_samples * 4
    assert region.interior == (region.tight_sign_constraints == 0)
    # inside the region the restricted margins are the model's own margins
    np.testing.assert_allclose(cert.margins, model.margins(cert.theta, data), atol=1e-9)
    assert cert.margins.min() >= 1 - 1e-9
    # the solution keeps a pattern compatible with its start's region (units never switch on/off strictly)
    assert len(cert.diagnostics.starts) == 5
    assert activation_pattern(model, cert.theta, data.X[0], data.y[0])[0].shape == (4,)


def test_relu_region_from_a_given_point():
    from lexmargin import load_model
    model, data = load_model("two_layer", input_dim=2, activation="relu", width=4), relu_data()
    free = max_margin(model, data, starts=5, seed=0)
    again = max_margin(model, data, init=free.theta)  # the region of a solution contains it
    assert again.success
    assert again.objective <= free.objective * (1 + 1e-8)


def test_relu_starts_that_do_not_separate_are_moved_to_a_separating_region():
    from lexmargin import load_model
    rng = np.random.default_rng(0)
    w = rng.standard_normal(2)
    X = rng.standard_normal((30, 2))
    y = np.where(X @ w >= 0, 1.0, -1.0)
    data = Dataset(X + 0.3 * y[:, None] * w / np.linalg.norm(w), y)
    model = load_model("two_layer", input_dim=2, activation="relu", width=2)
    start = np.random.default_rng(0).standard_normal(model.n_params)
    assert model.margins(start, data).min() <= 0  # the random start's own region is infeasible
    cert = max_margin(model, data, starts=3, seed=0)
    assert cert.success and cert.kkt.max < 1e-8 and cert.margins.min() >= 1 - 1e-9
    assert any(s.status == "optimal" for s in cert.diagnostics.starts)


def test_bad_start_points_and_tuple_data():
    from lexmargin import ModelError
    model = linear_model(2)
    data = Dataset([[1.0, 0.0], [0.0, 1.0]], [1, 1])
    with pytest.raises(ModelError, match="init must have 2 entries"):
        max_margin(model, data, init=[1.0, 2.0, 3.0])
    with pytest.raises(ModelError, match="non-finite"):
        max_margin(model, data, init=[np.nan, 1.0])
    cert = max_margin(model, ([[1.0, 0.0], [0.0, 1.0]], [1, 1]))
    np.testing.assert_allclose(cert.theta, [1.0, 1.0], atol=1e-12)


def test_certificate_residuals_are_recomputed_not_copied():
    from lexmargin.nlp.certify import complementarity_residual, primal_residual, stationarity_residual
    data = teacher_data(30, 4, seed=5)
    model = linear_model(4)
    cert = max_margin(model, data)
    jac = model.margin_jacobian(cert.theta, data)
    assert stationarity_residual(2 * cert.theta, jac, cert.multipliers) < 1e-8
    # a perturbed point or wrong multipliers are caught by the same numpy check
    moved = cert.theta * 0.99
    no_eq = np.zeros(data.n_samples, dtype=bool)
    assert primal_residual(model.margins(moved, data) - 1, np.ones(data.n_samples), no_eq) > 1e-3
    assert stationarity_residual(2 * cert.theta, jac, cert.multipliers / 2) > 1e-3
    assert complementarity_residual(model.margins(moved, data) - 1 + 0.1, np.ones(data.n_samples), cert.multipliers,
                                    no_eq) > 1e-3


def test_huge_trained_start_is_rescaled_for_homogeneous_models():
    from lexmargin import load_model
    data = teacher_data(30, 3, seed=4)
    model = load_model("deep_linear", input_dim=3, depth=2, width=3)
    free = max_margin(model, data, starts=3, seed=1)
    cert = max_margin(model, data, init=free.theta * 1e15)   # e.g. the end of a long GD run
    assert cert.success and cert.kkt.max < 1e-8
    assert cert.objective == pytest.approx(free.objective, rel=1e-8)


def test_ipopt_after_the_dual_route_gets_what_is_left_of_the_time_limit(monkeypatch):
    """``time_limit`` bounds the dual route and the IPOPT solves after it together (column-scaled multi-class data
    spent the whole limit in the dual route, then IPOPT another whole limit)."""
    import time

    from lexmargin.problems import maxmargin as M

    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 2))
    y = np.where(X[:, 0] > 0, 1.0, -1.0)
    X[:, 0] += 0.5 * y
    limits = []

    def slow_dual(problem, opts, started, force=False):
        time.sleep(0.3)                             # then None: not certified, IPOPT's route

    real_attempt = MaxMarginProblem._attempt

    def attempt(self, source, theta0, opts, ws):
        limits.append(opts.time_limit)
        return real_attempt(self, source, theta0, opts, ws)

    monkeypatch.setattr(M, "dual_certificate", slow_dual)
    monkeypatch.setattr(MaxMarginProblem, "_attempt", attempt)
    from lexmargin import load_model
    cert = max_margin(load_model("linear", input_dim=2), Dataset(X, y), time_limit=1.0)
    assert cert.status == "optimal" and len(limits) == 1 and 0 < limits[0] <= 0.7
    limits.clear()
    max_margin(load_model("linear", input_dim=2), Dataset(X, y))
    assert limits == [None]
