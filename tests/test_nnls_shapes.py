"""lexmargin.nlp.nnls: nonnegative least squares defined at every shape.  scipy 1.17's nnls aborts the interpreter
on a matrix without columns and returns uninitialized memory for one without rows; lexmargin's calls go through the
wrapper, so an empty support, working set or parameter vector is an ordinary case."""

import numpy as np
import pytest
from scipy.optimize import nnls as scipy_nnls

from lexmargin.nlp.nnls import nnls
from lexmargin.numeric.compare import nnls_multipliers


def test_no_columns_leave_the_whole_right_hand_side():
    x, residual = nnls(np.zeros((3, 0)), np.array([1.0, 2.0, 2.0]))
    assert x.shape == (0,) and residual == 3.0


def test_no_rows_give_zero_at_no_residual():
    x, residual = nnls(np.zeros((0, 3)), np.zeros(0))
    assert x.tolist() == [0.0, 0.0, 0.0] and residual == 0.0


def test_every_other_shape_is_scipys():
    rng = np.random.default_rng(0)
    A, b = rng.standard_normal((6, 4)), rng.standard_normal(6)
    x, residual = nnls(A, b)
    ref, ref_residual = scipy_nnls(A, b)
    assert x.tolist() == ref.tolist() and residual == ref_residual and np.all(x >= 0)
    with pytest.raises(RuntimeError):          # its iteration limit, which the dual route catches
        nnls(rng.standard_normal((30, 20)), rng.standard_normal(30), maxiter=1)
    with pytest.raises(ValueError, match="shape"):
        nnls(np.zeros((3, 2)), np.zeros(2))


def test_a_negative_near_support_width_is_an_error():
    """nnls_multipliers with a negative rtol (an empty near-support set) aborted the interpreter; rtol is checked."""
    theta, margins, J = np.array([1.0, 2.0]), np.array([1.0, 2.0]), np.eye(2)
    with pytest.raises(ValueError, match="rtol"):
        nnls_multipliers(theta, margins, J, rtol=-0.5)
    with pytest.raises(ValueError, match="no parameters"):
        nnls_multipliers(np.zeros(0), margins, np.zeros((2, 0)))
