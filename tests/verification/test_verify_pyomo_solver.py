"""SolverFactory('lexmargin') and lexmargin.certify_pyomo: the import hook's registration in process, classic NLP
test problems with published optima and multipliers, max-margin models,
termination conditions, tee, options, max/min/abs, and certificates of a model's current values."""

import io
import json
import logging
import math
import sys
import textwrap

import numpy as np
import pytest

import lexmargin as lm
from lexmargin.errors import ModelError
from lexmargin.interop import pyomo_plugin
from lexmargin.nlp.status import Status

pyo = pytest.importorskip("pyomo.environ")
from pyomo.core.expr import MaxExpression, MinExpression
from pyomo.opt import (
    SolutionStatus,
    SolverStatus,
    TerminationCondition,
    check_optimal_termination,
)

from lexmargin.interop import pyomo as P

TC = TerminationCondition


def solver(**kwds):
    return pyo.SolverFactory("lexmargin", **kwds)


def suffixes(m, rc=True):
    m.dual = pyo.Suffix(direction=pyo.Suffix.IMPORT)
    if rc:
        m.rc = pyo.Suffix(direction=pyo.Suffix.IMPORT)
    return m


# ---- classic test problems (Hock & Schittkowski 1981; fmincon's constrained Rosenbrock) ------------------------
HS71_X = [1.0, 4.7429994, 3.8211503, 1.3794082]


def hs71(x0=(1.0, 5.0, 5.0, 1.0)):
    """min x1 x4 (x1 + x2 + x3) + x3  s.t.  x1 x2 x3 x4 >= 25,  sum x_i^2 = 40,  1 <= x <= 5.
    Optimum 17.0140173 at (1, 4.7429994, 3.8211503, 1.3794082); IPOPT's hs071 example prints the multipliers
    lambda = (-0.5522937, 0.1614686) and z_L[0] = 1.0878712 (its L = f + lambda^T g)."""
    m = pyo.ConcreteModel(name="hs71")
    m.x = pyo.Var([1, 2, 3, 4], bounds=(1, 5), initialize=dict(zip([1, 2, 3, 4], x0)))
    x = m.x
    m.obj = pyo.Objective(expr=x[1] * x[4] * (x[1] + x[2] + x[3]) + x[3])
    m.product = pyo.Constraint(expr=x[1] * x[2] * x[3] * x[4] >= 25)
    m.sphere = pyo.Constraint(expr=sum(x[i] ** 2 for i in x) == 40)
    return m


def hs35():
    """min 9 - 8x1 - 6x2 - 4x3 + 2x1^2 + 2x2^2 + x3^2 + 2x1x2 + 2x1x3  s.t.  x1 + x2 + 2x3 <= 3,  x >= 0.
    Optimum 1/9 at (4/3, 7/9, 4/9), multiplier 2/9."""
    m = pyo.ConcreteModel(name="hs35")
    m.x = pyo.Var([1, 2, 3], bounds=(0, None), initialize=0.5)
    x = m.x
    m.obj = pyo.Objective(expr=9 - 8 * x[1] - 6 * x[2] - 4 * x[3] + 2 * x[1] ** 2 + 2 * x[2] ** 2 + x[3] ** 2
                          + 2 * x[1] * x[2] + 2 * x[1] * x[3])
    m.c = pyo.Constraint(expr=x[1] + x[2] + 2 * x[3] <= 3)
    return m


def hs76():
    """min x1^2 + x2^2/2 + x3^2 + x4^2/2 - x1x3 + x3x4 - x1 - 3x2 + x3 - x4  s.t.  x1 + 2x2 + x3 + x4 <= 5,
    3x1 + x2 + 2x3 - x4 <= 4,  x2 + 4x3 >= 1.5,  x >= 0.  Optimum -4.6818182 at (0.2727273, 2.0909091, 0,
    0.5454545) = (3, 23, 0, 6) / 11, value -103/22; multipliers 5/11 (first row) and 19/11 (x3 >= 0)."""
    m = pyo.ConcreteModel(name="hs76")
    m.x = pyo.Var([1, 2, 3, 4], bounds=(0, None), initialize=0.5)
    x = m.x
    m.obj = pyo.Objective(expr=x[1] ** 2 + 0.5 * x[2] ** 2 + x[3] ** 2 + 0.5 * x[4] ** 2 - x[1] * x[3]
                          + x[3] * x[4] - x[1] - 3 * x[2] + x[3] - x[4])
    m.c1 = pyo.Constraint(expr=x[1] + 2 * x[2] + x[3] + x[4] <= 5)
    m.c2 = pyo.Constraint(expr=3 * x[1] + x[2] + 2 * x[3] - x[4] <= 4)
    m.c3 = pyo.Constraint(expr=x[2] + 4 * x[3] >= 1.5)
    return m


def rosenbrock_disk(sense="min", radius2=1.0):
    """Rosenbrock's function on the unit disk: optimum 0.0456748 at (0.7864152, 0.6176983) (MATLAB's fmincon
    tutorial: x = [0.7864, 0.6177], fval 0.0457); as a maximization of its negative too."""
    m = pyo.ConcreteModel(name=f"rosenbrock_{sense}")
    m.x, m.y = pyo.Var(initialize=0.0), pyo.Var(initialize=0.0)
    f = (1 - m.x) ** 2 + 100 * (m.y - m.x ** 2) ** 2
    m.obj = pyo.Objective(expr=f if sense == "min" else -f, sense=pyo.minimize if sense == "min" else pyo.maximize)
    m.disk = pyo.Constraint(expr=m.x ** 2 + m.y ** 2 <= radius2)
    return m


