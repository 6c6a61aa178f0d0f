"""Farkas proofs (lexmargin.problems.separability): a proof is accepted exactly when its weights certify, in
double precision, that A theta + c >= 1 has no solution; rows at any scale are handled."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from verify_helpers import PROPERTY

from lexmargin.problems import separability as S

EPS = np.finfo(float).eps


def test_verify_accepts_exact_weights():
    A = np.array([[1.0, 2.0], [-1.0, -2.0], [3.0, 0.0]])
    c = np.zeros(3)
    proof = S.verify(A, c, [2.0, 2.0, 0.0])
    assert proof.weights.tolist() == [0.5, 0.5, 0.0]
    assert proof.relative_residual == 0.0 and proof.value == 1.0 and proof.norm_bound == math.inf
    # negative weights are clipped to 0 (a proof needs y >= 0)
    assert S.verify(A, c, [1.0, 1.0, -5.0]).weights.tolist() == [0.5, 0.5, 0.0]


def test_verify_rejects_weights_that_prove_nothing():
    A = np.array([[1.0], [-1.0], [1.0]])
    assert S.verify(A, np.zeros(3), [0.0, 0.0, 0.0]) is None
    assert S.verify(A, np.zeros(3), [-1.0, -1.0, 0.0]) is None
    # A^T y != 0: the first two rows alone are separable with theta = ...? No: y = (1, 0, 0)
    assert S.verify(A, np.zeros(3), [1.0, 0.0, 0.0]) is None
    # y.(1 - c) <= 0: theta = 0 satisfies theta + 1 >= 1 and -theta + 1 >= 1
    assert S.verify(A, np.ones(3), [1.0, 1.0, 0.0]) is None
    assert S.verify(A, np.array([1.0, 1.0, 0.0]), [1.0, 1.0, 0.0]) is None
    # offsets that still leave no solution: theta >= 0.5 and -theta >= 0.5
    proof = S.verify(A, np.array([0.5, 0.5, 0.0]), [1.0, 1.0, 0.0])
    assert proof.value == 0.5 and proof.norm_bound == math.inf


def test_verify_residual_at_rounding_level():
    """A^T y one rounding error away from 0: accepted with a finite norm bound; ten times the tolerance
    away: rejected (a separating theta of huge norm may exist)."""
    A = np.array([[1.0 + 2 * EPS], [-1.0]])
    proof = S.verify(A, np.zeros(2), [1.0, 1.0])
    r = 0.5 * (1.0 + 2 * EPS) - 0.5
    assert proof.relative_residual == pytest.approx(r / (0.5 * (1.0 + 2 * EPS) + 0.5))
    assert proof.norm_bound == pytest.approx(1.0 / r)
    limit = S.PROOF_TOL * 2 * EPS
    A = np.array([[1.0 + 4 * limit], [-1.0]])
    assert S.verify(A, np.zeros(2), [1.0, 1.0]) is None
    # the tolerance grows with the number of rows
    A = np.array([[1.0 + 3 * limit], [-1.0], [-1.0], [-1.0], [-1.0], [-1.0], [-1.0], [-1.0]])
    y = np.array([7.0, 1, 1, 1, 1, 1, 1, 1])
    assert S.verify(A[:2], np.zeros(2), y[:2] / np.array([1.0, 1.0])) is None
    assert S.verify(A, np.zeros(8), y) is not None


def test_verify_residual_is_relative_to_the_size_of_the_terms():
    """The same near-miss at data scale 1e-3 and 1e3: rejected at both (relative, not absolute)."""
    limit = S.PROOF_TOL * 2 * EPS
    for scale in (1e-3, 1.0, 1e3):
        A = scale * np.array([[1.0 + 4 * limit], [-1.0]])
        assert S.verify(A, np.zeros(2), [1.0, 1.0]) is None
        A = scale * np.array([[1.0 + 2 * EPS], [-1.0]])
        assert S.verify(A, np.zeros(2), [1.0, 1.0]) is not None


def test_exact_residual_sums_without_cancellation():
    A = np.array([[1e16, 0.0], [1.0, 2.0], [-1e16, 0.0]])
    assert S.exact_residual(A, [1.0, 1.0, 1.0]).tolist() == [1.0, 2.0]
    assert S.exact_residual([[1, 2]], [3]).tolist() == [3.0, 6.0]


def test_farkas_proof_finds_and_verifies_a_proof():
    X = np.array([[1.0, 0.0], [2.0, 1.0], [1.0, 0.0], [0.5, 3.0]])
    y = np.array([1.0, 1.0, -1.0, 1.0])            # samples 0 and 2: same point, opposite labels
    A = y[:, None] * X
    proof = S.farkas_proof(A, np.zeros(4))
    assert proof is not None
    assert proof.weights[[1, 3]].tolist() == [0.0, 0.0]
    assert proof.weights[0] == pytest.approx(0.5) and proof.weights[2] == pytest.approx(0.5)
    assert sum(proof.weights) == pytest.approx(1.0) and np.all(proof.weights >= 0)
    assert proof.relative_residual <= S.PROOF_TOL * 4 * EPS and proof.value == pytest.approx(1.0)
    assert proof.norm_bound > 1e15
    assert S.farkas_proof(np.array([[1.0, 0.0], [0.0, 1.0]]), np.zeros(2)) is None     # separable
    assert S.farkas_proof(np.array([[1.0], [-1.0]]), np.ones(2)) is None           # theta = 0 works


def test_farkas_proof_at_extreme_row_scales():
    """Rows scaled by 2^e (exact) for the LP; the weights returned prove the unscaled rows."""
    A = np.array([[1.0, 2.0], [-3e150, -6e150], [1.0, 1.0]])
    proof = S.farkas_proof(A, np.zeros(3))
    assert proof is not None and proof.weights[2] == 0.0
    assert np.all(proof.weights >= 0) and sum(proof.weights) == pytest.approx(1.0)
    assert proof.weights[1] / proof.weights[0] == pytest.approx(1.0 / 3e150, rel=1e-12)
    assert S.verify(A, np.zeros(3), proof.weights) is not None
    A = np.array([[1e10], [-1e-10]])
    proof = S.farkas_proof(A, np.zeros(2))
    assert proof.weights.tolist() == pytest.approx([1e-20, 1.0], rel=1e-12)
    # with offsets: (1, 2) . theta + 0.5 >= 1 and -3e150 (1, 2) . theta + 0.25 >= 1
    proof = S.farkas_proof(np.array([[1.0, 2.0], [-3e150, -6e150]]), np.array([0.5, 0.25]))
    assert proof is not None and proof.value == pytest.approx(0.5, rel=1e-12)


# ---- the reported limitations, fixed: rows scaled to unit size, a feasibility LP, overflow-safe weights ---
def test_farkas_proof_with_a_row_near_the_origin():
    A = np.array([[1.0, 0.5], [-2.0, -1.0], [1e-18, 3e-18]])
    proof = S.farkas_proof(A, np.zeros(3))
    assert proof is not None and proof.weights.tolist() == pytest.approx([2 / 3, 1 / 3, 0.0])


def test_farkas_proof_at_a_large_data_scale():
    proof = S.farkas_proof(np.array([[1e17], [-1e17]]), np.zeros(2))
    assert proof is not None and proof.relative_residual == 0.0 and proof.norm_bound == math.inf


def _lstsq_answering_first(monkeypatch, first):
    """np.linalg.lstsq whose first answer is ``first`` (what one CPU's SVD gave for the rows +-1e17, where another's
    was exact); later calls are numpy's own."""
    original, calls = np.linalg.lstsq, []

    def lstsq(*args, **kwargs):
        calls.append(1)
        return (first, None, None, None) if len(calls) == 1 else original(*args, **kwargs)

    monkeypatch.setattr(np.linalg, "lstsq", lstsq)
    return calls


