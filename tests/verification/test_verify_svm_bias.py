"""The SVM with an unregularized bias as a QP (lexmargin/problems/svm_bias.py): the rows it certifies (prescaled
A = y (x, 1), the row b >= 0 and its level, the Farkas rows), the closed form of one class, Farkas statuses, the
svm_bias model's stage functions against finite differences, the smallest bias parametrization and its feasible
interval, the stage certificates (each status from its own residuals) and the route decision."""

from dataclasses import replace

import numpy as np
import pytest

import lexmargin as lm
from lexmargin import Dataset, NotSeparableError, SolverError, Status
from lexmargin.nlp.options import SolveOptions
from lexmargin.problems import svm_bias as S
from lexmargin.problems.depth import stage_nlp


def offset_data(seed=3, n=30, d=3, flip=False, scale=1.0):
    """Separable through the origin, off-centre: the best bias b* > 0 (``flip``: labels negated, b* < 0)."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    X = rng.standard_normal((n, d)) + np.eye(1, d, 0)[0] + 0.5 * np.eye(1, d, 1)[0]
    y = np.where(X @ u >= 0, 1.0, -1.0)
    X = X + 0.3 * y[:, None] * u
    return Dataset(scale * X, -y if flip else y)


def assert_qp_kkt(cert, data, positive=False):
    """(w, b) is a KKT point of min ||w||^2 s.t. y (w.x + b) >= 1 (b >= 0), in the user's units."""
    assert cert.status == Status.OPTIMAL and cert.kkt.max <= cert.tolerances.kkt
    w, b = cert.theta[:-1], cert.theta[-1]
    lam = cert.multipliers[:data.n_samples]
    margins = data.y * (data.X @ w + b)
    assert np.min(margins) >= 1 - 1e-12
    assert np.min(lam) >= 0
    np.testing.assert_allclose(2 * w, (lam * data.y) @ data.X, rtol=0, atol=1e-10 * np.max(np.abs(w)))
    mu = -(lam @ data.y)
    if positive:
        assert b >= 0 and mu >= -1e-10 * lam.sum() and abs(mu * b) <= 1e-10 * lam.sum() * max(1.0, abs(b))
    else:
        assert abs(mu) <= 1e-10 * lam.sum()
    assert np.max(lam * (margins - 1)) <= 1e-10 * lam.sum()
    np.testing.assert_allclose(cert.margins, margins, rtol=1e-12)
    assert cert.objective == pytest.approx(w @ w, rel=1e-12)


# ---- the QP's rows -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("exponent", [0, 5, -5, 40, -40])
@pytest.mark.parametrize("positive", [False, True])
def test_bias_margins_are_y_x_1_prescaled(exponent, positive):
    data = offset_data(scale=2.0 ** exponent)
    data = Dataset(data.X * np.array([1.0, 2.0 ** 12, 1.0]), data.y)      # one column 2^12 larger
    source = S.BiasMargins(data, positive)
    A = np.hstack([data.y[:, None] * data.X, data.y[:, None]])
    e = source.scale_exponent
    expected = int(np.frexp(np.max(np.abs(A)))[1])
    assert e == (expected if abs(expected) > 8 else 0)
    np.testing.assert_array_equal(source.A, np.ldexp(A, -e))
    assert source.n_samples == 30 and not np.any(source.c) and source.c.shape == (30,)
    assert source.bias == 3 and source.positive is positive and source.n_extra == int(positive)
    columns = np.max(np.abs(source.A), axis=0)
    np.testing.assert_array_equal(source.column_scale, np.ldexp(1.0, -np.frexp(columns)[1]))
    # the row b >= 0: value b, Jacobian e_b, level 2^e (the bias that moves a margin by 1)
    theta = np.array([0.5, -1.0, 2.0, -0.25])
    if positive:
        assert source.extra_values(theta).tolist() == [-0.25]
        assert source.extra_jacobian(theta).tolist() == [[0.0, 0.0, 0.0, 1.0]]
        assert source.extra_levels(theta).tolist() == [2.0 ** e]
        A_f, c_f = source.farkas_rows()
        np.testing.assert_array_equal(A_f, np.vstack([source.A, [0.0, 0.0, 0.0, 1.0]]))
        np.testing.assert_array_equal(c_f, np.append(np.zeros(30), 1.0))
    else:
        assert source.extra_values(theta).size == 0 and source.extra_jacobian(theta).shape == (0, 4)
        assert source.extra_levels(theta).size == 0
        A_f, c_f = source.farkas_rows()
        assert A_f is source.A and c_f is source.c
    assert source.extra_expression(theta) == -0.25
    assert source.extra_values(theta) is not theta


