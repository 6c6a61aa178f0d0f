"""What certify computes once and shares (lexmargin/nlp/certify.py): ``balance`` (the stationarity scale and the
multiplier weights from one pass), ``take_rows`` (no copy when every row is selected), the scale and weights kept on
the KKTReport (the finish's ``well_identified`` reads them), and ``RowGram`` (a caller's A A^T, used only for the
very array the certificate evaluates).  Each shared value must equal what the certificate computes on its own."""

import importlib
from dataclasses import replace

import numpy as np
import pytest

from lexmargin.nlp.options import Tolerances

C = importlib.import_module("lexmargin.nlp.certify")
F = importlib.import_module("lexmargin.nlp.finish")
D = importlib.import_module("lexmargin.problems.dual")


@pytest.mark.parametrize("case", ["mixed", "all_nonzero", "all_zero", "nan", "no_rows"])
def test_balance_equals_scale_and_weights(case):
    rng = np.random.default_rng(3)
    J, lam, g = rng.standard_normal((7, 5)), rng.standard_normal(7), rng.standard_normal(5)
    gs = np.abs(g) * 2.0
    if case == "mixed":
        lam[[1, 4]] = 0.0
    elif case == "all_zero":
        lam[:] = 0.0
    elif case == "nan":
        lam[2] = np.nan
    elif case == "no_rows":
        J, lam = np.zeros((0, 5)), np.zeros(0)
    for scale_of_g in (None, gs):
        scale, weights = C.balance(g, J, lam, scale_of_g)
        expected = C.stationarity_scale(g, J, lam, scale_of_g)
        factors = C.equilibration(C.column_terms(g, J, lam, scale_of_g))[1]
        np.testing.assert_allclose(weights, C.multiplier_weights(J, lam, factors), rtol=1e-15)
        if case == "nan":
            assert np.isnan(weights[2])
        assert scale == expected or (np.isnan(scale) and np.isnan(expected))


def test_balance_scale_is_the_larger_of_gradient_and_terms():
    J = np.array([[1.0, -2.0], [0.5, 0.0]])
    lam = np.array([3.0, -4.0])
    scale, weights = C.balance(np.array([0.1, 0.1]), J, lam)
    assert scale == 6.0                      # |J|^T |lam| = (3 * 1 + 4 * 0.5, 3 * 2) = (5, 6)
    # each component brought to the scale 6: factors (6 / 5, 1); row 0: 3 max(1 * 1.2, 2), row 1: 4 * 0.5 * 1.2
    np.testing.assert_allclose(weights, [6.0, 2.4], rtol=1e-15)
    # with term sizes above |J| (entries that are sums that cancel) the terms and weights follow them
    terms, sized = C.terms_and_weights(np.array([0.1, 0.1]), J, lam, jacobian_scale=np.array([[1.0, 2.0], [2.0, 1.0]]))
    np.testing.assert_allclose(terms, [11.0, 10.0])
    np.testing.assert_allclose(sized, [3.0 * max(1.0, 2.0 * 1.1), 4.0 * max(2.0, 1.1)], rtol=1e-15)
    big, _ = C.balance(np.array([100.0, 0.0]), J, lam)
    assert big == 100.0
    at_scale, _ = C.balance(np.array([0.0, 0.0]), J, lam, gradient_scale=np.array([0.0, 7.5]))
    assert at_scale == 7.5
    assert C.balance(np.zeros(2), np.zeros((1, 2)), np.zeros(1))[0] == C.TINY


def test_take_rows_copies_only_a_proper_subset():
    J = np.arange(12.0).reshape(4, 3)
    assert C.take_rows(J, np.ones(4, dtype=bool)) is J
    part = C.take_rows(J, np.array([True, False, True, True]))
    np.testing.assert_array_equal(part, J[[0, 2, 3]])
    assert C.take_rows(J, np.zeros(4, dtype=bool)).shape == (0, 3)


