"""The LP route (lexmargin.nlp.highs, lexmargin.problems.lp): HiGHS's point and marginals in lexmargin's multiplier
convention, for every kind of row and bound, in the NLP's scaled variables; max-margin in l1 / linf of linear models
against an LP written here, on data whose features differ by 12 orders of magnitude (where IPOPT fails)."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import linprog
from verify_helpers import PROPERTY, QP

import lexmargin as lm
from lexmargin.nlp import highs
from lexmargin.nlp.status import Status


def lp(q, A, b, E=None, e=None, lower=None, upper=None, x_scale=None):
    n = q.size
    E = np.zeros((0, n)) if E is None else E
    e = np.zeros(0) if e is None else e
    return QP(np.zeros((n, n)), q, A, b, E, e, np.full(n, -np.inf) if lower is None else lower,
              np.full(n, np.inf) if upper is None else upper, np.zeros(n), np.zeros(A.shape[0]), np.zeros(E.shape[0]),
              np.zeros(n), np.zeros(n), np.ones(A.shape[0]), np.ones(E.shape[0]), x_scale=x_scale)


def kkt(nlp, result):
    """(stationarity, complementarity, feasibility) in absolute terms, lexmargin's convention:
    grad phi = J^T lambda + lower - upper, lambda >= 0 on inequality rows, bound multipliers >= 0."""
    point = nlp.evaluate(result.z)
    eq = nlp.equality_mask
    stationarity = point.gradient - point.jacobian.T @ result.multipliers - result.lower_multipliers \
        + result.upper_multipliers
    slack_lo = np.where(np.isfinite(nlp.lower), result.z - nlp.lower, 0.0)
    slack_up = np.where(np.isfinite(nlp.upper), nlp.upper - result.z, 0.0)
    complementarity = max(np.max(np.abs(result.multipliers[~eq] * point.values[~eq]), initial=0.0),
                          np.max(np.abs(result.lower_multipliers * slack_lo), initial=0.0),
                          np.max(np.abs(result.upper_multipliers * slack_up), initial=0.0))
    feasibility = max(np.max(-point.values[~eq], initial=0.0), np.max(np.abs(point.values[eq]), initial=0.0))
    signs = min(np.min(result.multipliers[~eq], initial=0.0), np.min(result.lower_multipliers, initial=0.0),
                np.min(result.upper_multipliers, initial=0.0))
    return np.max(np.abs(stationarity)), complementarity, feasibility, signs


def test_every_row_and_bound_kind_in_lexmargins_convention():
    """min -z0 - 2 z1 + z2 / 2  s.t.  z0 + z1 <= 4 (a row), z0 - z2 = 1 (an equality), z0 >= 0, z1 <= 3, z2 >= -1:
    the unique vertex z = (1, 3, 0), where grad phi = J^T lambda + E^T mu + lower - upper needs lambda = 1/2,
    mu = -1/2 and an upper-bound multiplier 3/2 on z1."""
    problem = lp(np.array([-1.0, -2.0, 0.5]), np.array([[-1.0, -1.0, 0.0]]), np.array([-4.0]),
                 E=np.array([[1.0, 0.0, -1.0]]), e=np.array([1.0]), lower=np.array([0.0, -np.inf, -1.0]),
                 upper=np.array([np.inf, 3.0, np.inf]))
    result = highs.solve(problem.nlp())
    assert result.status == Status.OPTIMAL and result.solver == "highs" and result.vertex
    assert result.return_status == "optimal"
    np.testing.assert_allclose(result.z, [1.0, 3.0, 0.0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.multipliers, [0.5, -0.5], rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.upper_multipliers, [0.0, 1.5, 0.0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.lower_multipliers, [0.0, 0.0, 0.0], rtol=0, atol=1e-12)
    stationarity, complementarity, feasibility, signs = kkt(problem.nlp(), result)
    assert stationarity <= 1e-12 and complementarity <= 1e-12 and feasibility <= 1e-12 and signs >= 0
    assert result.objective == pytest.approx(-7.0, rel=1e-15)


def test_bound_multipliers_in_the_scaled_variables_map_back():
    """x_scale = (2^20, 2^-20): HiGHS works in u = z / x_scale; the point and the bound multipliers come back in z."""
    scale = np.array([2.0 ** 20, 2.0 ** -20])
    problem = lp(np.array([1.0, 1.0]), np.array([[1.0, 1.0]]), np.array([-5.0]), lower=np.array([3.0, 1e-7]),
                 x_scale=scale)
    result = highs.solve(problem.nlp())
    np.testing.assert_allclose(result.z, [3.0, 1e-7], rtol=1e-15)
    np.testing.assert_allclose(result.lower_multipliers, [1.0, 1.0], rtol=1e-15)
    assert kkt(problem.nlp(), result)[0] <= 1e-15


@pytest.mark.parametrize("case, status", [("infeasible", Status.INFEASIBLE), ("unbounded", Status.FAILED)])
def test_no_vertex_is_a_status_with_zero_multipliers(case, status):
    A = np.array([[1.0], [-1.0]]) if case == "infeasible" else np.array([[1.0]])
    b = np.array([2.0, -1.0]) if case == "infeasible" else np.array([0.0])
    q = np.array([1.0]) if case == "infeasible" else np.array([-1.0])
    result = highs.solve(lp(q, A, b).nlp())
    assert result.status == status and not np.any(result.multipliers)
    assert result.return_status == ("infeasible" if case == "infeasible" else "unbounded")
    assert result.solver == "highs" and result.vertex is True and 0.0 <= result.seconds < 60.0
    assert np.isnan(result.objective) and result.z.tolist() == [0.0]
    assert not np.any(result.lower_multipliers) and not np.any(result.upper_multipliers)


def test_linearity_is_judged_relative_to_the_largest_entry_at_least_1():
    """The derivatives at z = 0 and z = 1 may differ by LINEARITY_TOL (1e-12) of their largest entry (at least 1):
    entries of size 1 moving by 1.5e-12 are refused, by 0.5e-12 accepted; entries of 1e6 moving by 1e-7 accepted
    (that is 1e-13 of them); an NLP without rows is a linear program."""
    base = lp(np.array([1.0, 0.0]), np.array([[1.0, 1.0]]), np.array([1.0]))
    nlp = base.nlp()

    def moving(delta, size=1.0):
        return replace(nlp, evaluate=lambda z, p=None: replace(
            nlp.evaluate(z), jacobian=size * np.array([[1.0, 1.0]]) + delta * np.array([[0.0, z[0]]])))

    with pytest.raises(ValueError, match="not a linear program"):
        highs.linear_program(moving(1.5e-12))
    assert highs.linear_program(moving(0.5e-12))[1].shape == (1, 2)
    assert highs.linear_program(moving(1e-7, size=1e6))[1].shape == (1, 2)
    free = lp(np.array([1.0, 1.0]), np.zeros((0, 2)), np.zeros(0), lower=np.zeros(2))
    g, J, c0 = highs.linear_program(free.nlp())
    assert g.tolist() == [1.0, 1.0] and J.shape == (0, 2) and c0.shape == (0,)
    assert highs.solve(free.nlp()).z.tolist() == [0.0, 0.0]


def test_a_change_of_exactly_the_linearity_tolerance_is_still_affine():
    """The derivatives may differ by up to LINEARITY_TOL of their largest entry, that bound included: an entry 0 at
    z = 0 that is exactly 1e-12 at z = 1 (beside an entry 1) is accepted."""
    nlp = lp(np.array([1.0, 0.0]), np.array([[1.0, 1.0]]), np.array([1.0])).nlp()
    moving = replace(nlp, evaluate=lambda z, p=None: replace(
        nlp.evaluate(z), jacobian=np.array([[1.0, highs.LINEARITY_TOL * z[0]]])))
    assert highs.LINEARITY_TOL == 1e-12
    assert highs.linear_program(moving)[1].tolist() == [[1.0, 0.0]]


def test_inequality_rows_alone_get_their_multipliers():
    """min z0 + z1 s.t. z0 + 2 z1 >= 2, z >= 0 (inequality rows only, no equality): the vertex (0, 1) with the row's
    multiplier 1/2 and z0's lower-bound multiplier 1/2; the seconds it took, a float."""
    problem = lp(np.array([1.0, 1.0]), np.array([[1.0, 2.0]]), np.array([2.0]), lower=np.zeros(2))
    result = highs.solve(problem.nlp())
    assert result.status == Status.OPTIMAL
    np.testing.assert_allclose(result.z, [0.0, 1.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(result.multipliers, [0.5], rtol=0, atol=1e-15)
    np.testing.assert_allclose(result.lower_multipliers, [0.5, 0.0], rtol=0, atol=1e-15)
    assert isinstance(result.seconds, float) and 0.0 <= result.seconds < 60.0
    stationarity, complementarity, feasibility, signs = kkt(problem.nlp(), result)
    assert stationarity <= 1e-15 and complementarity <= 1e-15 and feasibility <= 1e-15 and signs >= 0

def test_upper_bounds_in_the_scaled_variables_map_back():
    """max z0 + z1 s.t. z0 <= 3, z1 <= 1e-7 with x_scale = (2^20, 2^-20): the point and the upper-bound multipliers
    (1 each) in z."""
    scale = np.array([2.0 ** 20, 2.0 ** -20])
    problem = lp(np.array([-1.0, -1.0]), np.zeros((0, 2)), np.zeros(0), upper=np.array([3.0, 1e-7]), x_scale=scale)
    result = highs.solve(problem.nlp())
    np.testing.assert_allclose(result.z, [3.0, 1e-7], rtol=1e-15)
    np.testing.assert_allclose(result.upper_multipliers, [1.0, 1.0], rtol=1e-15)
    assert not np.any(result.lower_multipliers) and kkt(problem.nlp(), result)[0] <= 1e-15


def test_linprogs_status_1_is_the_iteration_limit_unless_its_message_says_time(monkeypatch):
    """Both limits are linprog's status 1; HiGHS's message tells them apart.  The iterations are linprog's nit."""
    import scipy.optimize

    real = scipy.optimize.linprog
    problem = lp(np.ones(2), np.array([[1.0, 1.0]]), np.array([1.0]), lower=np.zeros(2))

    def limited(message):
        def linprog(*args, **kwargs):
            result = real(*args, **kwargs)
            result.status, result.message, result.nit = 1, message, 7
            return result
        return linprog

    monkeypatch.setattr(scipy.optimize, "linprog", limited("Iteration limit reached. (HiGHS Status 14)"))
    stopped = highs.solve(problem.nlp())
    assert (stopped.status, stopped.return_status, stopped.iterations) == (Status.MAX_ITERATIONS, "iteration_limit", 7)
    monkeypatch.setattr(scipy.optimize, "linprog", limited("Time limit reached. (HiGHS Status 13)"))
    assert highs.solve(problem.nlp()).status == Status.MAX_TIME


def test_the_iterations_are_linprogs_nit_also_when_it_is_0(monkeypatch):
    """nit = 0 (HiGHS's presolve solved the LP) is 0 iterations, not 1; nit = 3 is 3."""
    import scipy.optimize

    real = scipy.optimize.linprog
    problem = lp(np.ones(2), np.array([[1.0, 1.0]]), np.array([1.0]), lower=np.zeros(2))
    for nit in (0, 3):
        def linprog(*args, nit=nit, **kwargs):
            result = real(*args, **kwargs)
            result.nit = nit
            return result
        monkeypatch.setattr(scipy.optimize, "linprog", linprog)
        result = highs.solve(problem.nlp())
        assert result.status == Status.OPTIMAL and result.iterations == nit


def test_the_time_limit_is_max_time_and_reaches_highs():
    """linprog's status 1 is the iteration or the time limit; its message says which."""
    rng = np.random.default_rng(0)
    A = np.abs(rng.standard_normal((2000, 50)))            # A z >= 1, z >= 0: feasible
    problem = lp(np.ones(50), A, np.ones(2000), lower=np.zeros(50))
    stopped = highs.solve(problem.nlp(), time_limit=1e-6)
    assert stopped.status == Status.MAX_TIME and stopped.return_status == "time_limit"
    assert highs.solve(problem.nlp()).status == Status.OPTIMAL


def test_a_nonlinear_nlp_is_refused():
    problem = replace(lp(np.array([1.0, 0.0]), np.array([[1.0, 1.0]]), np.array([1.0])), Q=np.eye(2))
    with pytest.raises(ValueError, match="not a linear program"):
        highs.solve(problem.nlp())
    rows = lp(np.array([1.0, 0.0]), np.array([[1.0, 1.0]]), np.array([1.0]))
    curved = replace(rows, casadi=False)
    nlp = curved.nlp()
    bent = replace(nlp, evaluate=lambda z, p=None: replace(nlp.evaluate(z), jacobian=np.array([[1.0, 1.0 + z[0]]])))
    with pytest.raises(ValueError, match="not a linear program"):
        highs.solve(bent)


def lp_reference(X, y, norm):
    """max-margin in l1 / linf as an LP written here (HiGHS): the optimal value of ||w||."""
    A = y[:, None] * X
    N, d = A.shape
    if norm == "l1":
        r = linprog(np.ones(2 * d), A_ub=-np.hstack([A, -A]), b_ub=-np.ones(N), bounds=[(0, None)] * (2 * d),
                    method="highs")
        return float(np.sum(r.x))
    c = np.append(np.zeros(d), 1.0)
    rows = np.vstack([np.hstack([-A, np.zeros((N, 1))]), np.hstack([np.eye(d), -np.ones((d, 1))]),
                      np.hstack([-np.eye(d), -np.ones((d, 1))])])
    r = linprog(c, A_ub=rows, b_ub=np.concatenate([-np.ones(N), np.zeros(2 * d)]), bounds=[(None, None)] * (d + 1),
                method="highs")
    return float(r.x[-1])


MIXED_UNITS = {   # the hunt's cases: IPOPT ended Error_In_Step_Computation on both (objective 1.4e-4 / 10 % off)
    "l1": (np.array([[0., -2e-05, 2e-02, -2e-01, 2e+02], [-2e+06, -1e-05, 0., -2e-01, -1e+02]]), np.array([1., 1.])),
    "linf": (np.array([[0, -1e-05, 2e-01, 2e-01, 2e-06, -1e-02, 0, -2e-03, -1e+03, 1e+04, 2e+05, -1e-04, -2e-01, -2e+03],
                       [1e+02, 0, -2e-01, 0, 1e-06, -2e-02, 2e+03, 0, -2e+03, -2e+04, -2e+05, 0, -1e-01, 0],
                       [1e+02, -1e-05, 1e-01, 2e-01, -2e-06, 2e-02, -1e+03, -1e-03, 0, 0, -1e+05, 2e-04, -1e-01,
                        -2e+03]]), np.array([1., -1., 1.])),
}


@pytest.mark.parametrize("norm", ["l1", "linf"])
def test_polyhedral_max_margin_on_mixed_units_is_the_lps_optimum(norm):
    X, y = MIXED_UNITS[norm]
    model = lm.load_model("linear", input_dim=X.shape[1])
    cert = lm.max_margin(model, (X, y), norm=norm)
    assert cert.status == "optimal" and cert.solver.name == "highs" and cert.kkt.max <= 1e-12
    assert cert.objective == pytest.approx(lp_reference(X, y, norm), rel=1e-12)
    assert np.min(y * (X @ cert.theta)) >= 1 - 1e-12
    ipopt = lm.max_margin(model, (X, y), norm=norm, route="ipopt", raise_on_failure=False)
    assert ipopt.solver.name == "ipopt"          # route="ipopt" still asks for IPOPT


def test_the_lp_route_needs_a_linear_model_and_a_polyhedral_objective():
    X, y = MIXED_UNITS["l1"]
    model = lm.load_model("linear", input_dim=X.shape[1])
    with pytest.raises(ValueError, match="polyhedral"):
        lm.max_margin(model, (X, y), route="lp")
    cert = lm.max_margin(model, (X, y), norm="l1", route="lp")
    assert cert.solver.name == "highs"
    # finish=False asks for IPOPT's own point, as on the dual route
    assert lm.max_margin(model, (X, y), norm="l1", finish=False, raise_on_failure=False).solver.name == "ipopt"


def test_data_no_hyperplane_separates_is_proved_not_separable():
    X, y = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]]), np.array([1.0, -1.0, 1.0])
    cert = lm.max_margin(lm.load_model("linear", input_dim=2), (X, y), norm="l1", raise_on_failure=False)
    assert cert.status == "not_separable"