def test_column_scale_only_when_columns_differ():
    data = offset_data()
    assert S.BiasMargins(data).column_scale is None
    wide = Dataset(data.X * np.array([1.0, 2.0 ** 9, 1.0]), data.y)
    assert S.BiasMargins(wide).column_scale is not None
    edge = Dataset(data.X * np.array([1.0, 2.0 ** 7, 1.0]) / np.max(np.abs(data.X)), data.y)
    assert S.BiasMargins(edge).column_scale is None


def test_qp_problem_is_min_w_with_a_free_bias():
    data = offset_data()
    qp = S.SVMBiasQP(data)
    assert qp.model.n_params == 4 and qp.norm.free == (3,) and qp.source.positive is False
    assert S.SVMBiasQP(data, positive=True).source.positive is True
    with pytest.raises(lm.LexmarginError):
        S.SVMBiasQP((data.X, data.y))


@pytest.mark.parametrize("positive,flip", [(False, False), (False, True), (True, False), (True, True)])
def test_qp_solution_is_a_kkt_point(positive, flip):
    data = offset_data(flip=flip)
    cert = S.SVMBiasQP(data, positive=positive).solve()
    assert_qp_kkt(cert, data, positive)
    assert cert.problem == "svm_with_bias_qp"
    if positive and flip:              # b* < 0: the bound binds
        assert cert.theta[-1] == pytest.approx(0.0, abs=1e-14)
        row = next(r for r in cert.rows if r.kind == S.BIAS_ROW)
        assert (row.size, row.active, row.support) == (1, 1, 1)


def test_qp_at_any_data_scale():
    base = S.SVMBiasQP(offset_data()).solve()
    for scale in (2.0 ** -30, 2.0 ** 30):
        data = offset_data(scale=scale)
        cert = S.SVMBiasQP(data).solve()
        assert_qp_kkt(cert, data)
        np.testing.assert_allclose(cert.theta[:-1] * scale, base.theta[:-1], rtol=1e-9)
        assert cert.theta[-1] == pytest.approx(base.theta[-1], rel=1e-9)


# ---- one class: the closed form ----------------------------------------------------------------------------
@pytest.mark.parametrize("label", [1.0, -1.0])
def test_one_class_is_certified_in_closed_form(label):
    X = np.random.default_rng(0).standard_normal((6, 2)) + 3.0       # in an open half-plane
    data = Dataset(X, np.full(6, label))
    cert = S.SVMBiasQP(data).solve()
    assert cert.status == Status.OPTIMAL and cert.solver.name == "closed_form" and cert.solver.status == "optimal"
    assert cert.theta.tolist() == [0.0, 0.0, label] and not np.any(cert.multipliers)
    assert f"y = {label:+g}" in cert.solver.message and cert.finish.reason.startswith("closed form")
    np.testing.assert_array_equal(cert.margins, np.ones(6))
    assert cert.objective == 0.0 and cert.problem == "svm_with_bias_qp"
    positive = S.SVMBiasQP(data, positive=True).solve(raise_on_failure=False)
    if label > 0:
        assert positive.solver.name == "closed_form" and positive.success
    else:                                  # all negative with b >= 0: the QP itself (w != 0)
        assert positive.solver.name != "closed_form" and positive.success and np.any(positive.theta[:-1])


