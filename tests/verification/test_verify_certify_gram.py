"""unit_gram (lexmargin/nlp/certify.py): the Gram matrix decides LICQ and null spaces only where it is full rank
beyond doubt (its eigenvalues within GRAM_CONDITION, and 100 rank_tol^2, of each other), only for k <= n rows and
from GRAM_MIN_SIZE entries on; rows are normalized to unit length first (unless asked not to)."""

import importlib

import numpy as np
import pytest

C = importlib.import_module("lexmargin.nlp.certify")


def rows_with_singular_values(s, n, seed=0):
    rng = np.random.default_rng(seed)
    V, _ = np.linalg.qr(rng.standard_normal((n, len(s))))
    return np.asarray(s, dtype=float)[:, None] * V.T


@pytest.fixture
def small(monkeypatch):
    monkeypatch.setattr(C, "GRAM_MIN_SIZE", 4)


def test_unit_gram_only_for_k_le_n_rows_from_the_minimum_size(monkeypatch):
    U = rows_with_singular_values([1.0, 0.5], 4)            # 8 entries
    monkeypatch.setattr(C, "GRAM_MIN_SIZE", 8)
    assert C.unit_gram(U, 1e-9) is not None                 # exactly the minimum size
    monkeypatch.setattr(C, "GRAM_MIN_SIZE", 9)
    assert C.unit_gram(U, 1e-9) is None
    monkeypatch.setattr(C, "GRAM_MIN_SIZE", 1)
    assert C.unit_gram(np.zeros((0, 4)), 1e-9) is None
    assert C.unit_gram(np.ones((1, 3)), 1e-9) is not None    # one row
    square = rows_with_singular_values([1.0, 0.7, 0.4], 3)
    assert C.unit_gram(square, 1e-9) is not None            # k == n
    assert C.unit_gram(np.vstack([square, square[:1] + 1.0]), 1e-9) is None   # k > n


