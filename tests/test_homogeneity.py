"""Declared homogeneity degrees: numeric check at construction, SymPy proofs, sum-form independence."""

import numpy as np
import pytest

from lexmargin import Block, HomogeneityError, Model, check_homogeneity, ops
from lexmargin.modeling.homogeneity import SYMBOLIC_FULL_LIMIT, symbolic_check


def _dot(p, x):
    return ops.dot(p["w"], x)


def _cubic(p, x):
    return ops.dot(p["w"], x) ** 3


def test_wrong_degree_raises_readable_error():
    with pytest.raises(HomogeneityError) as info:
        Model("cubic", [Block.array("w", 3, degree=2)], input_dim=3, output=_cubic)
    message = str(info.value)
    assert "model 'cubic' is not homogeneous as declared" in message
    assert "block 'w': declared degree 2, estimated 3" in message
    assert "rho" in message


def test_wrong_degree_in_one_block_of_two_names_that_block():
    blocks = [Block.array("V", (2, 3), degree=1), Block.array("a", 2, degree=1)]  # V should be 2
    with pytest.raises(HomogeneityError, match=r"block 'V': declared degree 1, estimated 2") as info:
        Model("sq", blocks, input_dim=3, output=lambda p, x: ops.dot(p["a"], ops.square(p["V"] @ x)))
    assert "block 'a'" not in str(info.value)


def test_report_without_raising():
    model = Model("cubic", [Block.array("w", 3, degree=2)], input_dim=3, output=_cubic, verify=False)
    report = check_homogeneity(model)
    assert not report.ok
    (check,) = report.blocks
    assert check.numeric_ok is False and check.symbolic_ok is None
    assert check.estimated == pytest.approx(3.0)
    assert report.to_dict()["ok"] is False
    with pytest.raises(HomogeneityError):
        check_homogeneity(model, raise_on_failure=True)


def test_correct_report_is_symbolic_and_serializable():
    model = Model("cubic", [Block.array("w", 3, degree=3)], input_dim=3, output=_cubic)
    report = check_homogeneity(model)
    assert report.ok
    (check,) = report.blocks
    assert (check.numeric_ok, check.symbolic_ok) == (True, True)
    assert check.symbolic_method == "symbolic in all parameters and inputs"
    assert report.to_dict()["blocks"][0]["declared"] == 3


def test_undeclared_degree_is_skipped():
    model = Model("log", [Block.array("w", 2)], input_dim=2, margin=lambda p, x, y: ops.log(ops.dot(p["w"], y * x)))
    (check,) = check_homogeneity(model).blocks
    assert (check.declared, check.numeric_ok, check.message) == (None, None, "no degree declared")


def test_positive_homogeneity_uses_rho_positive():
    """|w.x| w.x is 2-homogeneous for rho > 0 only; the SymPy proof must know rho > 0."""
    model = Model("absq", [Block.array("w", 2, degree=2)], input_dim=2,
                  output=lambda p, x: ops.abs(_dot(p, x)) * _dot(p, x))
    assert check_homogeneity(model).blocks[0].symbolic_ok is True


def test_fractional_degree_from_float_exponent():
    model = Model("frac", [Block.array("w", 2, degree=1.5)], input_dim=2,
                  output=lambda p, x: ops.power(ops.dot(p["w"], p["w"]), 0.25) * _dot(p, x))
    assert check_homogeneity(model).ok
    assert symbolic_check(model, "w", 1.5)[0] is True
    assert symbolic_check(model, "w", 1.75)[0] is False


def test_symbolic_check_rejects_wrong_degree_small_model():
    model = Model("cubic", [Block.array("w", 2, degree=3)], input_dim=2, output=_cubic)
    ok, method = symbolic_check(model, "w", 2.0)
    assert ok is False
    assert method == "symbolic in rho at 3 random rational points"  # full proof failed, points as well


def test_symbolic_check_on_large_model_uses_rational_points():
    dim = SYMBOLIC_FULL_LIMIT  # n_params + input_dim = 2 * dim > limit
    model = Model("big", [Block.array("w", dim, degree=3)], input_dim=dim, output=_cubic)
    ok, method = symbolic_check(model, "w", 3.0)
    assert ok and method == "symbolic in rho at 3 random rational points"
    assert symbolic_check(model, "w", 2.5)[0] is False


def test_relu_blocks_are_proved():
    model = Model("relu", [Block.array("V", (2, 2), 1), Block.array("a", 2, 1)], input_dim=2,
                  output=lambda p, x: ops.dot(p["a"], ops.relu(p["V"] @ x)))
    report = check_homogeneity(model)
    assert report.ok and all(c.symbolic_ok for c in report.blocks)


# ---- sum form -----------------------------------------------------------------------------------
def _svm_blocks():
    return [Block.array("w", 2, degree=1), Block.array("b", 1, degree=2)]


def test_sum_form_summands_checked_in_their_own_block():
    model = Model("svm", _svm_blocks(), input_dim=2, summands={"w": _dot, "b": lambda p, x: p["b"][0] ** 2})
    report = check_homogeneity(model)
    assert report.ok and [c.declared for c in report.blocks] == [1, 2]
    assert model.degree is None


def test_sum_form_summand_depending_on_another_block_is_rejected():
    # w.x * (1 + b^2) is 1-homogeneous in w alone, but it is not a function of block w only
    leaky = {"w": lambda p, x: _dot(p, x) * (1 + p["b"][0] ** 2), "b": lambda p, x: p["b"][0] ** 2}
    with pytest.raises(HomogeneityError, match="summand of block 'w' depends on parameters outside the block"):
        Model("leaky_sum", _svm_blocks(), input_dim=2, summands=leaky)


def test_sum_form_wrong_degree_of_one_summand():
    with pytest.raises(HomogeneityError, match=r"block 'b': declared degree 2, estimated 3"):
        Model("svm3", _svm_blocks(), input_dim=2, summands={"w": _dot, "b": lambda p, x: p["b"][0] ** 3})


def test_numeric_check_is_seeded():
    model = Model("cubic", [Block.array("w", 3, degree=2)], input_dim=3, output=_cubic, verify=False)
    a = check_homogeneity(model, symbolic=False, seed=1).to_dict()
    b = check_homogeneity(model, symbolic=False, seed=1).to_dict()
    assert a == b
    assert np.isclose(a["blocks"][0]["estimated"], 3.0)