def test_one_class_status_comes_from_the_certificate(monkeypatch):
    """The closed form's certificate is judged like any other: a wrong closed form is not optimal."""
    data = Dataset(np.ones((3, 2)), np.ones(3))
    original = S.BiasMargins.to_scaled

    def wrong(self, theta):
        return original(self, np.asarray(theta) * 0.5)       # b = 0.5: every margin 0.5 < 1

    monkeypatch.setattr(S.BiasMargins, "to_scaled", wrong)
    cert = S.SVMBiasQP(data).solve(raise_on_failure=False)
    assert cert.status != Status.OPTIMAL and cert.solver.name == "closed_form"
    with pytest.raises(SolverError):
        S.SVMBiasQP(data).solve()


# ---- not separable --------------------------------------------------------------------------------------
def test_infeasible_qp_rows_get_a_farkas_proof():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [1.0, 3.0]])
    y = np.array([1.0, -1.0, 1.0, -1.0])
    for positive in (False, True):
        qp = S.SVMBiasQP(Dataset(X, y), positive=positive)
        for status in (Status.INFEASIBLE, Status.FAILED, Status.INACCURATE):
            got, proof = qp._infeasibility_status(status, ())
            assert got == Status.NOT_SEPARABLE and proof is not None
            rows, _ = qp.source.farkas_rows()
            assert proof.weights.size == rows.shape[0]
            assert np.max(np.abs(proof.weights @ rows)) <= 1e-12 * np.max(np.abs(rows))
        for status in (Status.MAX_ITERATIONS, Status.OPTIMAL, Status.MAX_TIME):
            assert qp._infeasibility_status(status, ()) == (status, None)
    separable = S.SVMBiasQP(offset_data())
    assert separable._infeasibility_status(Status.INFEASIBLE, ()) == (Status.INFEASIBLE, None)


def test_positive_bias_infeasible_but_separable_uses_the_bias_row():
    X = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 1.5]])
    y = np.array([-1.0, 1.0, 1.0])
    qp = S.SVMBiasQP(Dataset(X, y), positive=True)
    status, proof = qp._infeasibility_status(Status.INFEASIBLE, ())
    assert status == Status.NOT_SEPARABLE and proof.weights.size == 4 and proof.weights[-1] > 0
    assert S.SVMBiasQP(Dataset(X, y))._infeasibility_status(Status.INFEASIBLE, ()) == (Status.INFEASIBLE, None)
    cert = qp.solve(raise_on_failure=False)
    assert cert.status == Status.NOT_SEPARABLE
    with pytest.raises(NotSeparableError, match="b >= 0"):
        qp.solve()