def assert_optimal(results):
    assert results.solver.termination_condition == TC.optimal and results.solver.status == SolverStatus.ok
    assert check_optimal_termination(results)
    assert len(results.solution) == 0                 # loaded, as Pyomo's own solvers leave it


def test_hs71_values_objective_and_published_multipliers():
    m = suffixes(hs71())
    opt = solver()
    results = opt.solve(m)
    assert_optimal(results)
    np.testing.assert_allclose([pyo.value(m.x[i]) for i in m.x], HS71_X, atol=1e-7)
    assert pyo.value(m.obj) == pytest.approx(17.0140173, abs=1e-7)
    # Pyomo's convention, d objective* / d bound: IPOPT's lambda and z_L with the sign of d f* / d b = -lambda
    assert m.dual[m.product] == pytest.approx(0.5522937, abs=1e-6)     # raising 25 costs: > 0
    assert m.dual[m.sphere] == pytest.approx(-0.1614686, abs=1e-6)
    assert m.rc[m.x[1]] == pytest.approx(1.0878712, abs=1e-6)          # x1 >= 1 active: > 0
    assert all(m.rc[m.x[i]] == pytest.approx(0.0, abs=1e-9) for i in (2, 3, 4))
    assert results.problem.upper_bound == pytest.approx(17.0140173, abs=1e-7)
    assert results.problem.sense == pyo.minimize and results.problem.number_of_variables == 4
    assert results.problem.number_of_constraints == 2
    assert results.solver.name == "lexmargin" and results.solver.iterations == opt.last_result.iterations > 0
    assert "lexmargin optimal" in results.solver.message and "Solve_Succeeded" in results.solver.message
    cert = opt.last_result.certificate
    assert cert.status == Status.OPTIMAL and cert.kkt.max <= 1e-8 and cert.licq.holds
    assert cert.second_order.strict is True


def test_hs35_and_hs76_quadratic_programs():
    m = suffixes(hs35())
    assert_optimal(solver().solve(m))
    np.testing.assert_allclose([pyo.value(m.x[i]) for i in m.x], [4 / 3, 7 / 9, 4 / 9], atol=1e-8)
    assert pyo.value(m.obj) == pytest.approx(1 / 9, abs=1e-10)
    assert m.dual[m.c] == pytest.approx(-2 / 9, abs=1e-8)              # an upper bound: relaxing it helps
    assert all(m.rc[m.x[i]] == pytest.approx(0.0, abs=1e-9) for i in m.x)
    m = suffixes(hs76())
    assert_optimal(solver().solve(m))
    np.testing.assert_allclose([pyo.value(m.x[i]) for i in m.x], np.array([3, 23, 0, 6]) / 11, atol=1e-8)
    assert pyo.value(m.obj) == pytest.approx(-103 / 22, abs=1e-9)
    np.testing.assert_allclose([m.dual[c] for c in (m.c1, m.c2, m.c3)], [-5 / 11, 0, 0], atol=1e-8)
    np.testing.assert_allclose([m.rc[m.x[i]] for i in m.x], [0, 0, 19 / 11, 0], atol=1e-8)


@pytest.mark.parametrize("sense", ["min", "max"])
def test_rosenbrock_on_the_disk_duals_are_derivatives_of_the_optimum(sense):
    m = suffixes(rosenbrock_disk(sense), rc=False)
    results = solver().solve(m)
    assert_optimal(results)
    assert (pyo.value(m.x), pyo.value(m.y)) == pytest.approx((0.7864152, 0.6176983), abs=1e-7)
    s = 1 if sense == "min" else -1
    assert pyo.value(m.obj) == pytest.approx(s * 0.0456748, abs=1e-7)
    bound = "upper_bound" if sense == "min" else "lower_bound"
    assert getattr(results.problem, bound) == pytest.approx(pyo.value(m.obj))
    delta, values = 1e-4, []
    for sign in (1, -1):
        other = rosenbrock_disk(sense, 1 + sign * delta)
        solver().solve(other)
        values.append(pyo.value(other.obj))
    derivative = (values[0] - values[1]) / (2 * delta)
    assert m.dual[m.disk] == pytest.approx(derivative, abs=1e-6)
    assert np.sign(m.dual[m.disk]) == -s                               # min: relaxing helps; max: it raises


def test_max_margin_model_through_solver_factory_matches_max_margin():
    X = np.array([[2.0, 0.5], [1.0, 2.0], [-1.5, -0.5], [-0.5, -2.0], [1.5, 1.5]])
    data = lm.Dataset(X, np.array([1, 1, -1, -1, 1.0]))
    model = lm.load_model("linear", input_dim=2)
    cert = lm.max_margin(model, data)
    pm = P.to_pyomo(model, data)
    results = solver().solve(pm)
    assert_optimal(results)
    np.testing.assert_allclose(P.theta_of(pm), cert.theta, atol=1e-8)
    np.testing.assert_allclose(P.margin_duals(pm), cert.multipliers, atol=1e-7)
    assert np.all(P.margin_duals(pm) >= 0)                              # lower bounds of a minimization
    assert pyo.value(pm.objective) == pytest.approx(cert.objective, rel=1e-10)