def test_unit_gram_normalizes_rows(small):
    U = rows_with_singular_values([1.0, 0.5, 0.25], 6) * np.array([[3.0], [0.2], [7.0]])
    gram = C.unit_gram(U, 1e-9)
    norms = np.linalg.norm(U, axis=1)
    np.testing.assert_allclose(gram.norms, norms, rtol=1e-14)
    unit = U / norms[:, None]
    np.testing.assert_allclose(gram.matrix, unit @ unit.T, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(np.diag(gram.matrix), 1.0, rtol=1e-14)
    np.testing.assert_allclose(gram.spectrum, np.linalg.eigvalsh(unit @ unit.T), rtol=1e-12)
    raw = C.unit_gram(U, 1e-9, normalize=False)
    assert raw.norms.tolist() == [1.0, 1.0, 1.0]
    np.testing.assert_allclose(raw.matrix, U @ U.T, rtol=1e-14)
    # rows shorter than 1 are fine; a zero row is not
    assert C.unit_gram(U * 0.01, 1e-9) is not None
    zero = U.copy()
    zero[1] = 0.0
    assert C.unit_gram(zero, 1e-9) is None
    assert C.gram_spectrum(U, 1e-9) is not None
    np.testing.assert_allclose(C.gram_spectrum(U, 1e-9), raw.spectrum, rtol=1e-14)
    np.testing.assert_allclose(C.gram_spectrum(U, 1e-9, normalize=True), gram.spectrum, rtol=1e-14)


def test_unit_gram_only_when_full_rank_beyond_doubt(small):
    def gram(s, rank_tol=1e-9):
        return C.unit_gram(rows_with_singular_values(s, 6), rank_tol, normalize=False)

    assert gram([10.0, 0.5]) is not None                     # eigenvalue ratio 2.5e-3 > 1e-4
    assert gram([10.0, 0.05]) is None                        # 2.5e-5 < 1e-4
    assert gram([1.0, 1.0, 0.001]) is None                   # the smallest against the largest
    assert gram([100.0, 0.1, 0.005]) is None
    # 100 rank_tol^2 = 2.5e-3 for rank_tol = 0.005
    assert gram([1.0, np.sqrt(2.51e-3)], 0.005) is not None
    assert gram([1.0, np.sqrt(2.49e-3)], 0.005) is None
    assert gram([1.0, np.sqrt(1e-3)], 0.005) is None
    assert gram([1.0, 0.999], 0.1) is None                   # 100 rank_tol^2 = 1: never
    w = gram([2.0, 1.0]).spectrum
    np.testing.assert_allclose(w, [1.0, 4.0], rtol=1e-12)


# ---- residuals, the row space, the masked second order (mutation tests) -----------------------------------
def qp(Q, q, z, lower, upper, A=None, b=None, lam=None, lo=None, up=None, gradient_scale=None):
    from verify_helpers import QP

    n = len(q)
    A = np.zeros((0, n)) if A is None else np.asarray(A, dtype=float)
    return QP(np.asarray(Q, dtype=float), np.asarray(q, dtype=float), A,
              np.zeros(A.shape[0]) if b is None else np.asarray(b, dtype=float), np.zeros((0, n)), np.zeros(0),
              np.asarray(lower, dtype=float), np.asarray(upper, dtype=float), np.asarray(z, dtype=float),
              np.zeros(A.shape[0]) if lam is None else np.asarray(lam, dtype=float), np.zeros(0),
              np.zeros(n) if lo is None else np.asarray(lo, dtype=float),
              np.zeros(n) if up is None else np.asarray(up, dtype=float), np.ones(A.shape[0]), np.zeros(0),
              gradient_scale=gradient_scale, diagonal=True)


def test_residuals_without_a_scale_use_the_gradient_scale():
    from lexmargin.nlp.nlp import extend

    p = qp(np.diag([2.0, 2.0]), [-1.0, 0.5], [0.5, 0.0], [-np.inf, -np.inf], [np.inf, np.inf],
           gradient_scale=np.array([100.0, 100.0]))
    p = p.__class__(**{**p.__dict__, "q": np.array([-1.0 + 1e-3, 0.5])})       # a stationarity residual
    nlp = p.nlp()
    point = nlp.evaluate(p.z)
    ext = extend(nlp, point, p.z)
    lam = np.zeros(ext.values.size)
    report = p.report()
    diagonal = C.hessian_diagonal_of(nlp, p.z, None, lam)
    assert C.residuals(ext, lam, diagonal=diagonal) == report.residuals
    assert C.residuals(ext, lam).stationarity == pytest.approx(0.5 / 100.0, rel=1e-12)
    # the decrement: (1e-3^2 + 0.5^2) / (2 * 2) over the objective scale ||g~||_inf ||z||_inf = 100 * 0.5 (no
    # multipliers); without the diagonal it is not computed (0)
    assert report.residuals.decrement == pytest.approx((1e-6 + 0.25) / 4.0 / 50.0, rel=1e-12)
    assert C.residuals(ext, lam).decrement == 0.0


def test_row_space_block_rank_rule_and_zero_rows():
    tol = 1e-6
    for angle, rank in ((1.5 * tol, 1), (3.0 * tol, 2)):
        J = np.array([[1.0, 0.0], [np.cos(angle), np.sin(angle)]])
        got, P = C._row_space_block(J, np.array([1]), tol)
        assert got == rank
    got, P = C._row_space_block(np.zeros((2, 3)), np.array([0, 2]), 1e-9)
    assert got == 0 and P.shape == (2, 2) and not np.any(P)
    got, P = C._row_space_block(np.zeros((0, 3)), np.array([0, 2]), 1e-9)
    assert got == 0 and P.shape == (2, 2)
    got, P = C._row_space_block(np.array([[1.0, 1.0, 0.0]]), np.array([0, 2]), 1e-9)
    assert got == 1
    np.testing.assert_allclose(P, [[0.5, 0.0], [0.0, 0.0]], atol=1e-15)


def test_masked_second_order_with_a_shared_gram_and_fixed_variables(small):
    """The shared Gram matrix belongs to the support rows over all columns: with variables fixed at bounds the
    rows restricted to the others are factored anew."""
    J = np.array([[1.0, 1.0, 0.0], [2.0, 1.0, 0.0]])
    h = np.array([2.0, 2.0, 0.0])
    tol = C.Tolerances()
    gram = C.unit_gram(J, tol.rank)
    assert gram is not None
    fixed = C.masked_second_order(h, J, tol, support_fixed=(0,), gram=gram)
    plain = C.masked_second_order(h, J, tol, support_fixed=(0,))
    assert (fixed.null_space_dimension, fixed.strict) == (plain.null_space_dimension, plain.strict) == (1, None)
    free = C.masked_second_order(h, J, tol, gram=gram)
    assert free.strict is None and free.null_space_dimension == 1
    assert C.masked_second_order(h, J[:1], tol).strict is None


def test_inactive_bounds_do_not_fix_variables_in_the_second_order_check():
    """min z0^2 over z1 in [-10, 10] at z = 0: every z1 is a minimizer (not strict); the inactive bounds of z1
    must not be treated as fixing it."""
    p = qp(np.diag([2.0, 0.0]), [0.0, 0.0], [0.0, 0.0], [-np.inf, -10.0], [np.inf, 10.0])
    report = p.report()
    assert report.residuals.max == 0.0
    assert report.second_order.strict is None and report.second_order.null_space_dimension == 2
    bounded = qp(np.diag([2.0, 0.0]), [0.0, 1.0], [0.0, -10.0], [-np.inf, -10.0], [np.inf, 10.0],
                 lo=[0.0, 1.0])
    tight = bounded.report()
    assert tight.residuals.max == 0.0 and tight.second_order.strict is True


def test_the_decrement_is_relative_to_the_inequality_rows_multipliers_only():
    """The decrement's reference is max(sum over inequality rows of |lambda_i| s_i, ||g~|| ||z||): an equality row's
    multiplier (here 100 times the inequality's) is not part of it."""
    from verify_helpers import QP

    # min z1^2 + z2^2 (Q = 2 I), z1 - 0.2 >= 0 (lambda 0.1), z1 + z2 - 1 = 0 (mu 10), at z = (0.5, 0.5): the
    # Lagrangian's gradient (1, 1) - 0.1 (1, 0) - 10 (1, 1) = (-9.1, -9) is a residual the decrement measures
    p = QP(np.diag([2.0, 2.0]), np.zeros(2), np.array([[1.0, 0.0]]), np.array([0.2]), np.array([[1.0, 1.0]]),
           np.array([1.0]), np.full(2, -np.inf), np.full(2, np.inf), np.array([0.5, 0.5]), np.array([0.1]),
           np.array([10.0]), np.zeros(2), np.zeros(2), np.ones(1), np.ones(1), diagonal=True)
    report = p.report()
    lagrangian = np.array([1.0 - 0.1 - 10.0, 1.0 - 10.0])
    gain = float(np.sum(lagrangian ** 2 / (2.0 * 2.0)))
    reference = max(0.1 * 1.0, 1.0 * 0.5)            # inequality rows' |lambda| s, and ||g~||_inf ||z||_inf
    assert report.residuals.decrement == pytest.approx(gain / reference, rel=1e-9)