# ---- the svm_bias model's functions ---------------------------------------------------------------------------
@pytest.mark.parametrize("sign", ["both", "positive"])
def test_model_functions_against_finite_differences(sign):
    rng = np.random.default_rng(1)
    data = Dataset(rng.standard_normal((5, 2)), np.array([1.0, -1, 1, -1, -1]))
    fns = S.BiasModelFunctions(data, sign)
    assert fns.n_params == (4 if sign == "both" else 3) and fns.d == 2
    np.testing.assert_array_equal(fns.yX, data.y[:, None] * data.X)
    theta = rng.standard_normal(fns.n_params)
    b = theta[2] ** 2 - theta[3] ** 2 if sign == "both" else theta[2] ** 2
    assert fns.bias(theta) == b
    np.testing.assert_allclose(fns.margins(theta, data), data.y * (data.X @ theta[:2] + b), rtol=1e-15)
    J = fns.margin_jacobian(theta, data)
    h = 1e-6
    for j in range(fns.n_params):
        step = np.eye(fns.n_params)[j] * h
        fd = (fns.margins(theta + step, data) - fns.margins(theta - step, data)) / (2 * h)
        np.testing.assert_allclose(J[:, j], fd, rtol=1e-7, atol=1e-8)
    lam = rng.random(5)
    H = np.zeros((fns.n_params, fns.n_params))
    for j in range(fns.n_params):
        step = np.eye(fns.n_params)[j] * h
        H[:, j] = lam @ (fns.margin_jacobian(theta + step, data) - fns.margin_jacobian(theta - step, data)) / (2 * h)
    np.testing.assert_allclose(fns.weighted_hessian(theta, data, lam), H, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(fns.weighted_hessian_diagonal(theta, data, lam), np.diag(H), rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError):
        fns.margins(theta, Dataset(data.X, data.y))


@pytest.mark.parametrize("sign", ["both", "positive"])
def test_jacobian_columns_and_the_kept_projection(sign):
    """margin_jacobian_columns is the Jacobian's columns (the bias columns alone, mixed ones, none); the projection
    y_n w.x_n is kept for one w and recomputed for another (also for the same array changed in place); the stage
    NLP of the bias block evaluates exactly the columns of the whole Jacobian."""
    rng = np.random.default_rng(7)
    data = Dataset(rng.standard_normal((6, 3)), np.array([1.0, -1, 1, -1, 1, -1]))
    fns = S.BiasModelFunctions(data, sign)
    theta = rng.standard_normal(fns.n_params)
    J = fns.margin_jacobian(theta, data)
    bias = np.arange(3, fns.n_params)
    for columns in (bias, bias[::-1], np.array([1, 3]), np.array([2, 0]), np.zeros(0, dtype=int), bias[-1:]):
        got = fns.margin_jacobian_columns(theta, data, columns)
        assert got.shape == (6, columns.size) and got.tobytes() == J[:, columns].tobytes()
    with pytest.raises(ValueError):
        fns.margin_jacobian_columns(theta, Dataset(data.X, data.y), bias)
    w = theta[:3].copy()
    first = fns.projection(w)
    assert fns.projection(w.copy()) is first and not first.flags.writeable
    assert first.tobytes() == (fns.yX @ w).tobytes()
    w[0] += 1.0
    assert fns.projection(w).tobytes() == (fns.yX @ w).tobytes()
    assert fns.margins(theta, data).tobytes() == (fns.yX @ theta[:3] + data.y * fns.bias(theta)).tobytes()
    point = stage_nlp(fns, data, bias, bias, theta).evaluate(theta[bias], None)
    assert point.jacobian.tobytes() == J[:, bias].tobytes()


@pytest.mark.parametrize("sign", ["both", "positive"])
def test_stage_hessian_is_the_diagonal_of_the_stage_nlps_own(sign):
    from lexmargin.problems.svm_bias import _diagonal_stage

    data = offset_data(n=8)
    fns = S.BiasModelFunctions(data, sign)
    rng = np.random.default_rng(0)
    theta = rng.standard_normal(fns.n_params)
    lam = rng.random(8)
    for free, objective in ((np.arange(fns.n_params), np.arange(3)),
                            (np.arange(3, fns.n_params), np.arange(3, fns.n_params))):
        nlp = stage_nlp(fns, data, free, objective, theta)
        diagonal = _diagonal_stage(nlp, fns, data, free, objective)
        assert diagonal.hessian_diagonal and not nlp.hessian_diagonal
        full = nlp.hessian(theta[free], None, lam)
        np.testing.assert_array_equal(diagonal.hessian(theta[free], None, lam), np.diag(full))
        assert np.count_nonzero(full - np.diag(np.diag(full))) == 0


def test_smallest_bias_parametrization_and_interval():
    assert S.bias_parameters(-4.0, "both").tolist() == [0.0, 2.0]
    assert S.bias_parameters(9.0, "both").tolist() == [3.0, 0.0]
    assert S.bias_parameters(9.0, "positive").tolist() == [3.0]
    assert S.bias_parameters(-9.0, "positive").tolist() == [0.0]
    y = np.array([1.0, -1.0])

    def bias(X, w, positive=False):
        return S.closed_form_bias(y[:, None] * np.asarray(X, dtype=float), y, np.asarray(w, dtype=float), positive)

    assert bias([[-1.0], [-6.0]], [1.0]) == 2.0                       # [2, 5]
    assert bias([[3.0], [-2.0]], [1.0]) == 0.0                        # [-2, 1] holds 0
    assert bias([[5.0], [2.0]], [1.0]) == -3.0                        # [-4, -3]
    assert bias([[5.0], [2.0]], [1.0], positive=True) == -1.5        # [0, -3]: empty, midpoint
    assert bias([[1.0], [2.0]], [1.0]) == -1.5                        # [0, -3]: empty, midpoint
    assert bias([[-4.0], [-6.0]], [1.0], positive=True) == 5.0        # [5, 7]
    assert bias([[-4.0], [-5.0]], [1.0]) == 4.5                       # [5, 4]: empty, midpoint
    assert S.closed_form_bias(np.array([[2.0]]), np.array([1.0]), np.zeros(1), False) == 1.0
    assert S.closed_form_bias(np.array([[2.0]]), np.array([-1.0]), np.zeros(1), False) == -1.0
    assert S.closed_form_bias(np.array([[2.0]]), np.array([-1.0]), np.zeros(1), True) == -0.5


# ---- the stages at the QP's point and the route ----------------------------------------------------------------
@pytest.mark.parametrize("sign,flip", [("both", False), ("both", True), ("positive", True), ("positive", False)])
def test_stages_at_the_qp_point(sign, flip):
    data = offset_data(flip=flip)
    w, b, result = S.svm_with_bias_qp(data, sign=sign)
    assert result.route == "qp" and result.success and result.qp.success
    first, second = result.stages
    assert [s.blocks for s in result.stages] == [("w",), ("b",)] and (first.degree, second.degree) == (1.0, 2.0)
    for stage in result.stages:
        cert = stage.certificate
        assert cert.status == Status.OPTIMAL and cert.kkt.max <= cert.tolerances.kkt
    assert first.certificate.problem == "depth_sensitive_w" and second.certificate.problem == "depth_sensitive_b"
    np.testing.assert_array_equal(first.certificate.multipliers, result.qp.multipliers)
    np.testing.assert_array_equal(w, result.qp.theta[:-1])
    qb = result.qp.theta[-1]
    if sign == "positive" and flip:
        assert b == 0.0 and result.discarded == ("b",)
    else:
        assert b == pytest.approx(qb, rel=1e-9, abs=1e-12) and not second.discarded
    theta = result.theta
    np.testing.assert_array_equal(theta[:3], w)
    np.testing.assert_array_equal(theta[3:], S.bias_parameters(b, sign))
    assert result.block_squared_norms == (pytest.approx(w @ w), pytest.approx(float(theta[3:] @ theta[3:])))
    assert first.value == pytest.approx(w @ w) and second.value == pytest.approx(abs(b), abs=1e-300)
    assert second.certificate.solver.name == "closed_form" and second.certificate.solver.status == "optimal"
    assert first.certificate.solver.name == "ipopt" and first.certificate.solver.status == result.qp.solver.status
    # the second stage fixes w and certifies the bias alone
    assert second.certificate.theta.tolist() == theta.tolist()
    assert np.array_equal(first.certificate.theta[:3], theta[:3])
    assert second.certificate.multipliers.size == data.n_samples
    margins = data.y * (data.X @ w + b)
    np.testing.assert_allclose(second.certificate.margins, margins, rtol=1e-12)


def test_symmetric_data_discards_the_bias_and_one_class_discards_w():
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    w, b, result = S.svm_with_bias_qp(Dataset(X, np.array([1.0, -1.0, 1.0, -1.0])))
    assert result.success and b == 0.0 and result.discarded == ("b",) and np.all(result.theta[-2:] == 0.0)
    np.testing.assert_allclose(w, [1.0, 1.0], atol=1e-12)
    w, b, result = S.svm_with_bias_qp(Dataset(X * 1e-3, np.ones(4)))
    assert result.success and w.tolist() == [0.0, 0.0] and b == 1.0 and result.discarded == ("w",)
    # zero_tol decides: a bias below it is discarded
    data = offset_data(flip=True)
    _, b_kept, kept = S.svm_with_bias_qp(data)
    _, b_gone, gone = S.svm_with_bias_qp(data, zero_tol=abs(b_kept) * 1.01)
    assert not kept.stages[1].discarded and gone.stages[1].discarded and b_gone == 0.0
    _, _, edge = S.svm_with_bias_qp(data, zero_tol=abs(b_kept) * 0.99)
    assert not edge.stages[1].discarded


def test_a_failed_qp_is_reported_stage_by_stage():
    data = offset_data()
    _, _, result = S.svm_with_bias_qp(data, route="qp", max_iter=2, finish=False, raise_on_failure=False)
    assert result.route == "qp" and not result.success and len(result.stages) == 1
    first = result.stages[0].certificate
    assert first.status == result.qp.status != Status.OPTIMAL
    with pytest.raises(SolverError) as info:
        S.svm_with_bias_qp(data, route="qp", max_iter=2, finish=False)
    assert info.value.certificate.problem == "svm_with_bias_qp"


def test_route_falls_back_only_when_not_certified(monkeypatch):
    data = offset_data(n=12, d=2)
    solve = S.SVMBiasQP.solve

    def inaccurate(self, *args, **kwargs):
        return replace(solve(self, *args, **kwargs), status=Status.INACCURATE)

    _, _, fast = S.svm_with_bias_qp(data)
    assert fast.route == "qp"
    monkeypatch.setattr(S.SVMBiasQP, "solve", inaccurate)
    w, b, result = S.svm_with_bias_qp(data)
    assert result.route == "depth_sensitive" and result.qp.status == Status.INACCURATE and result.success
    np.testing.assert_allclose(w, fast.stages[0].certificate.theta[:2], atol=1e-8)
    assert b == pytest.approx(float(fast.theta[2] ** 2 - fast.theta[3] ** 2), abs=1e-8)
    _, _, kept = S.svm_with_bias_qp(data, route="qp", raise_on_failure=False)
    assert kept.route == "qp" and not kept.success


def test_not_separable_never_falls_back():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [1.0, 3.0]])
    y = np.array([1.0, -1.0, 1.0, -1.0])
    for sign in ("both", "positive"):
        with pytest.raises(NotSeparableError, match="Farkas"):
            S.svm_with_bias_qp(Dataset(X, y), sign=sign)
        _, _, result = S.svm_with_bias_qp(Dataset(X, y), sign=sign, raise_on_failure=False)
        assert result.route == "qp" and result.qp.status == Status.NOT_SEPARABLE and not result.success
    _, _, general = S.svm_with_bias_qp(offset_data(n=12, d=2), route="depth_sensitive")
    assert general.route == "depth_sensitive" and general.qp is None and general.success