# ---- statuses ------------------------------------------------------------------------------------------------
def test_status_map_is_total_and_in_pyomo_vocabulary():
    from pyomo.opt import SolutionStatus

    assert set(P.STATUS_MAP) == set(Status)
    for status, (termination, solver_status, solution_status) in P.STATUS_MAP.items():
        TC(termination), SolverStatus(solver_status), SolutionStatus(solution_status)
        assert (termination == "optimal") == (status == Status.OPTIMAL)
        assert (solver_status == "ok") == (status == Status.OPTIMAL)
    assert P.PYOMO_TERMINATION[Status.MAX_ITERATIONS] == "maxIterations"


def test_infeasible_problem(caplog):
    m = pyo.ConcreteModel(name="infeasible")
    m.x = pyo.Var(initialize=0.3)
    m.obj = pyo.Objective(expr=m.x ** 2)
    m.a = pyo.Constraint(expr=m.x >= 1)
    m.b = pyo.Constraint(expr=m.x <= 0)
    suffixes(m)
    with caplog.at_level(logging.WARNING, logger="lexmargin"):
        results = solver().solve(m)
    assert results.solver.termination_condition == TC.infeasible and results.solver.status == SolverStatus.warning
    assert not check_optimal_termination(results)
    assert pyo.value(m.x) == 0.3 and len(m.dual) == 0                 # nothing loaded ...
    assert "not loading" in caplog.text and "infeasible" in caplog.text
    assert len(results.solution) == 1 and results.solution(0).status == SolutionStatus.infeasible  # ... but kept
    assert results.problem.upper_bound == math.inf


def test_iteration_limit_and_loading_the_kept_point_on_request():
    m = suffixes(hs71())
    results = solver().solve(m, options={"max_iter": 1})
    assert results.solver.termination_condition == TC.maxIterations
    assert results.solver.status == SolverStatus.warning and not check_optimal_termination(results)
    assert [pyo.value(m.x[i]) for i in m.x] == [1.0, 5.0, 5.0, 1.0]
    point = results.solution(0)
    assert point.status == SolutionStatus.stoppedByLimit and point.variable["x[2]"]["Value"] != 5.0
    m.solutions.load_from(results)                                     # Pyomo's own loading, with its warning
    assert pyo.value(m.x[2]) == point.variable["x[2]"]["Value"] and m.product in m.dual


def test_certificate_overrules_a_converged_solver():
    """IPOPT says Solve_Succeeded; with a KKT tolerance no residual meets, the certificate says inaccurate, and
    Pyomo hears 'other', never 'optimal'."""
    m = hs71()
    opt = solver()
    results = opt.solve(m, options={"tolerances": {"kkt": 1e-300}})
    assert opt.last_result.return_status == "Solve_Succeeded" and opt.last_result.status == Status.INACCURATE
    assert results.solver.termination_condition == TC.other and results.solver.status == SolverStatus.warning
    assert not check_optimal_termination(results) and pyo.value(m.x[2]) == 5.0


def test_load_solutions_false_keeps_the_model_and_pyomo_loads_the_results():
    m = suffixes(hs71())
    results = solver().solve(m, load_solutions=False)
    assert results.solver.termination_condition == TC.optimal and len(results.solution) == 1
    assert [pyo.value(m.x[i]) for i in m.x] == [1.0, 5.0, 5.0, 1.0] and len(m.dual) == 0
    assert results.solution(0).status == SolutionStatus.optimal
    m.solutions.load_from(results)
    np.testing.assert_allclose([pyo.value(m.x[i]) for i in m.x], HS71_X, atol=1e-7)
    assert m.dual[m.product] == pytest.approx(0.5522937, abs=1e-6) and m.rc[m.x[1]] == pytest.approx(1.0878712,
                                                                                                      abs=1e-6)


def test_only_declared_suffixes_are_filled():
    m = hs71()
    solver().solve(m)
    assert m.component("dual") is None and m.component("rc") is None
    m = suffixes(hs71(), rc=False)
    m.dual[m.product] = 123.0                  # stale values are cleared by Pyomo's loading
    solver().solve(m)
    assert m.dual[m.product] == pytest.approx(0.5522937, abs=1e-6) and m.component("rc") is None


def test_a_block_is_solved_with_its_own_suffixes():
    m = pyo.ConcreteModel()
    m.b = pyo.Block()
    m.b.x = pyo.Var(initialize=3.0)
    m.b.o = pyo.Objective(expr=(m.b.x - 4) ** 2)
    m.b.c = pyo.Constraint(expr=m.b.x <= 1)
    m.b.dual = pyo.Suffix(direction=pyo.Suffix.IMPORT)
    assert_optimal(solver().solve(m.b))
    assert pyo.value(m.b.x) == pytest.approx(1.0, abs=1e-9) and m.b.dual[m.b.c] == pytest.approx(-6.0, abs=1e-7)


