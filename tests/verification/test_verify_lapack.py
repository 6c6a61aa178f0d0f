"""nlp.lapack: LAPACK's potrf / potrs / trtrs called directly give scipy.linalg's numbers bit for bit; empty systems
and matrices that are not positive definite."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.linalg import cho_solve, cholesky, solve_triangular
from verify_helpers import PROPERTY

from lexmargin.nlp import lapack


@PROPERTY
@given(st.integers(1, 12), st.integers(0, 4), st.integers(0, 2 ** 32 - 1))
def test_the_lapack_calls_give_scipys_numbers(k, columns, seed):
    """cholesky_lower, cho_solve_lower and solve_lower: scipy.linalg's cholesky, cho_solve and solve_triangular
    bit for bit, for one right-hand side or several."""
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((k, k + 2))
    K = U @ U.T
    b = rng.standard_normal((k, columns)) if columns else rng.standard_normal(k)
    L = cholesky(K, lower=True)
    assert lapack.cholesky_lower(K).tobytes() == L.tobytes()
    assert lapack.cho_solve_lower(L, b).tobytes() == cho_solve((L, True), b).tobytes()
    assert lapack.solve_lower(L, b).tobytes() == solve_triangular(L, b, lower=True).tobytes()


def test_empty_systems_give_empty_solutions_without_lapacks_message(capfd):
    """No LAPACK call for an empty system (trtrs rejects n = 0 with a message on the process's standard output)."""
    assert lapack.cholesky_lower(np.zeros((0, 0))).shape == (0, 0)
    assert lapack.cho_solve_lower(np.zeros((0, 0)), np.zeros(0)).shape == (0,)
    assert lapack.solve_lower(np.zeros((0, 0)), np.zeros((0, 2))).shape == (0, 2)
    assert lapack.solve_lower(np.zeros((0, 0)), np.zeros(0)).shape == (0,)
    assert capfd.readouterr() == ("", "")


def test_a_matrix_that_is_not_positive_definite_is_refused():
    with pytest.raises(lapack.LinAlgError, match="2-th leading minor"):
        lapack.cholesky_lower(np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(lapack.LinAlgError, match="1-th leading minor"):
        lapack.cholesky_lower(np.array([[-1.0]]))
    with pytest.raises(lapack.LinAlgError, match="1-th leading minor"):
        lapack.cholesky_lower(np.zeros((2, 2)))