@PROPERTY
@given(seed=st.integers(0, 10_000), N=st.integers(2, 12), d=st.integers(1, 8), spread=st.integers(0, 12),
       norm=st.sampled_from(["l1", "linf"]))
def test_property_polyhedral_max_margin_is_never_beaten(seed, N, d, spread, norm):
    """Integer data, feature j in units 10^U(-spread/2, spread/2), labels of a random hyperplane: an ``optimal``
    objective equals the LP's (relative 1e-9); nothing else is claimed ``optimal``."""
    rng = np.random.default_rng(seed)
    X = rng.integers(-3, 4, size=(N, d)).astype(float) * 10.0 ** rng.uniform(-spread / 2, spread / 2, size=d)
    w = rng.standard_normal(d)
    y = np.where(X @ w >= 0, 1.0, -1.0)
    if np.any(np.all(X == 0, axis=1)):
        return                                       # a zero sample is on every hyperplane: not separable
    cert = lm.max_margin(lm.load_model("linear", input_dim=d), (X, y), norm=norm, raise_on_failure=False)
    if cert.status == "optimal":
        assert cert.objective == pytest.approx(lp_reference(X, y, norm), rel=1e-9)
        assert np.min(y * (X @ cert.theta)) >= 1 - 1e-9


@pytest.mark.parametrize("norm", ["l1", "linf"])
def test_tall_data_is_solved_on_a_working_set_of_rows(monkeypatch, norm):
    """Above WORKING_SET_ABOVE samples: constraint generation from the rows of smallest margin along the rows' mean
    direction; the multipliers land on their rows of the full problem, which the certificate judges on every row.
    A seed of 12 rows (monkeypatched) needs more than one round here."""
    from lexmargin.problems import lp as LP

    rng = np.random.default_rng(4)
    X = rng.standard_normal((300, 4))
    y = np.where(X @ np.array([1.0, -2.0, 0.5, 1.0]) >= 0, 1.0, -1.0)
    X = X + 0.05 * y[:, None] * np.array([1.0, -2.0, 0.5, 1.0])
    model = lm.load_model("linear", input_dim=4)
    everything = lm.max_margin(model, (X, y), norm=norm, route="lp")
    assert "every row" in everything.solver.message
    monkeypatch.setattr(LP, "WORKING_SET_ABOVE", 50)
    monkeypatch.setattr(LP, "SEED_ROWS", 12)
    monkeypatch.setattr(LP, "SEED_FACTOR", 1)
    cert = lm.max_margin(model, (X, y), norm=norm, route="lp")
    rounds = int(cert.solver.message.split(" rounds")[0].split()[-1])
    assert cert.status == "optimal" and rounds >= 2 and cert.diagnostics.working_set_rounds == rounds
    assert cert.diagnostics.working_set_size < 300
    assert cert.objective == pytest.approx(lp_reference(X, y, norm), rel=1e-12)
    assert cert.objective == pytest.approx(everything.objective, rel=1e-12)
    support = np.flatnonzero(cert.multipliers)
    assert support.size and np.all(np.abs(y[support] * (X[support] @ cert.theta) - 1.0) <= 1e-12)


