"""PartialL2 (lexmargin/nlp/norms.py): l2 over every coordinate but the free ones (the SVM's bias): its checks,
mask, values, gradient, Hessian and CasADi expression against the definitions."""

import casadi as ca
import numpy as np
import pytest

from lexmargin.errors import LexmarginError
from lexmargin.nlp.norms import BALL, OBJECTIVE, PartialL2


def test_free_coordinates_are_checked_and_sorted():
    assert PartialL2(free=(3, 1)).free == (1, 3)
    assert PartialL2(free=(0,)).free == (0,)
    assert PartialL2(free=[2.0]).free == (2,)
    for free in ((), (-1,), (1, 1), (2, -1)):
        with pytest.raises(LexmarginError, match=r"^PartialL2 needs distinct non-negative free coordinates; got "):
            PartialL2(free=free)


def test_objective_form_only_and_free_coordinates_inside():
    norm = PartialL2(free=(2,))
    lift = norm.lift(OBJECTIVE, 3)
    assert lift.n == 3 and lift.n_params == 3
    with pytest.raises(LexmarginError, match=r"^PartialL2 is a seminorm: it has an objective form only \(its ball "
                                             r"is unbounded\)$"):
        norm.lift(BALL, 3)
    with pytest.raises(LexmarginError, match=r"^PartialL2: free coordinates \[2\] outside 2 parameters$"):
        norm.lift(OBJECTIVE, 2)
    with pytest.raises(LexmarginError):
        PartialL2(free=(3,)).lift(OBJECTIVE, 3)


def test_values_gradient_hessian_and_expression():
    norm = PartialL2(free=(1, 4))
    assert norm.mask(4).tolist() == [1.0, 0.0, 1.0, 1.0]
    assert norm.mask(5).tolist() == [1.0, 0.0, 1.0, 1.0, 0.0]
    assert norm._regularized(5) == [0, 2, 3]
    theta = np.array([3.0, 7.0, -4.0, 1.0, 5.0])
    assert norm.value(theta) == pytest.approx(np.sqrt(26.0), rel=1e-15)
    assert norm.value(theta.reshape(-1, 1)) == pytest.approx(np.sqrt(26.0), rel=1e-15)
    assert norm.value(list(theta)) == pytest.approx(np.sqrt(26.0), rel=1e-15)
    assert norm.objective_value(theta) == 26.0
    assert norm.objective_value(theta.reshape(-1, 1)) == 26.0
    assert norm.objective_of_z(theta, 5) == 26.0
    assert norm.objective_gradient(theta, 5).tolist() == [6.0, 0.0, -8.0, 2.0, 0.0]
    np.testing.assert_array_equal(norm.objective_hessian(theta, 5), np.diag([2.0, 0.0, 2.0, 2.0, 0.0]))
    z = ca.SX.sym("z", 5)
    f = ca.Function("f", [z], [norm.objective_expr(z, 5)])
    assert float(f(theta)) == 26.0
    assert norm.to_dict()["free"] == [1, 4]
    assert norm.name == "l2" and "theta[1, 4]" in norm.label