def test_refinement_makes_a_vertex_exact_whatever_the_lapack(monkeypatch):
    calls = _lstsq_answering_first(monkeypatch, 0.5 + np.array([2.220446049250313e-16, -1.6653345369377348e-16]))
    A = np.array([[0.6938893903907228], [-0.6938893903907228]])
    assert S._refine(A, np.array([0.5, 0.5])).tolist() == [0.5, 0.5] and len(calls) == 2
    calls.clear()
    proof = S.farkas_proof(np.array([[1e17], [-1e17]]), np.zeros(2))
    assert proof.relative_residual == 0.0 and proof.norm_bound == math.inf


def test_refinement_never_takes_a_correction_that_raises_the_residual(monkeypatch):
    """A correction step whose exactly rounded residual is not smaller is refused, and refinement stops there."""
    original, calls = np.linalg.lstsq, []

    def lstsq(M, r, rcond=None):
        calls.append(1)
        solution = original(M, r, rcond=rcond)[0]
        return (solution + 1e-14 if len(calls) == 1 else solution + 0.25, None, None, None)

    monkeypatch.setattr(np.linalg, "lstsq", lstsq)
    A = np.array([[1.0], [-1.0]])
    first = original(np.array([[1.0, -1.0], [1.0, 1.0]]), np.array([0.0, 1.0]), rcond=None)[0] + 1e-14
    assert S._refine(A, np.array([0.5, 0.5])).tolist() == first.tolist() and len(calls) == 2