@pytest.mark.parametrize("norm", ["l1", "linf"])
def test_a_working_set_that_is_enough_at_once_is_not_every_row(monkeypatch, norm):
    """Above WORKING_SET_ABOVE samples, a first working set of 150 of 300 rows that no other row violates: one round,
    and the message says how many rows (not "every row"); the optimum is the full LP's."""
    from lexmargin.problems import lp as LP

    rng = np.random.default_rng(4)
    X = rng.standard_normal((300, 4))
    y = np.where(X @ np.array([1.0, -2.0, 0.5, 1.0]) >= 0, 1.0, -1.0)
    X = X + 0.05 * y[:, None] * np.array([1.0, -2.0, 0.5, 1.0])
    model = lm.load_model("linear", input_dim=4)
    monkeypatch.setattr(LP, "WORKING_SET_ABOVE", 50)
    monkeypatch.setattr(LP, "SEED_ROWS", 150)
    monkeypatch.setattr(LP, "SEED_FACTOR", 1)
    cert = lm.max_margin(model, (X, y), norm=norm, route="lp")
    assert cert.status == "optimal" and cert.diagnostics.working_set_rounds == 1
    assert cert.diagnostics.working_set_size == 150
    assert f"the {norm} norm's lift, 150 rows in 1 rounds): optimal" in cert.solver.message
    assert cert.objective == pytest.approx(lp_reference(X, y, norm), rel=1e-12)