# ---- tee, options ----------------------------------------------------------------------------------------------
def test_tee_shows_ipopt_output_and_the_certificate(capsys, tmp_path):
    solver().solve(hs35())
    assert capsys.readouterr().out == ""
    solver().solve(hs35(), tee=True)
    out = capsys.readouterr().out
    assert "Ipopt" in out and "EXIT: Optimal Solution Found." in out and "iter    objective" in out
    assert "lexmargin: pyomo: optimal" in out.splitlines()[-1]
    stream, log = io.StringIO(), tmp_path / "ipopt.log"
    solver().solve(hs35(), tee=stream, logfile=str(log))
    assert capsys.readouterr().out == "" and "EXIT: Optimal Solution Found." in stream.getvalue()
    assert log.read_text() == stream.getvalue()
    solver().solve(hs35(), tee=True, options={"print_level": 1})     # the user's print level wins
    assert "iter    objective" not in capsys.readouterr().out


def test_options_persistent_per_solve_string_and_constructor():
    opt = solver()
    opt.options["max_iter"] = 1
    assert opt.solve(hs71()).solver.termination_condition == TC.maxIterations
    assert_optimal(opt.solve(hs71(), options={"max_iter": 100}))        # per-solve options win
    assert opt.solve(hs71(), options_string="max_iter=2").solver.termination_condition == TC.maxIterations
    assert_optimal(solver(options={"mu_strategy": "adaptive", "tol": 1e-12}).solve(hs71()))
    assert solver(options={"max_iter": 1}).solve(hs71()).solver.termination_condition == TC.maxIterations
    opt = solver()
    opt.set_options("max_iter=1 mu_init=0.01")
    assert opt.options.max_iter == 1 and opt.options["mu_init"] == 0.01
    assert opt.solve(hs71()).solver.termination_condition == TC.maxIterations


def test_options_reach_solve_options_and_ipopt():
    opts = P.solve_options({"tol": 1e-9, "max_iter": 7, "finish": False, "tolerances": {"kkt": 1e-7},
                            "mu_init": 1e-3, "ipopt.linear_solver": "mumps", "ipopt": {"acceptable_iter": 2}})
    assert (opts.tol, opts.max_iter, opts.finish, opts.tolerances.kkt) == (1e-9, 7, False, 1e-7)
    assert not opts.raise_on_failure
    ipopt = opts.ipopt_options()
    assert ipopt["ipopt.mu_init"] == 1e-3 and ipopt["ipopt.linear_solver"] == "mumps"
    assert ipopt["ipopt.acceptable_iter"] == 2 and "ipopt.print_level" not in ipopt
    assert P.solve_options({}, tee=True).ipopt_options()["ipopt.print_level"] == 5
    assert P.solve_options({}, log=True).ipopt["print_level"] == 5
    assert P.solve_options({"ipopt.print_level": 2}, tee=True).ipopt == {"ipopt.print_level": 2}
    assert P.parse_options_string("max_iter=5 tol=1e-8 mu_strategy=adaptive") == {
        "max_iter": 5, "tol": 1e-8, "mu_strategy": "adaptive"}
    with pytest.raises(ValueError, match="name=value"):
        P.parse_options_string("max_iter")
    with pytest.raises(ValueError, match="no meaning"):
        P.solve_options({"starts": 3})
    opt = solver()
    unfinished = opt.solve(hs35(), options={"finish": False})
    assert_optimal(unfinished)
    assert opt.last_result.certificate.finish.reason == "not requested"
    with pytest.raises(lm.SolverError):
        opt.solve(hs71(), options={"max_iter": 1, "raise_on_failure": True})
    with pytest.raises(RuntimeError, match="No such IPOPT option"):
        opt.solve(hs71(), options={"no_such_option": 1})


def test_solver_interface():
    from pyomo.common.enums import SolverAPIVersion

    opt = solver()
    assert isinstance(opt, P.LexmarginSolver) and pyo.SolverFactory.get_class("lexmargin") is pyomo_plugin.LazySolver
    assert "lexmargin" in pyo.SolverFactory and "certificate" in pyo.SolverFactory.doc("lexmargin")
    assert opt.available() and opt.available(exception_flag=False) and opt.license_is_valid()
    assert opt.version() == (0, 1, 0) and not opt.warm_start_capable() and opt.name == "lexmargin"
    assert opt.api_version() == SolverAPIVersion.V1 and bool(opt)
    with opt as same:
        assert same is opt
    opt.reset()
    assert_optimal(opt.solve(hs35(), symbolic_solver_labels=True, keepfiles=False, report_timing=False,
                             suffixes=["dual"], warmstart=True))
    with pytest.raises(ValueError, match="unrecognized keywords: \\['timelimt'\\]"):
        opt.solve(hs35(), timelimt=3)
    with pytest.raises(ValueError, match="unknown argument"):
        P.LexmarginSolver(executable="ipopt")