def _nlp_report(seed=0, n=30, d=12):
    """A linear max-margin certificate from the dual route's own pipeline (its NLP and report)."""
    import lexmargin
    from lexmargin.problems.maxmargin import MaxMarginProblem, margin_nlp

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.where(X[:, 0] >= 0, 1.0, -1.0)
    X[:, 0] += 0.5 * y
    problem = MaxMarginProblem(lexmargin.load_model("linear", input_dim=d), lexmargin.Dataset(X, y))
    cert = problem.solve()
    nlp = margin_nlp(problem.source, problem.lift, np.arange(n))
    theta = problem.source.to_scaled(cert.theta)
    lam = np.ldexp(cert.multipliers, round(problem.norm.objective_degree * problem.source.scale_exponent))
    return problem, nlp, problem.lift.start(theta), lam


def test_report_keeps_the_scale_and_weights_it_decided_with():
    _, nlp, z, lam = _nlp_report()
    report = C.certify(nlp, z, lam)
    ext = report.extended
    assert report.stationarity_scale == C.stationarity_scale(ext.point.gradient, ext.jacobian, report.multipliers,
                                                             ext.point.gradient_scale)
    factors = C.equilibration(C.column_terms(ext.point.gradient, ext.jacobian, report.multipliers,
                                             ext.point.gradient_scale))[1]
    np.testing.assert_allclose(report.weights, C.multiplier_weights(ext.jacobian, report.multipliers, factors),
                               rtol=1e-15)
    np.testing.assert_array_equal(report.support, report.weights > Tolerances().support * report.stationarity_scale)


def test_well_identified_with_and_without_the_reports_numbers():
    from dataclasses import replace

    _, nlp, z, lam = _nlp_report()
    tol = Tolerances()
    report = C.certify(nlp, z, lam)
    bare = replace(report, stationarity_scale=None, weights=None)
    assert F.well_identified(report, tol) == F.well_identified(bare, tol)
    # the kept numbers decide: weights that make every near-active row unclear fail it
    assert F.well_identified(report, tol) is True
    assert F.well_identified(replace(report, weights=np.zeros_like(report.weights)), tol) is False
    assert F.well_identified(replace(bare, multipliers=np.zeros_like(report.multipliers)), tol) is False
    # a report with only one of the two numbers is recomputed as a whole (never half from the report)
    assert F.well_identified(replace(report, weights=None), tol) is True
    # recomputed, the scale includes the point's gradient scale: a huge one makes every weight unclear
    ext = report.extended
    loud = replace(ext, point=replace(ext.point, gradient_scale=np.full(ext.point.gradient.size, 1e12)))
    assert F.well_identified(replace(bare, extended=loud), tol) is False


def test_curvature_scale_uses_a_given_scale():
    _, nlp, z, lam = _nlp_report()
    report = C.certify(nlp, z, lam)
    ext = report.extended
    size = float(np.max(np.abs(ext.z)))
    assert C.curvature_scale(ext, report.multipliers) == pytest.approx(report.stationarity_scale / size, rel=1e-15)
    assert C.curvature_scale(ext, report.multipliers, 3.0) == 3.0 / size


def test_row_gram_block_only_for_the_very_array():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((6, 40))
    gram = C.RowGram(A, A @ A.T)
    mask = np.array([True, False, True, True, False, True])
    np.testing.assert_array_equal(gram.block(A, mask), (A @ A.T)[np.ix_([0, 2, 3, 5], [0, 2, 3, 5])])
    assert gram.block(A, np.ones(6, dtype=bool)) is gram.matrix
    assert gram.block(A[slice(None)], mask) is not None          # a view of the same memory and layout
    assert gram.block(A.copy(), mask) is None                    # equal numbers elsewhere: formed again
    assert gram.block(A[:5], mask[:5]) is None                   # another shape
    assert gram.block(np.asfortranarray(A), mask) is None        # another layout
    assert gram.block(A[:, :20], mask) is None                   # same start, other shape / strides
    assert gram.block(A.astype(np.float32), mask) is None