def test_arguments_are_checked():
    data = offset_data(n=6)
    with pytest.raises(lm.ModelError):
        S.svm_with_bias_qp(data, sign="negative")
    with pytest.raises(lm.LexmarginError):
        S.svm_with_bias_qp(data, route="simplex")
    with pytest.raises(lm.LexmarginError):
        S.svm_with_bias_qp((data.X, data.y))
    with pytest.raises(lm.LexmarginError):
        S.svm_with_bias_qp(data, zero_tol=-1.0)
    _w, _b, result = S.svm_with_bias_qp(data, zero_tol=0.0, options=SolveOptions(tol=1e-9))
    assert result.success


@pytest.mark.parametrize("sign", ["both", "positive"])
def test_general_route_result_matches_the_qp_routes_fields(sign):
    """depth_sensitive (the general route) reports the same blocks, degrees, norms and stage diagnostics."""
    data = offset_data(n=12, d=2)
    _, _, fast = S.svm_with_bias_qp(data, sign=sign)
    _, _, general = S.svm_with_bias_qp(data, sign=sign, route="depth_sensitive")
    assert general.success and general.block_names == ("w", "b") == fast.block_names
    theta = general.theta
    assert general.block_squared_norms == (pytest.approx(float(theta[:2] @ theta[:2]), rel=1e-15),
                                           pytest.approx(float(theta[2:] @ theta[2:]), rel=1e-15, abs=1e-300))
    n_params = 4 if sign == "both" else 3
    assert [s.degree for s in general.stages] == [1.0, 2.0]
    assert [s.certificate.diagnostics for s in general.stages] == [s.certificate.diagnostics for s in fast.stages]
    first, second = (s.certificate.diagnostics for s in general.stages)
    assert (first.blocks, first.free_parameters, first.fixed_blocks) == (("w",), n_params, ())
    assert (second.blocks, second.free_parameters, second.fixed_blocks) == (("b",), n_params - 2, ("w",))