# ---- max, min, abs -----------------------------------------------------------------------------------------------
def test_max_min_and_abs_in_objective_and_constraints():
    """min (x - 3)^2 + (y + 2)^2 + z^2  s.t.  max(x, y) <= 1,  min(x, z) >= 0.5,  |y - 1| <= 2:
    x = 1 (max row active, dual -4), y = -1 (abs row active: |y - 1| = 2, dual -2), z = 0.5 (min row active,
    dual 1); every kink is away from the solution."""
    m = pyo.ConcreteModel()
    m.x, m.y, m.z = pyo.Var(initialize=0.0), pyo.Var(initialize=0.0), pyo.Var(initialize=2.0)
    m.obj = pyo.Objective(expr=(m.x - 3) ** 2 + (m.y + 2) ** 2 + m.z ** 2)
    m.mx = pyo.Constraint(expr=MaxExpression((m.x, m.y)) <= 1)
    m.mn = pyo.Constraint(expr=MinExpression((m.x, m.z)) >= 0.5)
    m.ab = pyo.Constraint(expr=abs(m.y - 1) <= 2)
    suffixes(m, rc=False)
    opt = solver()
    assert_optimal(opt.solve(m))
    assert (pyo.value(m.x), pyo.value(m.y), pyo.value(m.z)) == pytest.approx((1.0, -1.0, 0.5), abs=1e-8)
    np.testing.assert_allclose([m.dual[m.mx], m.dual[m.mn], m.dual[m.ab]], [-4.0, 1.0, -2.0], atol=1e-7)
    # in the objective, maximized
    m2 = pyo.ConcreteModel()
    m2.u = pyo.Var(initialize=0.3, bounds=(-2, 2))
    m2.obj = pyo.Objective(expr=-(MaxExpression((m2.u, -1.0)) - 1.5) ** 2 - abs(m2.u + 3)
                           + MinExpression((m2.u, 10.0)), sense=pyo.maximize)
    assert_optimal(solver().solve(m2))
    assert pyo.value(m2.u) == pytest.approx(1.5, abs=1e-8)   # -(u - 1.5)^2 - (u + 3) + u


# ---- certify_pyomo ---------------------------------------------------------------------------------------------
def test_certify_pyomo_reads_suffixes_or_fits_multipliers():
    assert lm.certify_pyomo is P.certify_pyomo
    m = suffixes(hs71())
    solver().solve(m)
    cert = lm.certify_pyomo(m)
    assert cert.status == Status.OPTIMAL and cert.kkt.max <= 1e-8 and cert.licq.holds
    assert (cert.diagnostics.multipliers, cert.diagnostics.bound_multipliers) == ("suffix", "suffix")
    assert cert.solver.name == "none" and "multipliers: suffix" in cert.solver.message
    assert cert.objective == pytest.approx(17.0140173, abs=1e-7)
    again = lm.Certificate.from_dict(json.loads(cert.to_json()))
    assert again.diagnostics.to_dict() == cert.diagnostics.to_dict() and again.solver == cert.solver
    m.del_component("rc")
    cert = lm.certify_pyomo(m)
    assert cert.status == Status.OPTIMAL and cert.diagnostics.bound_multipliers == "fitted"
    m.del_component("dual")
    cert = lm.certify_pyomo(m)
    assert cert.status == Status.OPTIMAL and cert.diagnostics.multipliers == "fitted"
    assert lm.certify_pyomo(suffixes(m), multipliers="fitted").diagnostics.multipliers == "fitted"
    with pytest.raises(ModelError, match="no import Suffix 'dual'"):
        lm.certify_pyomo(m, multipliers="suffix")     # declared but empty


def test_certify_pyomo_at_the_published_point():
    """The published 8-digit point is a KKT point to ~1e-8: optimal at kkt 1e-6, not at 1e-8."""
    m = hs71(HS71_X)
    assert lm.certify_pyomo(m).status == Status.INACCURATE
    cert = lm.certify_pyomo(m, tolerances=lm.Tolerances(kkt=1e-6))
    assert cert.status == Status.OPTIMAL and cert.licq.n_active == 3 and cert.tolerances.kkt == 1e-6


def test_certify_pyomo_rejects_wrong_points_and_wrong_signs():
    m = suffixes(hs71())
    solver().solve(m)
    m.dual[m.product] = -m.dual[m.product]             # the convention flipped on a one-sided row
    cert = lm.certify_pyomo(m)
    assert cert.status == Status.INACCURATE and cert.kkt.dual_feasibility > 1e-3
    m.dual[m.product] = -m.dual[m.product]
    m.rc[m.x[1]] = -m.rc[m.x[1]]            # points at x1 <= 5, inactive: complementarity (and stationarity) fail
    cert = lm.certify_pyomo(m)
    assert cert.status == Status.INACCURATE and cert.kkt.complementarity > 1e-3 and cert.kkt.stationarity > 1e-3
    m.rc[m.x[1]] = -m.rc[m.x[1]]
    assert lm.certify_pyomo(m).status == Status.OPTIMAL
    m.x[2].set_value(4.7)                               # off the solution
    cert = lm.certify_pyomo(m)
    assert cert.status == Status.INACCURATE and cert.kkt.primal_feasibility > 1e-3
    m.x[3].set_value(None)
    with pytest.raises(ModelError, match="without a value: x\\[3\\]"):
        lm.certify_pyomo(m)
    with pytest.raises(ValueError, match="multipliers must be one of"):
        lm.certify_pyomo(m, multipliers="ipopt")
    with pytest.raises(ModelError, match="^certify_pyomo needs exactly one active Objective; found 0$"):
        lm.certify_pyomo(pyo.ConcreteModel())