def test_certify_with_a_row_gram_equals_certify_without(monkeypatch):
    monkeypatch.setattr(C, "GRAM_MIN_SIZE", 4)                    # the Gram route on a small problem
    _, nlp, z, lam = _nlp_report()
    J = nlp.evaluate(z, None).jacobian
    plain = C.certify(nlp, z, lam)
    shared = C.certify(nlp, z, lam, row_gram=C.RowGram(J, J @ J.T))
    assert plain.licq.holds and shared.licq.holds
    assert shared.licq.rank == plain.licq.rank
    assert shared.licq.smallest_singular_value == pytest.approx(plain.licq.smallest_singular_value, rel=1e-12)
    assert shared.residuals == plain.residuals
    assert shared.second_order.strict == plain.second_order.strict
    # the certificate uses the Gram matrix it is given for that very array ...
    calls = []
    real = C.unit_gram

    def spy(rows, rank_tol, normalize=True, product=None):
        calls.append(product)
        return real(rows, rank_tol, normalize, product)

    monkeypatch.setattr(C, "unit_gram", spy)
    C.certify(nlp, z, lam, row_gram=C.RowGram(J, J @ J.T))
    assert calls[-1] is not None
    # ... and another array's is not used
    C.certify(nlp, z, lam, row_gram=C.RowGram(J.copy(), J @ J.T))
    assert calls[-1] is None


def test_dual_keeps_a_a_transpose_of_wide_data_only():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((8, 30))
    r = np.ones(8)
    wide = D.least_distance(A, r)
    assert wide.full_gram
    np.testing.assert_array_equal(wide.row_gram, A @ A.T)
    tall = D.least_distance(rng.standard_normal((200, 3)), np.ones(200))
    assert not tall.full_gram and tall.row_gram is None
    # free columns (the SVM's bias, in units 2^-5 of the others so that the solve scales it): A A^T of the rows as
    # given, from the regularized columns' product and the free column's own term
    biased = np.hstack([A, np.full((8, 1), 2.0 ** -5) * np.sign(rng.standard_normal((8, 1)))])
    free = D.least_distance(biased, r, free=(30,))
    assert free.full_gram
    np.testing.assert_allclose(free.row_gram, biased @ biased.T, rtol=1e-14, atol=1e-13)
    tall_free = D.least_distance(np.hstack([rng.standard_normal((200, 3)), np.ones((200, 1))]), np.ones(200),
                                 free=(3,))
    assert not tall_free.full_gram and tall_free.row_gram is None


def test_unit_svd_gives_licq_and_the_row_space_their_own_numbers():
    rng = np.random.default_rng(4)
    J = rng.standard_normal((4, 7)) * np.array([[1.0], [30.0], [0.01], [2.0]])
    svd = C.unit_svd(J)
    np.testing.assert_allclose(svd.values, np.linalg.svd(C.unit_rows(J), compute_uv=False), rtol=1e-13)
    alone, shared = C.licq(J, 1e-9), C.licq(J, 1e-9, svd=svd)
    assert (shared.rank, shared.holds, shared.n_active) == (alone.rank, alone.holds, alone.n_active)
    assert shared.smallest_singular_value == pytest.approx(alone.smallest_singular_value, rel=1e-12)
    # with active bounds the columns change: the SVD of all columns is not used
    fixed = C.licq(J, 1e-9, fixed=[2], svd=C.UnitSVD(np.ones(4), np.eye(4, 7)))
    assert fixed == C.licq(J, 1e-9, fixed=[2])
    columns = np.array([1, 5])
    k0, P0 = C._row_space_block(J, columns, 1e-9)
    k1, P1 = C._row_space_block(J, columns, 1e-9, svd=svd)
    assert k0 == k1 == 4
    np.testing.assert_allclose(P1, P0, rtol=0, atol=1e-13)
    dependent = np.vstack([J[:2], J[0] + J[1]])
    assert C._row_space_block(dependent, columns, 1e-9, svd=C.unit_svd(dependent))[0] == 2
    assert C.licq(dependent, 1e-9, svd=C.unit_svd(dependent)).holds is False
    # the SVD it is given is the one used
    fake = C.UnitSVD(np.array([1.0, 1e-12, 1e-12, 1e-12]), np.eye(4, 7))
    assert C.licq(J, 1e-9, svd=fake).rank == 1
    assert C._row_space_block(J, columns, 1e-9, svd=fake)[0] == 1