# ---- what the certificates say, field by field (mutation tests) -------------------------------------------
def test_stage_certificates_field_by_field():
    for sign in ("both", "positive"):
        data = offset_data(flip=True)
        _, _, result = S.svm_with_bias_qp(data, sign=sign)
        assert result.route == "qp"
        qp, first, second = result.qp, result.stages[0].certificate, result.stages[1].certificate
        assert qp.diagnostics.model == "svm_with_bias_qp"
        assert (first.solver.name, first.solver.status, first.solver.return_status, first.solver.iterations,
                first.solver.seconds) == ("ipopt", qp.solver.status, qp.solver.return_status, qp.solver.iterations,
                                          qp.solver.seconds)
        assert first.solver.message == ("solved as the convex QP in (w, b) (its certificate: result.qp), mapped to "
                                        "the smallest bias parametrization b1 = sqrt(max(b, 0)), b2 = "
                                        "sqrt(max(-b, 0)); certified with the QP's multipliers")
        assert first.finish == qp.finish and first.norm == "l2" and second.norm == "l2"
        assert first.constraints == ("f_n(w) >= 1, shallower blocks fixed at their stage solutions; minimizing "
                                     "||w||^2 (solved as the convex QP in (w, b))")
        assert second.constraints == ("f_n(w) >= 1, shallower blocks fixed at their stage solutions; minimizing "
                                      "||b||^2 (closed form)")
        assert (second.solver.name, second.solver.status, second.solver.return_status, second.solver.iterations) == (
            "closed_form", "optimal", "closed form", 0)
        assert 0.0 <= second.solver.seconds < 60.0
        assert second.solver.message == ("w fixed: the feasible biases form an interval [lo, hi]; b1^2 + b2^2 = |b| "
                                         "is smallest at b = clip(0, lo, hi)"
                                         + (" with b >= 0" if sign == "positive" else ""))
        assert second.finish.applied is False and second.finish.reason == "closed form: nothing to finish"


