"""The NLP form (lexmargin.nlp.nlp): bounds become rows with the right values, signs, levels and bookkeeping;
statuses (lexmargin.nlp.status) are decided by the certificate; CasADi's bound multipliers get our signs."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from verify_helpers import PROPERTY

from lexmargin.nlp.ipopt import STATUS_MAP, IpoptResult, bound_multipliers, status_of
from lexmargin.nlp.nlp import LOWER_BOUND, NLP, UPPER_BOUND, Point, Rows, extend, split_bound_multipliers
from lexmargin.nlp.status import Status, decide


def nlp_with(rows, n=3, lower=-np.inf, upper=np.inf):
    def evaluate(z, p=None):
        m = sum(r.size for r in rows)
        return Point(0.0, np.zeros(n), np.arange(m, dtype=float), np.ones((m, n)), np.full(m, 2.0))
    return NLP("t", n, rows, lower, upper, None, evaluate, theta=lambda z: z)


# ---- rows and points ------------------------------------------------------------------------------------
def test_rows_samples_are_integer_vectors_of_the_block_size():
    r = Rows("margin", 3, samples=[[4.0], [1.0], [7.0]])
    assert r.samples.dtype.kind == "i" and r.samples.tolist() == [4, 1, 7]
    assert Rows("margin", 2).samples is None and Rows("margin", 2).equality is False
    with pytest.raises(ValueError, match="rows 'margin': 2 sample indices for 3 rows"):
        Rows("margin", 3, samples=[1, 2])
    assert Rows("fixed", 0, samples=[]).samples.shape == (0,)


def test_point_checks_shapes():
    g, v = np.zeros(2), np.zeros(3)
    Point(0.0, g, v, np.zeros((3, 2)), np.ones(3))
    with pytest.raises(ValueError, match=r"jacobian has shape \(2, 3\); expected \(3, 2\)"):
        Point(0.0, g, v, np.zeros((2, 3)), np.ones(3))
    with pytest.raises(ValueError, match=r"levels have shape \(2,\); expected \(3,\)"):
        Point(0.0, g, v, np.zeros((3, 2)), np.ones(2))
    with pytest.raises(ValueError, match=r"levels have shape \(1, 3\)"):
        Point(0.0, g, v, np.zeros((3, 2)), np.ones((1, 3)))


def test_nlp_bounds_and_row_bookkeeping():
    lower = np.array([0.0, -1.0, -np.inf])
    nlp = nlp_with([Rows("margin", 2, samples=[5, 3]), Rows("ball", 1), Rows("fixed", 2, equality=True,
                                                                             samples=[0, 1])],
                   lower=lower, upper=2.0)
    lower[0] = 9.0                                      # the NLP keeps its own copy
    assert nlp.lower.tolist() == [0.0, -1.0, -np.inf] and nlp.upper.tolist() == [2.0, 2.0, 2.0]
    assert nlp.lower.dtype == float and nlp.upper.dtype == float
    assert isinstance(nlp.rows, tuple) and nlp.m == 5
    assert nlp.equality_mask.tolist() == [False, False, False, True, True]
    assert nlp.kinds().tolist() == ["margin", "margin", "ball", "fixed", "fixed"]
    assert nlp.samples().tolist() == [5, 3, -1, 0, 1] and nlp.samples().dtype.kind == "i"
    assert nlp.block("ball") == slice(2, 3) and nlp.block("fixed") == slice(3, 5) and nlp.block("margin") == slice(0, 2)
    with pytest.raises(KeyError, match="region_sign"):
        nlp.block("region_sign")
    lo, up = nlp.bound_rows()
    assert lo.tolist() == [0, 1] and up.tolist() == [0, 1, 2]
    integer_bounds = nlp_with((Rows("margin", 1),), n=2, lower=[0, 1], upper=[3, 4])
    assert integer_bounds.lower.dtype == float and integer_bounds.upper.tolist() == [3.0, 4.0]
    empty = nlp_with([], n=2)
    assert empty.m == 0 and empty.equality_mask.shape == (0,) and empty.kinds().shape == (0,)
    assert empty.samples().shape == (0,) and empty.samples().dtype.kind == "i"
    assert empty.equality_mask.dtype == bool and empty.kinds().dtype == object
    assert nlp_with([Rows("margin", 2)]).samples().tolist() == [-1, -1]


def test_extend_appends_bounds_as_rows():
    nlp = nlp_with((Rows("margin", 2, samples=[4, 2]), Rows("fixed", 1, equality=True)),
                   lower=[0.0, -5.0, -np.inf], upper=[np.inf, 1.0, 3.0])
    z = np.array([0.5, 2.0, -4.0])
    point = nlp.evaluate(z)
    ext = extend(nlp, point, z)
    assert ext.point is point and ext.z.tolist() == z.tolist()
    # rows: margin 0, 1, fixed, lower z0, lower z1, upper z1, upper z2
    assert ext.values.tolist() == [0.0, 1.0, 2.0, 0.5, 7.0, -1.0, 7.0]
    assert ext.jacobian[3:].tolist() == [[1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, -1]]
    assert ext.jacobian[:3].tolist() == np.ones((3, 3)).tolist()
    # levels of bound rows: max(|bound|, ||z||_inf)
    assert ext.levels.tolist() == [2.0, 2.0, 2.0, 4.0, 5.0, 4.0, 4.0]
    assert ext.equality.tolist() == [False, False, True, False, False, False, False]
    assert ext.kinds.tolist() == ["margin", "margin", "fixed", LOWER_BOUND, LOWER_BOUND, UPPER_BOUND, UPPER_BOUND]
    assert ext.samples.tolist() == [4, 2, -1, -1, -1, -1, -1] and ext.samples.dtype.kind == "i"
    assert ext.variables.tolist() == [-1, -1, -1, 0, 1, 1, 2] and ext.variables.dtype.kind == "i"
    # at z = 0 with zero bounds the level is the smallest positive float, never 0
    zero = nlp_with((), n=2, lower=0.0)
    ext = extend(zero, zero.evaluate(np.zeros(2)), [0, 0])
    assert ext.levels.tolist() == [np.finfo(float).tiny] * 2 and ext.values.tolist() == [0.0, 0.0]
    assert ext.z.dtype == float


def test_extended_kind_blocks_agree_with_the_kinds_row_by_row():
    """kind_names / kind_mask (from the blocks) are the object array's distinct kinds in order of first row and
    its row-by-row comparison, with a kind in two blocks, empty blocks and bounds."""
    nlp = nlp_with((Rows("margin", 2, samples=[0, 1]), Rows("ball", 0), Rows("fixed", 1, equality=True),
                    Rows("margin", 3, samples=[2, 3, 4]), Rows("sign", 1)),
                   lower=[0.0, -np.inf, 1.0], upper=[np.inf, 2.0, np.inf])
    z = np.array([0.5, 1.0, 2.0])
    ext = extend(nlp, nlp.evaluate(z), z)
    kinds = ext.kinds.tolist()
    assert ext.kind_names() == tuple(dict.fromkeys(kinds)) == ("margin", "fixed", "sign", LOWER_BOUND, UPPER_BOUND)
    for kind in (*ext.kind_names(), "ball", "absent"):
        assert ext.kind_mask(kind).tolist() == [k == kind for k in kinds]
    assert ext.kind_mask("margin").tolist() == [True, True, False, True, True, True, False, False, False, False]
    bare = nlp_with((Rows("margin", 2),), n=2)
    assert extend(bare, bare.evaluate(np.ones(2)), np.ones(2)).kind_names() == ("margin",)


def test_extend_without_bounds_keeps_the_rows():
    nlp = nlp_with((Rows("margin", 2),), n=2)
    z = np.array([1.0, -1.0])
    ext = extend(nlp, nlp.evaluate(z), z)
    assert ext.values.tolist() == [0.0, 1.0] and ext.jacobian.shape == (2, 2) and ext.variables.tolist() == [-1, -1]


def test_split_bound_multipliers_only_for_finite_bounds():
    nlp = nlp_with((), n=3, lower=[0.0, -np.inf, 1.0], upper=[np.inf, 2.0, 4.0])
    lam = split_bound_multipliers(nlp, [1.5, 9.0, 2.5], [9.0, 3.0, 4.0])
    assert lam.tolist() == [1.5, 2.5, 3.0, 4.0]
    assert split_bound_multipliers(nlp, [1, 0, 2], [0, 3, 4]).dtype == float
    assert split_bound_multipliers(nlp, np.array([-128, 0, 2], np.int8), np.array([0, 3, 255], np.uint8)).tolist() == \
        [-128.0, 2.0, 3.0, 255.0]


# ---- CasADi's lam_x -> bound multipliers ----------------------------------------------------------------
def test_bound_multipliers_signs():
    lower = np.array([0.0, -np.inf, 0.0, 0.0, -np.inf])
    upper = np.array([np.inf, 1.0, 1.0, 1.0, np.inf])
    lam_x = np.array([-2.0, 3.0, -4.0, 5.0, 0.5])    # CasADi: negative at an active lower bound
    lo, up = bound_multipliers(lam_x, lower, upper)
    assert lo.tolist() == [2.0, 0.0, 4.0, 0.0, 0.0]
    assert up.tolist() == [0.0, 3.0, 0.0, 5.0, 0.0]
    # a one-sided bound keeps the sign IPOPT gave (a wrong sign is dual infeasibility for certify to see)
    lo, up = bound_multipliers([1.0, -1.0], [0.0, -np.inf], [np.inf, 1.0])
    assert lo.tolist() == [-1.0, 0.0] and up.tolist() == [0.0, -1.0]
    lo, up = bound_multipliers([-1, 2], [0, 0], [1, 1])
    assert lo.tolist() == [1.0, 0.0] and up.tolist() == [0.0, 2.0]


@PROPERTY
@given(seed=st.integers(0, 10 ** 6))
def test_bound_multipliers_reproduce_lam_x(seed):
    """lower - upper multipliers = -lam_x wherever a bound exists (the stationarity term is unchanged)."""
    rng = np.random.default_rng(seed)
    lam_x = rng.standard_normal(6)
    kinds = rng.integers(0, 4, 6)          # none, lower, upper, both
    lower = np.where((kinds == 1) | (kinds == 3), 0.0, -np.inf)
    upper = np.where((kinds == 2) | (kinds == 3), 1.0, np.inf)
    lo, up = bound_multipliers(lam_x, lower, upper)
    has = kinds > 0
    np.testing.assert_array_equal((lo - up)[has], -lam_x[has])
    assert np.all(lo[~np.isfinite(lower)] == 0) and np.all(up[~np.isfinite(upper)] == 0)
    assert np.all(lo[kinds == 3] >= 0) and np.all(up[kinds == 3] >= 0)


# ---- statuses -------------------------------------------------------------------------------------------
def test_decide_never_copies_the_solver_verdict_when_the_residuals_disagree():
    for solver in Status:
        assert decide(True, solver) == Status.OPTIMAL
    kept = {Status.MAX_ITERATIONS, Status.MAX_TIME, Status.FAILED, Status.INFEASIBLE}
    for solver in Status:
        assert decide(False, solver) == (solver if solver in kept else Status.INACCURATE)
    assert Status.OPTIMAL.success and not Status.INACCURATE.success
    assert str(Status.REGION_BOUNDARY) == "region_boundary"


def test_ipopt_status_map():
    assert status_of("Solve_Succeeded") == Status.OPTIMAL
    assert status_of("Solved_To_Acceptable_Level") == Status.INACCURATE
    assert status_of("Infeasible_Problem_Detected") == Status.INFEASIBLE
    assert status_of("Maximum_Iterations_Exceeded") == Status.MAX_ITERATIONS
    assert status_of("Maximum_CpuTime_Exceeded") == status_of("Maximum_WallTime_Exceeded") == Status.MAX_TIME
    assert status_of("Restoration_Failed") == Status.FAILED and status_of("unknown") == Status.FAILED
    assert len(STATUS_MAP) == 6
    result = IpoptResult(np.zeros(1), 0.0, np.zeros(0), np.zeros(1), np.zeros(1), Status.INACCURATE, "", 0, 0.0)
    assert result.converged
    for status in (Status.MAX_ITERATIONS, Status.FAILED, Status.INFEASIBLE, Status.MAX_TIME):
        assert not IpoptResult(np.zeros(1), 0.0, np.zeros(0), np.zeros(1), np.zeros(1), status, "", 0, 0.0).converged