def test_certify_pyomo_maximization_and_ranged_constraints():
    """max -(x - 3)^2 - (y + 1)^2 s.t. 0 <= x + y <= 1 (upper active, dual 3), y >= -0.5 (bound active, reduced
    cost -4): signs of a maximization, a ranged constraint's dual split to the row it points to."""
    m = pyo.ConcreteModel()
    m.x, m.y = pyo.Var(initialize=0.0), pyo.Var(bounds=(-0.5, None), initialize=0.0)
    m.obj = pyo.Objective(expr=-(m.x - 3) ** 2 - (m.y + 1) ** 2, sense=pyo.maximize)
    m.r = pyo.Constraint(expr=pyo.inequality(0, m.x + m.y, 1))
    suffixes(m)
    assert_optimal(solver().solve(m))
    assert (pyo.value(m.x), pyo.value(m.y)) == pytest.approx((1.5, -0.5), abs=1e-8)
    assert m.dual[m.r] == pytest.approx(3.0, abs=1e-7) and m.rc[m.y] == pytest.approx(-4.0, abs=1e-7)
    cert = lm.certify_pyomo(m)
    assert cert.status == Status.OPTIMAL and cert.diagnostics.multipliers == "suffix" and cert.diagnostics.sense == -1
    m.dual[m.r] = -3.0                     # points at the inactive lower row: complementarity fails
    assert lm.certify_pyomo(m).kkt.complementarity > 1e-3


def test_multipliers_from_duals_inverts_pyomo_duals():
    from types import SimpleNamespace as C

    rows = P._RowMap.of([C(lb=1.0, ub=None, equality=False), C(lb=None, ub=2.0, equality=False),
                         C(lb=-1.0, ub=4.0, equality=False), C(lb=3.0, ub=3.0, equality=False)])
    for sense in (1, -1):
        for duals in ([2.0, -3.0, 0.5, -4.0], [2.0, -3.0, -1.5, 4.0]):
            lam = P.multipliers_from_duals(rows, duals, sense)
            np.testing.assert_array_equal(P.pyomo_duals(rows, lam, 4, sense), duals)
            ranged = lam[2:4]                                   # rows of constraint 2: lower, upper
            assert np.all(ranged >= 0) and np.count_nonzero(ranged) == 1
    np.testing.assert_array_equal(P.multipliers_from_duals(rows, [2.0, -3.0, 0.5, -4.0], 1), [2.0, 3.0, 0.5, 0.0, -4.0])
    np.testing.assert_array_equal(P.multipliers_from_duals(rows, [-2.0, 3.0, 0.5, -4.0], -1), [2.0, 3.0, 0.0, 0.5, 4.0])
    np.testing.assert_array_equal(P.reduced_costs([1.0, 0.0], [0.0, 2.0], -1), [-1.0, 2.0])


def _nlp_at_values(m):
    problem = P._translate(m)
    rowmap = P._RowMap.of(problem.constraints)
    nlp, _ = P.pyomo_nlp(problem, rowmap)
    z = np.array([v.value for v in problem.variables])
    return problem, rowmap, nlp, z, nlp.evaluate(z)


def test_fitted_bound_multipliers_balance_the_residual():
    from dataclasses import replace

    m = suffixes(hs71())
    solver().solve(m)
    problem, rowmap, nlp, z, point = _nlp_at_values(m)
    assert problem.variables[0].name == "x[1]"
    rows = P.multipliers_from_duals(rowmap, [m.dual[c] for c in problem.constraints], 1)
    lower, upper = P.fitted_bound_multipliers(nlp, point, z, rows, lm.Tolerances())
    assert lower[0] == pytest.approx(1.0878712, abs=1e-6) and np.all(lower[1:] == 0) and np.all(upper == 0)
    lower, _ = P.fitted_bound_multipliers(nlp, point, z, np.zeros(2), lm.Tolerances())
    assert lower[0] == point.gradient[0] > 0                            # r = grad phi at the active bound only
    lower, upper = P.fitted_bound_multipliers(nlp, replace(point, gradient=-point.gradient), z, np.zeros(2),
                                              lm.Tolerances())
    assert np.all(lower == 0) and np.all(upper == 0)                    # r < 0 at a lower bound: 0, not negative
    m = pyo.ConcreteModel()                                             # an active upper bound
    m.x = pyo.Var(bounds=(0, 1), initialize=1.0)
    m.o = pyo.Objective(expr=(m.x - 4) ** 2)
    _, _, nlp, z, point = _nlp_at_values(m)
    lower, upper = P.fitted_bound_multipliers(nlp, point, z, np.zeros(0), lm.Tolerances())
    assert lower.tolist() == [0.0] and upper.tolist() == [6.0]
    assert lm.certify_pyomo(m).status == Status.OPTIMAL


# ---- registration (in process; fresh interpreters: tests/test_pyomo_plugin.py) ----------------------------
@pytest.fixture
def fake_pyomo(tmp_path, monkeypatch):
    """A package 'fakepyomo' whose module 'fakepyomo.solvers' defines a SolverFactory registry, watched in place of
    Pyomo's (the hook's mechanics, in process)."""
    pkg = tmp_path / "fakepyomo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "solvers.py").write_text(textwrap.dedent("""
        class Factory(dict):
            broken = False
            def register(self, name, doc=None):
                if self.broken:
                    raise RuntimeError("broken registry")
                def fn(cls):
                    self[name] = (cls, doc)
                    return cls
                return fn
        SolverFactory = Factory()
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(pyomo_plugin, "FACTORY_MODULE", "fakepyomo.solvers")
    monkeypatch.setattr(pyomo_plugin, "WATCHED", frozenset({"fakepyomo.solvers", "fakepyomo"}))
    yield
    pyomo_plugin.uninstall()
    for name in ("fakepyomo.solvers", "fakepyomo"):
        sys.modules.pop(name, None)