def test_one_class_certificate_field_by_field():
    from lexmargin.nlp.options import Tolerances

    X = np.random.default_rng(0).standard_normal((6, 2)) * 1e-3
    data = Dataset(X, np.ones(6))
    tol = Tolerances(active=1e-6)
    cert = S.SVMBiasQP(data).solve(SolveOptions(tolerances=tol), route="dual")
    assert cert.tolerances == tol and cert.diagnostics.working_set_rounds == 0
    assert (cert.solver.return_status, cert.solver.iterations) == ("closed form", 0)
    assert 0.0 <= cert.solver.seconds < 60.0
    assert cert.finish.applied is False and cert.finish.reason == "closed form: nothing to finish"
    w, b, result = S.svm_with_bias_qp(Dataset(X, np.ones(6)))
    assert result.route == "qp" and w.tolist() == [0.0, 0.0] and b == 1.0 and result.discarded == ("w",)


def test_the_qp_route_never_raises_before_the_general_route_can_answer(monkeypatch):
    """A closed form that is not certified (to_scaled broken on purpose) hands over to the general route."""
    data = Dataset(np.ones((3, 2)), np.ones(3))
    original = S.BiasMargins.to_scaled
    monkeypatch.setattr(S.BiasMargins, "to_scaled", lambda self, theta: original(self, np.asarray(theta) * 0.5))
    _, _, result = S.svm_with_bias_qp(data)
    assert result.route == "depth_sensitive" and result.success and not result.qp.success


def test_options_and_working_set_reach_both_routes():
    from lexmargin.nlp.options import Tolerances
    from lexmargin.problems.maxmargin import WorkingSetOptions

    data = offset_data(n=12, d=2)
    stopped = S.svm_with_bias_qp(data, route="qp", options=SolveOptions(max_iter=0, raise_on_failure=False))[2]
    # max_iter reaches IPOPT (the dual route's vertex after 0 rounds is not finished; IPOPT's interior point of this
    # diagonal NLP is, and the finish alone solves it here: the certificate decides)
    assert stopped.qp.solver.name == "ipopt" and stopped.qp.solver.status == "max_iterations"
    assert stopped.qp.solver.iterations == 0 and stopped.qp.finish.applied
    _, _, fast = S.svm_with_bias_qp(data)
    assert fast.qp.solver.name == "dual_active_set"
    _, _, ws = S.svm_with_bias_qp(data, working_set=WorkingSetOptions(enabled=True))
    assert ws.qp.solver.name == "ipopt" and ws.success
    tol = Tolerances(support=1e-6)
    _, _, general = S.svm_with_bias_qp(data, route="depth_sensitive", options=SolveOptions(tolerances=tol))
    assert all(s.certificate.tolerances == tol for s in general.stages)
    # init and starts belong to the general route: the QP ignores them
    model_init = np.ones(data.n_features + 2)
    _, _, with_init = S.svm_with_bias_qp(data, init=model_init)
    assert with_init.route == "qp" and with_init.success