@pytest.mark.parametrize("norm", ["l1", "linf"])
def test_the_lp_routes_theta_beyond_the_largest_double_is_failed_with_its_exponent(norm):
    """Data at 1e-310: HiGHS's vertex is certified on the prescaled problem, but theta ~ 1e310 overflows in the data's
    units: failed, and the message gives the prescaling's exponent."""
    X = np.array([[1.0, 0.2], [-1.0, 0.1], [0.8, -0.3], [-0.9, -0.2]]) * 1e-310
    y = np.array([1.0, -1.0, 1.0, -1.0])
    cert = lm.max_margin(lm.load_model("linear", input_dim=2), (X, y), norm=norm, route="lp", raise_on_failure=False)
    assert cert.solver.name == "highs" and cert.status == Status.FAILED and not np.all(np.isfinite(cert.theta))
    exponent = cert.diagnostics.scale_exponent
    assert exponent < -1000
    assert cert.solver.message.endswith(f"; theta overflows double precision in the data's units (the certified point "
                                        f"is theta' = 2^{exponent} theta of the prescaled problem; rescale the data)")


def test_a_working_set_solve_that_fails_hands_over_its_status(monkeypatch):
    """HiGHS not optimal on the working set: the loop stops, the full problem's result carries that status (the
    certificate is not optimal, and route="auto" runs IPOPT)."""
    from lexmargin.problems import lp as LP

    rng = np.random.default_rng(5)
    X = rng.standard_normal((80, 3))
    y = np.where(X[:, 0] >= 0, 1.0, -1.0)
    X[:, 0] += 0.1 * y
    monkeypatch.setattr(LP, "WORKING_SET_ABOVE", 10)
    real = highs.solve
    monkeypatch.setattr(highs, "solve", lambda nlp, time_limit=None: replace(
        real(nlp, time_limit), z=np.zeros(nlp.n), status=Status.MAX_ITERATIONS, return_status="iteration_limit"))
    model = lm.load_model("linear", input_dim=3)
    cert = lm.max_margin(model, (X, y), norm="l1", route="lp", raise_on_failure=False)
    assert cert.status == "max_iterations" and cert.solver.status == "max_iterations"
    assert cert.diagnostics.working_set_rounds == 1
    auto = lm.max_margin(model, (X, y), norm="l1")
    assert auto.status == "optimal" and auto.solver.name == "ipopt"