@pytest.mark.usefixtures("fake_pyomo")
def test_import_hook_registers_after_the_module_runs_and_removes_itself():
    import importlib

    assert pyomo_plugin.install() is False and len(pyomo_plugin._hooks()) == 1
    assert pyomo_plugin.install() is False and len(pyomo_plugin._hooks()) == 1   # once
    assert sys.meta_path[0].find_spec("json") is None
    solvers = importlib.import_module("fakepyomo.solvers")
    assert solvers.SolverFactory["lexmargin"] == (pyomo_plugin.LazySolver, pyomo_plugin.DOC)
    assert type(solvers.__loader__).__name__ == "SourceFileLoader" and solvers.__spec__.loader is solvers.__loader__
    assert pyomo_plugin._hooks() == []
    assert pyomo_plugin.install() is True                  # already imported: registered (kept) at once
    assert pyomo_plugin._hooks() == []


@pytest.mark.usefixtures("fake_pyomo")
def test_a_failing_registration_never_breaks_the_import():
    import importlib

    importlib.import_module("fakepyomo")
    pyomo_plugin.install()
    source = sys.modules["fakepyomo"].__path__[0] + "/solvers.py"
    with open(source, "a") as f:
        f.write("SolverFactory.broken = True\n")
    with pytest.warns(UserWarning, match="could not register"):
        solvers = importlib.import_module("fakepyomo.solvers")
    assert "lexmargin" not in solvers.SolverFactory and pyomo_plugin._hooks() == []


# ---- what the results and the certificate say, field by field (mutation tests) ---------------------------------
def test_results_fields_and_the_unloaded_solution():
    m = suffixes(hs71())
    opt = solver(type="lexmargin", name="lexmargin", doc="the solver")     # Pyomo's OptSolver keywords
    assert opt.last_result is None
    results = opt.solve(m, load_solutions=False)
    result = opt.last_result
    problem, info = results.problem[0], results.solver[0]
    assert problem.name == "hs71" and problem.number_of_objectives == 1 and problem.sense == pyo.minimize
    assert problem.number_of_variables == 4 and problem.number_of_constraints == 2
    assert info.termination_message == info.message and info.wallclock_time == result.seconds
    assert info.iterations == result.iterations
    solution = results.solution(0)
    assert solution.message == info.message
    assert solution.objective["obj"]["Value"] == pytest.approx(17.0140173, abs=1e-6)
    assert solution.variable["x[1]"]["Rc"] == pytest.approx(1.0878712, abs=1e-6)
    assert solution.variable["x[2]"]["Value"] == pytest.approx(4.7429994, abs=1e-6)
    assert solution.constraint["product"]["Dual"] == pytest.approx(0.5522937, abs=1e-6)
    maximized = solver().solve(rosenbrock_disk("max"), load_solutions=False)
    assert maximized.problem[0].sense == pyo.maximize
    assert maximized.problem[0].lower_bound == pytest.approx(-0.0456748, abs=1e-6)


def test_objective_name_is_the_active_one_in_any_block():
    m = pyo.ConcreteModel(name="nested")
    m.x = pyo.Var(initialize=0.0)
    m.first = pyo.Objective(expr=m.x ** 2)
    m.first.deactivate()
    m.b = pyo.Block()
    m.b.obj = pyo.Objective(expr=(m.x - 3) ** 2)
    m.c = pyo.Constraint(expr=m.x <= 1)
    results = solver().solve(m, load_solutions=False)
    assert list(results.solution(0).objective) == ["b.obj"]
    assert results.solution(0).objective["b.obj"]["Value"] == pytest.approx(4.0, abs=1e-8)


def test_loading_clears_stale_suffix_values_and_a_block_gets_its_rc():
    m = suffixes(hs71())
    m.spare = pyo.Var(initialize=0.0)
    m.unused = pyo.Constraint(expr=m.spare >= -1)
    m.unused.deactivate()
    m.dual[m.unused] = 99.0                      # not in the results: Pyomo's loading clears it
    solver().solve(m)
    assert m.dual.get(m.unused) is None
    blk = pyo.ConcreteModel()
    blk.b = pyo.Block()
    blk.b.x = pyo.Var(bounds=(None, 1.0), initialize=0.0)
    blk.b.o = pyo.Objective(expr=(blk.b.x - 4) ** 2)
    blk.b.rc = pyo.Suffix(direction=pyo.Suffix.IMPORT)
    assert_optimal(solver().solve(blk.b))
    assert blk.b.rc[blk.b.x] == pytest.approx(-6.0, abs=1e-7)