def test_certify_shares_one_svd_where_the_masked_second_order_needs_it(monkeypatch):
    """The SVM's stage NLP (diagonal Hessian with zeros on the bias): one unit_svd for LICQ and the second-order
    check, and the report equals the one computed without sharing; an l2 problem (definite Hessian) computes none."""
    import lexmargin

    rng = np.random.default_rng(6)
    X = rng.standard_normal((40, 5))
    y = np.where(X[:, 0] + 0.3 >= 0, 1.0, -1.0)
    X[:, 0] += 0.4 * y
    _, _, result = lexmargin.svm_with_bias(lexmargin.Dataset(X, y))
    qp = result.qp
    calls, real = [], C.unit_svd
    monkeypatch.setattr(C, "unit_svd", lambda rows: calls.append(rows.shape) or real(rows))
    from lexmargin.problems.maxmargin import margin_nlp
    from lexmargin.problems.svm_bias import SVMBiasQP

    problem = SVMBiasQP(lexmargin.Dataset(X, y))
    nlp = margin_nlp(problem.source, problem.lift, np.arange(40))
    z = problem.lift.start(problem.source.to_scaled(qp.theta))
    lam = np.ldexp(qp.multipliers, round(problem.norm.objective_degree * problem.source.scale_exponent))
    shared = C.certify(nlp, z, lam)
    assert len(calls) == 1
    alone = C.second_order_of(nlp, z, None, shared.extended, shared.multipliers, shared.active, shared.support,
                              Tolerances(), shared.licq.holds)
    assert shared.second_order.strict == alone.strict is True
    assert shared.second_order.min_eigenvalue == pytest.approx(alone.min_eigenvalue, rel=1e-12)
    assert shared.second_order.null_space_dimension == alone.null_space_dimension
    own = C.licq(C.take_rows(shared.extended.jacobian, shared.active), Tolerances().rank)
    assert (shared.licq.rank, shared.licq.holds, shared.licq.n_active) == (own.rank, own.holds, own.n_active)
    assert shared.licq.smallest_singular_value == pytest.approx(own.smallest_singular_value, rel=1e-12)
    _, nlp2, z2, lam2 = _nlp_report()
    calls.clear()
    C.certify(nlp2, z2, lam2)
    assert calls == []


def test_hessian_diagonal_of_reads_the_nlps_own_hessian():
    from dataclasses import replace

    _, nlp, z, lam = _nlp_report()
    full = np.concatenate([lam, np.zeros(3)])
    np.testing.assert_array_equal(C.hessian_diagonal_of(nlp, z, None, full),
                                  np.asarray(nlp.hessian(z, None, lam), dtype=float).reshape(-1))
    with pytest.raises(ValueError, match="no Hessian"):
        C.hessian_diagonal_of(replace(nlp, hessian=None), z, None, full)
    assert C._definite(np.array([2.0, 1.0]), Tolerances()) is True
    assert C._definite(np.array([2.0, 0.0]), Tolerances()) is False
    assert C._definite(np.array([2.0, 1e-13]), Tolerances(curvature=1e-12)) is False


def test_the_dual_routes_certificate_reads_the_solves_gram_matrix(monkeypatch):
    """Through max_margin on wide data: the certificate's LICQ is computed from the block of the dual solve's own
    A A^T (handed over as a RowGram of the very Jacobian it evaluates), and equals the certificate computed alone."""
    import lexmargin as lm
    from lexmargin.sweep import separable_data

    data = separable_data(40, 600, 3)                      # wide: the dual forms A A^T; 40 x 600 rows >= GRAM_MIN_SIZE
    model = lm.load_model("linear", input_dim=600)
    products, real = [], C.unit_gram

    def spy(rows, rank_tol, normalize=True, product=None):
        products.append((np.asarray(rows).shape, product))
        return real(rows, rank_tol, normalize, product)

    monkeypatch.setattr(C, "unit_gram", spy)
    shared = lm.max_margin(model, data)
    assert shared.status == "optimal" and shared.solver.name == "dual_active_set"
    k = int(np.sum(shared.margins <= 1 + 1e-9))
    used = [p for shape, p in products if shape[0] == k and p is not None]
    assert used, "the certificate formed its Gram matrix itself"
    X = data.y[:, None] * data.X
    active = np.flatnonzero(shared.margins <= 1 + 1e-9)
    np.testing.assert_allclose(used[-1], X[active] @ X[active].T, rtol=1e-12)
    monkeypatch.setattr(C, "RowGram", lambda rows, matrix: None)         # no shared matrix: the same certificate
    alone = lm.max_margin(lm.load_model("linear", input_dim=600), data)
    assert alone.licq.rank == shared.licq.rank and alone.licq.holds == shared.licq.holds
    assert alone.licq.smallest_singular_value == pytest.approx(shared.licq.smallest_singular_value, rel=1e-10)
    np.testing.assert_allclose(alone.theta, shared.theta, rtol=0, atol=0)