@pytest.mark.parametrize("norm", ["l1", "linf"])
def test_the_lp_routes_certificate_field_by_field(norm):
    """What lp_certificate assembles: HiGHS's status, return status and iterations in the SolverInfo and the one
    start, its message, the rows solved on, the finish's verdict, the objective in the data's units (data at 2^-40
    of the hunt's scale: prescaled, theta 2^40 larger), the margins judged on every row."""
    X, y = MIXED_UNITS["l1"]
    X = np.vstack([X, -X[:1] + 1e-3])
    y = np.append(y, -1.0)
    X = X * 2.0 ** -40
    model = lm.load_model("linear", input_dim=X.shape[1])
    cert = lm.max_margin(model, (X, y), norm=norm, route="lp")
    solver, start = cert.solver, cert.diagnostics.starts[0]
    assert (solver.name, solver.status, solver.return_status) == ("highs", "optimal", "optimal")
    assert solver.message == (f"HiGHS dual simplex on the linear program (the {norm} norm's lift, every row): optimal "
                              f"after {solver.iterations} iterations")
    assert 0.0 < solver.seconds < 60.0 and solver.iterations >= 0
    assert len(cert.diagnostics.starts) == 1 and start.status == "optimal" and start.iterations == solver.iterations
    assert start.kkt_max == cert.kkt.max and start.objective == pytest.approx(cert.objective, rel=1e-15)
    assert cert.diagnostics.working_set_rounds == 1 and cert.diagnostics.working_set_size == X.shape[0]
    unscaled = lm.max_margin(model, (X * 2.0 ** 40, y), norm=norm, route="lp")    # theta scales by 2^40
    assert cert.objective == pytest.approx(2.0 ** 40 * unscaled.objective, rel=1e-12)
    assert cert.diagnostics.scale_exponent != 0 and cert.margins.shape == (X.shape[0],)
    assert np.min(cert.margins) == pytest.approx(1.0, rel=1e-12)
    assert cert.finish.reason == "" or cert.finish.reason.startswith("not needed")