def test_max_margin_with_a_subnormal_sample_is_not_separable():
    import lexmargin as lm
    X = np.array([[1.0, 0.5], [-2.0, -1.0], [1e-310, 3e-310], [0.3, -2.0]])
    cert = lm.max_margin(lm.load_model("linear", input_dim=2), lm.Dataset(X, np.ones(4)), raise_on_failure=False)
    assert cert.status == "not_separable"
    assert np.all(cert.diagnostics.farkas.weights >= 0)


def test_user_weights_map_scaled_rows_back_without_overflow():
    y = S.user_weights(np.array([0.5, 0.5]), np.array([-1030, 1]))    # rows scaled by 2^1030 and by 1/2
    assert y.tolist() == pytest.approx([1.0, 0.0]) and np.all(np.isfinite(y)) and math.fsum(y) == 1.0
    back = S.user_weights(y, -np.array([-1030, 1]))                    # and the other way
    assert np.all(np.isfinite(back)) and math.fsum(back) == pytest.approx(1.0)


def test_objective_is_a_feasibility_problem_when_every_value_is_positive():
    assert np.all(S._objective(np.array([1.0, 2.0]), np.array([0, 5])) == 0.0)
    w = S._objective(np.array([1.0, -2.0, 0.0]), np.array([0, 1, 0]))
    assert w[0] == 1.0 and w[1] == -1.0 and w[2] == 0.0      # b 2^-e, normalized to max 1, signs kept


def test_refine_restores_an_exact_vertex():
    A = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    noisy = np.array([0.5 + 1e-9, 0.5 - 1e-9, 1e-14])
    refined = S._refine(A, noisy)
    assert refined.tolist() == pytest.approx([0.5, 0.5, 0.0], abs=1e-15) and refined[2] == 0.0
    # weights below 1e-12 of the largest are noise: dropped before the exact re-solve
    A = np.array([[1.0], [-1.0]])
    for y in ([1.0, 1e-12], [2.0, 1e-12]):
        refined = S._refine(A, np.array(y))
        assert refined[1] == 0.0 and refined[0] == pytest.approx(0.5)
    assert S._refine(A, np.array([1.0, 2e-12])).tolist() == pytest.approx([0.5, 0.5])
    # a least-squares re-solve with a negative weight is not a proof: the LP's weights are kept
    A = np.array([[2.0, 1.0], [0.0, -2.0], [-1.0, -3.0], [-3.0, -3.0]])
    y = np.array([0.8132702392002724, 0.9127555772777217, 0.6066357757671799, 0.7294965609839984])
    assert S._refine(A, y) is y


def test_lp_weights():
    A = np.array([[1.0], [-1.0]])
    y = S._lp_weights(A, np.zeros(2))
    assert y.tolist() == pytest.approx([0.5, 0.5])
    assert S._lp_weights(np.array([[1.0], [2.0]]), np.zeros(2)) is None           # infeasible LP
    assert S._lp_weights(A, np.array([1.0, -1.0])) is not None                    # maximizes weights.y


def test_proof_record_round_trip():
    given = np.array([0.25, 0.75])
    proof = S.FarkasProof(given, 1e-17, 0.5, math.inf)
    given[0] = 9.0                                      # the proof keeps its own, read-only weights
    assert proof.weights.tolist() == [0.25, 0.75] and proof.weights.dtype == float
    with pytest.raises(ValueError):
        proof.weights[0] = 1.0
    assert S.FarkasProof([1, 0], 0.0, 1.0, 1.0).weights.dtype == float
    d = proof.to_dict()
    assert d == {"weights": [0.25, 0.75], "relative_residual": 1e-17, "value": 0.5, "norm_bound": "inf"}
    back = S.FarkasProof.from_dict(d)
    assert back.weights.tolist() == [0.25, 0.75] and back.norm_bound == math.inf and back.value == 0.5
    assert back.relative_residual == 1e-17
    assert S.FarkasProof(np.array([1.0]), 0.0, 1.0, 3.0).to_dict()["norm_bound"] == 3.0


@PROPERTY
@given(seed=st.integers(0, 10 ** 6), common=st.integers(-12, 12),
       exponents=st.lists(st.integers(-3, 3), min_size=6, max_size=6))