def test_report_balance_returns_the_kept_pair_or_recomputes_it_whole():
    from dataclasses import replace

    _, nlp, z, lam = _nlp_report()
    report = C.certify(nlp, z, lam)
    scale, weights = report.balance()
    assert scale is report.stationarity_scale and weights is report.weights
    ext = report.extended
    alone = C.balance(ext.point.gradient, ext.jacobian, report.multipliers, ext.point.gradient_scale)
    for missing in ({"weights": None}, {"stationarity_scale": None}, {"weights": None, "stationarity_scale": None}):
        again = replace(report, **missing).balance()
        assert again[0] == alone[0] == scale
        np.testing.assert_array_equal(again[1], alone[1])
        np.testing.assert_array_equal(again[1], weights)
    # recomputed with the point's gradient scale (not the bare gradient)
    loud = replace(ext, point=replace(ext.point, gradient_scale=np.full(ext.point.gradient.size, 1e12)))
    assert replace(report, extended=loud, weights=None).balance()[0] == 1e12


def _cancelling_row_nlp():
    """min phi with g = (1, 1e-3 + 1e-9) and one row c = z_0 + 1e-3 z_1 - 1 >= 0 whose second coefficient is a
    sum of terms of size 5 that cancel (``Point.jacobian_scale`` = [[1, 5]]); lambda = 1 balances g but for 1e-9
    in the second component: 2e-10 of its terms (5), or 1e-6 of |J| alone (1e-3)."""
    from lexmargin.nlp.nlp import NLP, Point, Rows

    g = np.array([1.0, 1e-3 + 1e-9])
    J = np.array([[1.0, 1e-3]])

    def evaluate(z, p=None, scale=True):
        z = np.asarray(z, dtype=float)
        return Point(float(g @ z), g.copy(), J @ z - 1.0, J.copy(), np.ones(1), None,
                     np.array([[1.0, 5.0]]) if scale else None)

    def hessian(z, p, multipliers):
        return np.zeros(2)

    nlp = NLP("cancelling", 2, (Rows("margin", 1),), -np.inf, np.inf, None, evaluate, theta=lambda z: z,
              hessian=hessian, hessian_diagonal=True)
    return nlp, evaluate