def test_the_lp_route_gets_what_is_left_of_the_time_limit(monkeypatch):
    """The time HiGHS may take is the solve's limit less what has passed (never negative), None without a limit."""
    from lexmargin.problems import lp as LP

    seen = []
    real = highs.solve
    monkeypatch.setattr(highs, "solve", lambda nlp, time_limit=None: seen.append(time_limit) or real(nlp, time_limit))
    X, y = MIXED_UNITS["l1"]
    model = lm.load_model("linear", input_dim=X.shape[1])
    lm.max_margin(model, (X, y), norm="l1", route="lp")
    lm.max_margin(model, (X, y), norm="l1", route="lp", time_limit=30.0)
    assert seen[0] is None and 25.0 < seen[1] <= 30.0
    problem = lm.MaxMarginProblem(model, lm.Dataset(X, y), norm="l1")
    LP.lp_certificate(problem, lm.SolveOptions(time_limit=1.0, raise_on_failure=False), started=-1e9)
    assert seen[2] == 0.0


def test_a_working_sets_multipliers_land_on_their_rows_of_the_full_problem():
    """Working rows (4, 1) of N = 6 margin rows, then two norm rows: (z, objective, status) kept, multipliers placed."""
    from lexmargin.nlp.ipopt import IpoptResult
    from lexmargin.problems.lp import on_every_row

    part = IpoptResult(np.array([1.0, 2.0]), 3.0, np.array([0.5, 0.25, 7.0, 8.0]), np.zeros(2), np.zeros(2),
                       Status.OPTIMAL, "optimal", 3, 0.1, solver="highs", vertex=True)
    full = on_every_row(part, np.array([1, 4]), 8, 6, 11, 2.5)
    assert full.multipliers.tolist() == [0.0, 0.5, 0.0, 0.0, 0.25, 0.0, 7.0, 8.0]
    assert (full.iterations, full.seconds, full.objective, full.status) == (11, 2.5, 3.0, Status.OPTIMAL)
    assert full.z.tolist() == [1.0, 2.0] and full.vertex and full.solver == "highs"