def test_an_uncertified_point_is_not_loaded_and_says_why(caplog):
    m = hs71()
    with caplog.at_level(logging.WARNING, logger="lexmargin"):
        results = solver().solve(m, options={"max_iter": 1})
    assert results.solver.termination_condition == TC.maxIterations
    record = next(r for r in caplog.records if r.name.startswith("lexmargin"))
    message = record.getMessage()
    assert message.startswith("SolverFactory('lexmargin'): not loading the point of model 'hs71': status "
                              "max_iterations (") and message.endswith("; it is in results.solution")
    assert results.solver.message in message
    assert [pyo.value(m.x[i]) for i in m.x] == [1.0, 5.0, 5.0, 1.0] and len(results.solution) == 1


def test_options_string_and_logfile_for_one_solve(tmp_path, capfd):
    opt = solver()
    results = opt.solve(hs71(), options_string="max_iter=1")
    assert results.solver.termination_condition == TC.maxIterations
    assert capfd.readouterr().out == ""                      # no tee, no logfile: IPOPT prints nothing
    log = tmp_path / "ipopt.log"
    assert_optimal(opt.solve(hs35(), logfile=str(log)))
    text = log.read_text()
    assert "Ipopt" in text and "iter" in text
    assert capfd.readouterr().out == ""


def test_certify_pyomo_records_where_its_multipliers_come_from():
    m = suffixes(hs71())
    solver().solve(m)
    both = P.certify_pyomo(m)
    assert (both.diagnostics.multipliers, both.diagnostics.bound_multipliers) == ("suffix", "suffix")
    assert both.solver.message == "multipliers: suffix; bound multipliers: suffix"
    assert (both.solver.name, both.solver.return_status, both.solver.iterations, both.solver.seconds) == (
        "none", "not run: the model's current values", 0, 0.0)
    assert both.finish.applied is False
    assert both.finish.reason == "not run: certify_pyomo judges the model's values as they are"
    m.del_component(m.rc)
    half = P.certify_pyomo(m)
    assert (half.diagnostics.multipliers, half.diagnostics.bound_multipliers) == ("suffix", "fitted")
    assert half.solver.message == "multipliers: suffix; bound multipliers: fitted" and half.success
    for con in m.dual:
        m.dual[con] = -m.dual[con]                   # wrong signs: not optimal when read ...
    assert not P.certify_pyomo(m).success
    fitted = P.certify_pyomo(m, multipliers="fitted")          # ... and ignored when fitted
    assert fitted.success
    assert (fitted.diagnostics.multipliers, fitted.diagnostics.bound_multipliers) == ("fitted", "fitted")
    assert fitted.solver.message == "multipliers: fitted; bound multipliers: fitted"
    bare = hs71()
    for i in bare.x:
        bare.x[i].set_value(pyo.value(m.x[i]))
    assert P.certify_pyomo(bare).success and bare.component("dual") is None and bare.component("rc") is None
    with pytest.raises(ModelError, match=r"^certify_pyomo\(multipliers='suffix'\): the model has no import "
                                         r"Suffix 'dual' with a value for every active constraint$"):
        P.certify_pyomo(bare, multipliers="suffix")


def test_certify_pyomo_uses_the_tolerances_it_is_given():
    from lexmargin.nlp.options import Tolerances

    m = rosenbrock_disk()
    solver().solve(m)
    loose = P.certify_pyomo(m)
    assert loose.success and 0 < loose.kkt.max
    strict = Tolerances(kkt=loose.kkt.max / 10)
    cert = P.certify_pyomo(m, tolerances=strict)
    assert cert.status == Status.INACCURATE and cert.tolerances == strict


def test_missing_values_are_named_five_at_most():
    for count, suffix in ((5, ""), (6, " ..."), (7, " ...")):
        m = pyo.ConcreteModel()
        m.v = pyo.Var(range(count))
        m.obj = pyo.Objective(expr=sum(m.v[i] ** 2 for i in range(count)))
        with pytest.raises(ModelError) as info:
            P.certify_pyomo(m)
        names = ", ".join(f"v[{i}]" for i in range(min(count, 5)))
        assert str(info.value) == f"certify_pyomo: variable(s) without a value: {names}{suffix}"


def test_fitted_bound_multipliers_below_one():
    """An active upper bound with multiplier 0.5: min (x - 2.25)^2 s.t. x <= 2 (a variable bound)."""
    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(-5.0, 2.0), initialize=2.0)
    m.obj = pyo.Objective(expr=(m.x - 2.25) ** 2)
    cert = P.certify_pyomo(m)
    assert cert.success
    _, _, nlp, z, point = _nlp_at_values(m)
    lower, upper = P.fitted_bound_multipliers(nlp, point, z, np.zeros(0), cert.tolerances)
    assert lower.tolist() == [0.0] and upper.tolist() == [0.5]


def test_certify_pyomo_active_set_follows_its_tolerances():
    from lexmargin.nlp.options import Tolerances

    m = pyo.ConcreteModel()
    m.x = pyo.Var(initialize=0.0)
    m.obj = pyo.Objective(expr=m.x ** 2)
    m.c = pyo.Constraint(expr=m.x >= -1e-6)          # slack 1e-6: active only under a loose active tolerance
    assert [r.active for r in P.certify_pyomo(m).rows] == [0]
    assert [r.active for r in P.certify_pyomo(m, tolerances=Tolerances(active=1e-5)).rows] == [1]