def test_a_stage_certificate_is_judged_by_its_own_residuals(monkeypatch):
    data = offset_data(flip=True)
    monkeypatch.setattr(S, "bias_parameters", lambda b, sign: np.full(2 if sign == "both" else 1, 0.3))
    _, _, result = S.svm_with_bias_qp(data, route="qp", raise_on_failure=False)
    assert result.qp.success and result.stages[0].certificate.status != Status.OPTIMAL


def test_messages_of_the_argument_checks_and_of_a_proof():
    data = offset_data(n=6)
    with pytest.raises(lm.ModelError, match=r"^svm_bias: sign must be one of \('positive', 'both'\); got 'negative'$"):
        S.svm_with_bias_qp(data, sign="negative")
    with pytest.raises(lm.LexmarginError, match=r"^route must be one of \('auto', 'qp', 'depth_sensitive'\); got "):
        S.svm_with_bias_qp(data, route="simplex")
    with pytest.raises(lm.LexmarginError, match=r"^expected a lexmargin Dataset, got tuple$"):
        S.svm_with_bias_qp((data.X, data.y))
    with pytest.raises(lm.LexmarginError, match=r"^expected a lexmargin Dataset, got tuple$"):
        S.SVMBiasQP((data.X, data.y))
    with pytest.raises(lm.LexmarginError, match=r"^zero_tol must be >= 0; got -1.0$"):
        S.svm_with_bias_qp(data, zero_tol=-1.0)
    X = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [1.0, 3.0]])
    y = np.array([1.0, -1.0, 1.0, -1.0])
    with pytest.raises(NotSeparableError, match="by a hyperplane with a bias b >= 0"):
        S.svm_with_bias_qp(Dataset(X, y), sign="positive")
    with pytest.raises(NotSeparableError, match="by any hyperplane with a bias"):
        S.svm_with_bias_qp(Dataset(X, y))


def test_prescaling_edges():
    data = offset_data()
    assert S.BiasMargins(data).positive is False
    X = data.X / np.max(np.abs(data.X), axis=0) * 0.75                  # every column maximum 0.75
    edge = Dataset(X * np.array([1.0, 256.0, 1.0]), data.y)       # column maxima 0.75, 192, 0.75 and the bias 1
    source = S.BiasMargins(edge)
    assert source.scale_exponent == 0                              # max |A| = 192: exponent 8, not rescaled
    assert source.column_scale is None                             # spread exactly 2^8: no variable scaling
    spread = Dataset(X * np.array([1.0, 256.0, 0.25]), data.y)     # not rescaled, column maxima 192 and 0.1875
    assert S.BiasMargins(spread).scale_exponent == 0 and S.BiasMargins(spread).column_scale is not None
    big = Dataset(X * np.array([1.0, 512.0, 1.0]), data.y)
    assert S.BiasMargins(big).scale_exponent == 9 and S.BiasMargins(big).column_scale is not None


def test_stage_certificates_use_the_given_tolerances():
    from lexmargin.nlp.options import Tolerances

    data = offset_data(flip=True)
    _, _, default = S.svm_with_bias_qp(data)
    tol = Tolerances(support=0.5)
    _, _, coarse = S.svm_with_bias_qp(data, options=SolveOptions(tolerances=tol))
    assert coarse.route == "qp"
    first, base = coarse.stages[0].certificate, default.stages[0].certificate
    assert first.tolerances == tol
    assert sum(r.support for r in first.rows) < sum(r.support for r in base.rows)