def test_the_point_jacobian_scale_reaches_every_measure_of_the_certificate():
    """``Point.jacobian_scale`` (the terms of each row's gradient) is what stationarity, dual feasibility, the
    balance (scale and weights), the stationarity scale and the curvature scale measure against, in certify and in
    a report's recomputed balance: without it the same point reads 1e-6, not 1e-9."""
    nlp, evaluate = _cancelling_row_nlp()
    z = np.array([1.0, 0.0])
    report = C.certify(nlp, z, [1.0])
    bare = C.certify(nlp, z, [1.0], point=evaluate(z, scale=False))
    assert report.residuals.stationarity == pytest.approx(1e-9 / 5.0, rel=1e-6)
    assert bare.residuals.stationarity == pytest.approx(1e-9 / (1e-3 + 1e-9), rel=1e-6)
    assert report.kkt_met(Tolerances()) and not bare.kkt_met(Tolerances())
    # residuals recomputes the same terms when not given them
    assert C.residuals(report.extended, report.multipliers) == report.residuals
    assert C.residuals(bare.extended, bare.multipliers) == bare.residuals
    # a Point checks the scale's shape: one row of n entries per row
    from lexmargin.nlp.nlp import Point
    with pytest.raises(ValueError, match=r"^jacobian_scale has shape \(1, 3\); expected \(1, 2\)$"):
        Point(0.0, np.zeros(2), np.zeros(1), np.zeros((1, 2)), np.ones(1), None, np.zeros((1, 3)))
    scale = np.array([[1.0, 5.0]])
    g, J, lam = evaluate(z).gradient, evaluate(z).jacobian, np.array([1.0])
    assert C.stationarity_scale(g, J, lam, None, scale) == 5.0 and C.stationarity_scale(g, J, lam) == 1.0
    expected = C.balance(g, J, lam, None, scale)
    assert expected != C.balance(g, J, lam)
    kept = report.balance()
    recomputed = replace(report, stationarity_scale=None, weights=None).balance()
    for scale_of, weights in (kept, recomputed):
        assert scale_of == expected[0] and np.array_equal(weights, expected[1])
    ext = report.extended
    assert C.curvature_scale(ext, lam) == 5.0 and C.curvature_scale(bare.extended, lam) == 1.0     # max |z| = 1
    # dual feasibility: a negative multiplier's contribution in each component is its terms, -lambda J~_ij, over
    # the component's T_j (here T = (1, |g_1| ~ 1e-3)): 1e-9 * 5 / 1e-3 with the scale, 1e-9 * 1e-3 / 1e-3 without
    negative = C.certify(nlp, z, [-1e-9])
    bare_negative = C.certify(nlp, z, [-1e-9], point=evaluate(z, scale=False))
    assert negative.residuals.dual_feasibility == pytest.approx(5e-9 / (1e-3 + 1e-9), rel=1e-9)
    assert bare_negative.residuals.dual_feasibility == pytest.approx(1e-9, rel=1e-6)


def test_terms_and_weights_take_the_scale_rows_of_the_rows_with_a_multiplier():
    """With a zero multiplier the terms and weights read only the other rows of ``jacobian_scale`` (three rows, two
    variables, one zero multiplier: the rows kept are as many as the variables)."""
    J = np.array([[1.0, -2.0], [5.0, 5.0], [0.5, 0.0]])
    scale = np.array([[3.0, 2.0], [9.0, 9.0], [0.5, 4.0]])
    lam = np.array([1.0, 0.0, -2.0])
    terms, weights = C.terms_and_weights(np.zeros(2), J, lam, jacobian_scale=scale)
    np.testing.assert_array_equal(terms, [3.0 * 1 + 0.5 * 2, 2.0 * 1 + 4.0 * 2])     # (4, 10): row 1 not read
    factors = C.equilibration(terms)[1]                                              # (10 / 4, 1)
    np.testing.assert_allclose(weights, [1.0 * max(3.0 * 2.5, 2.0), 0.0, 2.0 * max(0.5 * 2.5, 4.0)], rtol=1e-15)
    assert factors.tolist() == [2.5, 1.0]
    same = C.terms_and_weights(np.zeros(2), J[[0, 2]], lam[[0, 2]], jacobian_scale=scale[[0, 2]])
    np.testing.assert_array_equal(same[0], terms)
    np.testing.assert_array_equal(same[1], weights[[0, 2]])


def test_licq_of_non_finite_rows_does_not_hold():
    """Rows with NaN/inf (a point outside the model's domain): LICQ(rows + fixed, rank 0, NaN, False)."""
    for rows, fixed in ((np.array([[1.0, np.nan], [0.0, 1.0]]), ()), (np.array([[np.inf, 0.0]]), (1,))):
        result = C.licq(rows, fixed=fixed)
        assert (result.n_active, result.rank, result.holds) == (rows.shape[0] + len(fixed), 0, False)
        assert result.holds is False and np.isnan(result.smallest_singular_value)
    assert C.licq(np.array([[1.0, 0.0], [0.0, 1.0]])).holds is True
