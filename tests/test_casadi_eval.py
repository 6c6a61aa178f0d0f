"""casadi_eval.evaluate: the buffer route gives exactly the plain call's arrays, whatever the shapes."""

import casadi as ca
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import pytest

from lexmargin.modeling.casadi_eval import evaluate, outputs


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 4), cols=st.integers(1, 5), n=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_matches_the_plain_call_on_matrices_vectors_and_maps(rows, cols, n, seed):
    rng = np.random.default_rng(seed)
    A, v = ca.SX.sym("A", rows, cols), ca.SX.sym("v", cols)
    fn = ca.Function("f", [A, v], [ca.densify(A @ v * ca.sin(A[0, 0])), ca.densify(A.T @ A), ca.sum1(v),
                                   ca.diag(v) * A[0, 0], ca.hessian(ca.sumsqr(v) * v[0], v)[0]])
    mapped = fn.map("m", "serial", n, [1], [])                 # v shared, A per call: (rows, n cols)
    for f, args in ((fn, (rng.standard_normal((rows, cols)), rng.standard_normal(cols))),
                    (mapped, (rng.standard_normal((rows, n * cols)), rng.standard_normal(cols)))):
        got = outputs(f, *args)
        want = [np.array(o) for o in f(*args)]
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.shape == w.shape
            np.testing.assert_array_equal(g, w)


def test_a_transposed_view_and_a_row_vector_are_read_column_major():
    X = ca.SX.sym("X", 2, 3)
    fn = ca.Function("f", [X], [ca.densify(X * ca.DM([[1, 2, 3], [4, 5, 6]]))])
    M = np.arange(6.0).reshape(3, 2).T                          # a non-contiguous (2, 3) view
    np.testing.assert_array_equal(evaluate(fn, M), np.array(fn(M)))
    r = ca.SX.sym("r", 1, 4)
    row = ca.Function("g", [r], [ca.densify(2 * r)])
    np.testing.assert_array_equal(evaluate(row, np.arange(4.0)[None, :]), [[0.0, 2.0, 4.0, 6.0]])


def test_sparse_outputs_are_scattered_and_misfitting_inputs_take_the_plain_call():
    x = ca.SX.sym("x", 3)
    sparse = ca.Function("s", [x], [ca.diag(x)])                # 3 nonzeros in a 3 x 3 output
    np.testing.assert_array_equal(evaluate(sparse, np.array([1.0, 2.0, 3.0])), np.diag([1.0, 2.0, 3.0]))
    summed = ca.Function("h", [x], [ca.hessian(x[0] * x[1] ** 2, x)[0]]).map("m", "serial", 4, [0], [0])
    np.testing.assert_array_equal(evaluate(summed, np.array([1.0, 2.0, 5.0])), np.array(summed(np.array([1.0, 2.0, 5.0]))))
    dense = ca.Function("d", [x], [ca.densify(2 * x)])
    np.testing.assert_array_equal(evaluate(dense, 1.5), np.full((3, 1), 3.0))   # a scalar broadcast by CasADi


def test_buffers_are_reused_per_function_and_bounded(monkeypatch):
    from lexmargin.modeling import casadi_eval
    monkeypatch.setattr(casadi_eval, "BUFFERS_KEPT", 2)
    x = ca.SX.sym("x", 2)
    fns = [ca.Function(f"f{k}", [x], [ca.densify((k + 1) * x)]) for k in range(3)]
    for _ in range(2):                  # a reused buffer is bound to the new arrays on every call
        for k, fn in enumerate(fns):
            np.testing.assert_array_equal(evaluate(fn, np.array([1.0, -2.0])), [[k + 1.0], [-2.0 * (k + 1)]])
    assert len(casadi_eval._local.bound) == 2


def test_evaluate_wants_one_output():
    x = ca.SX.sym("x")
    with pytest.raises(ValueError, match="2 outputs"):
        evaluate(ca.Function("two", [x], [x, 2 * x]), 1.0)