def test_a_contradiction_is_proved_at_any_row_scale(seed, common, exponents):
    """Rows whose positive combination is 0 (a sample and its mirror image with the same label, plus
    random others), all rows scaled by 10^common and each by 10^e (data scales within 1e+-15: see the
    limitations above): a verified proof."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((6, 3))
    base[1] = -2.0 * base[0]
    A = base * (10.0 ** (common + np.array(exponents, dtype=float)))[:, None]
    proof = S.farkas_proof(A, np.zeros(6))
    assert proof is not None
    assert np.all(proof.weights >= 0) and sum(proof.weights) == pytest.approx(1.0)
    assert proof.value > 0 and proof.relative_residual <= S.PROOF_TOL * 6 * EPS
    assert S.verify(A, np.zeros(6), proof.weights) is not None


@PROPERTY
@given(seed=st.integers(0, 10 ** 6))
def test_separable_data_has_no_proof(seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((12, 3))
    w = rng.standard_normal(3)
    A = np.sign(X @ w)[:, None] * X
    assert S.farkas_proof(A, np.zeros(12)) is None


def test_row_exponents_put_every_row_in_half_to_one():
    A = np.array([[3.0, -0.1], [0.0, 0.0], [1e-310, -2e-310], [-1e300, 0.0], [0.5, 0.25], [np.inf, 1.0]])
    e = S.row_exponents(A)
    assert e.dtype.kind == "i" and e.tolist() == [2, 0, -1028, 997, 0, 0]
    for row, k in zip(A[[0, 2, 3, 4]], e[[0, 2, 3, 4]]):
        assert 0.5 <= np.max(np.abs(np.ldexp(row, -k))) < 1.0


def test_user_weights_keep_proportions_exactly():
    assert S.user_weights(np.array([0.25, 0.75]), np.array([0, 0])).tolist() == [0.25, 0.75]
    assert S.user_weights(np.array([0.0, 2.0]), np.array([0, 0])).tolist() == [0.0, 1.0]      # zeros stay 0
    assert S.user_weights(np.array([-1.0, 2.0]), np.array([0, 0])).tolist() == [0.0, 1.0]     # negatives are 0
    assert S.user_weights(np.array([0.5, 0.5]), np.array([1, 2])).tolist() == [2 / 3, 1 / 3]  # y' 2^-e


def test_relative_residual_is_the_residual_over_the_terms():
    A = np.array([[1.0, 0.0], [-1.0, 1e-3]])
    assert S.relative_residual(A, np.array([0.5, 0.5])) == 5e-4 / 1.0
    A = np.array([[2.0, 4.0], [-2.0, -3.0]])
    assert S.relative_residual(A, np.array([0.5, 0.5])) == 0.5 / 3.5        # column 2: |0.5| over 2 + 1.5
    assert S.relative_residual(np.array([[1.0], [-1.0]]), np.array([0.5, 0.5])) == 0.0
    assert S.relative_residual(np.zeros((2, 1)), np.array([0.5, 0.5])) == 0.0  # nothing to cancel: no residual


def test_the_lp_maximizes_the_value_when_signs_differ():
    """theta >= 1 (c = 0), theta <= 2 (c = 3: value -2) and theta <= -1 (c = 0): the weights y >= 0 with
    A^T y = 0 form a segment; only the end on the last sample proves infeasibility (value > 0), so the LP
    must maximize y.(1 - c), not merely find a point.  In every row order."""
    A = np.array([[1.0], [-1.0], [-1.0]])
    c = np.array([0.0, 3.0, 0.0])
    for order in ([0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]):
        proof = S.farkas_proof(A[order], c[order])
        assert proof is not None and proof.value == pytest.approx(1.0)
        assert proof.weights[order.index(1)] == 0.0


def test_objective_weights_do_not_overflow():
    """theta >= 1 + 1e300 and theta <= 1: 1 - c spans 1e300, the LP weights stay in [-1, 1]."""
    A = np.array([[1.0], [-1.0]])
    c = np.array([-1e300, 2.0])
    weights = S._objective(1.0 - c, S.row_exponents(A))
    assert np.all(np.abs(weights) <= 1.0) and weights[0] == 1.0
    proof = S.farkas_proof(A, c)
    assert proof is not None and proof.weights.tolist() == pytest.approx([0.5, 0.5], abs=1e-15)


def test_samples_with_zero_value_do_not_take_the_proof():
    """theta >= 0 and theta <= 0 (c = 1: value 1 - c = 0, satisfiable) beside theta >= 1 and theta <= -1:
    a feasibility LP may put all its weight on the first pair (value 0, no proof); maximizing y.(1 - c)
    finds the second pair, in every row order."""
    A = np.array([[1.0], [-1.0], [1.0], [-1.0]])
    c = np.array([1.0, 1.0, 0.0, 0.0])
    for order in itertools.permutations(range(4)):
        proof = S.farkas_proof(A[list(order)], c[list(order)])
        assert proof is not None and proof.value == pytest.approx(1.0)


# ---- features in any units: rows and columns scaled to unit size ----------------------------------------
def _separable_by_a_tiny_feature(seed: int, n: int = 20):
    """Two features, the first in huge units and irrelevant, the second in tiny units and separating: y = sign of
    the second (w = (0, 1 / min |x_2|) separates), the first random."""
    rng = np.random.default_rng(seed)
    b = rng.uniform(0.5, 1.5, n) * np.where(rng.random(n) < 0.5, -1.0, 1.0)
    y = np.sign(b)
    X = np.column_stack([1e8 * rng.standard_normal(n), 1e-8 * b])
    return y[:, None] * X, np.array([0.0, 1e8 / np.min(np.abs(b))])


def test_separable_data_with_a_feature_in_tiny_units_has_no_proof():
    """Measured on the rows alone, the tiny feature's residual was some 1e-16 of the huge one's terms and weights
    with y.(A w) = 1.7 > 0 (so A^T y != 0) passed as a proof."""
    for seed in range(5):
        A, w = _separable_by_a_tiny_feature(seed)
        assert np.min(A @ w) >= 1.0 - 1e-12
        assert S.farkas_proof(A, np.zeros(A.shape[0])) is None
        assert S.farkas_proof(A[:, ::-1], np.zeros(A.shape[0])) is None


def test_weights_that_leave_a_tiny_feature_unbalanced_are_no_proof():
    """Weights balancing the huge feature only: rejected, although the residual is 1e-16 of the largest terms."""
    A = np.array([[1e8, 1e-8], [-1e8, 1e-8]])
    assert S.relative_residual(A, np.array([0.5, 0.5])) < 1e-15          # the rows alone: a "proof"
    assert S.verify(A, np.zeros(2), [0.5, 0.5]) is None
    scaled, e = S.equilibrate(A)
    assert S.relative_residual(scaled, S.user_weights(np.array([0.5, 0.5]), -e)) == scaled[0, 1] / scaled[0, 0]
    # balanced in both features: a proof whatever the units
    A = np.array([[1e8, 1e-8], [-1e8, -1e-8]])
    assert S.verify(A, np.zeros(2), [0.5, 0.5]) is not None


def test_equilibrate_scales_rows_then_columns_by_powers_of_two():
    A = np.array([[3.0, -1e-9, 0.0], [1e-300, 5e-310, 0.0], [-7e200, 1e190, 0.0]])
    scaled, e = S.equilibrate(A)
    assert e.tolist() == S.row_exponents(A).tolist()
    rows = np.ldexp(A, -e[:, None])
    ratio = scaled[:, :2] / rows[:, :2]
    assert np.all(np.log2(ratio) == np.round(np.log2(ratio)))            # powers of two: exact
    assert np.all(ratio == ratio[0])                                      # one factor per column
    top = np.max(np.abs(scaled), axis=0)
    assert np.all((top[:2] >= 0.5) & (top[:2] < 1.0)) and top[2] == 0.0


@PROPERTY
@given(seed=st.integers(0, 10 ** 6), exponents=st.lists(st.integers(-12, 12), min_size=3, max_size=3))
def test_proofs_do_not_depend_on_the_features_units(seed, exponents):
    """Columns scaled by 10^k (|k| <= 12): separable data keeps no proof, a contradiction (a sample and its mirror
    with the same label among random ones) keeps a verified one."""
    rng = np.random.default_rng(seed)
    units = 10.0 ** np.array(exponents, dtype=float)
    X = rng.standard_normal((12, 3))
    A = np.sign(X @ rng.standard_normal(3))[:, None] * X
    assert S.farkas_proof(A * units, np.zeros(12)) is None
    A[1] = -2.0 * A[0]
    proof = S.farkas_proof(A * units, np.zeros(12))
    assert proof is not None and proof.relative_residual <= S.PROOF_TOL * 12 * EPS
    assert S.verify(A * units, np.zeros(12), proof.weights) is not None
