"""SolverFactory('lexmargin'): registration in both import orders, in fresh interpreters (the solver interface,
certify_pyomo and the import hook in process are tested in tests/verification/test_verify_pyomo_solver.py, which
the mutation run uses)."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("pyomo.environ")


# ---- registration -----------------------------------------------------------------------------------------------
SOLVE = """
m = pyo.ConcreteModel()
m.x = pyo.Var(initialize=0.0)
m.obj = pyo.Objective(expr=(m.x - 2) ** 2)
m.c = pyo.Constraint(expr=m.x <= 1)
m.dual = pyo.Suffix(direction=pyo.Suffix.IMPORT)
r = pyo.SolverFactory("lexmargin").solve(m)
solved = [str(r.solver.termination_condition), pyo.value(m.x), m.dual[m.c]]
"""
HOOKED = 'any(getattr(f, "lexmargin_pyomo_hook", False) for f in sys.meta_path)'
IMPORT_ORDERS = {
    "lexmargin first": f"""
import json, sys
import lexmargin
before = {{"pyomo": "pyomo" in sys.modules, "hook": {HOOKED}}}
import pyomo.environ as pyo
after = {{"registered": "lexmargin" in pyo.SolverFactory, "casadi": "casadi" in sys.modules, "hook": {HOOKED},
         "loader": type(sys.modules["pyomo.opt.base.solvers"].__loader__).__name__}}
{SOLVE}
print(json.dumps([before, after, solved]))
""",
    "pyomo first": f"""
import json, sys
import pyomo.environ as pyo
import lexmargin
print(json.dumps({{"registered": pyo.SolverFactory.get_class("lexmargin").__name__, "hook": {HOOKED}}}))
""",
    "pyomo.opt alone": """
import json, sys
import lexmargin
from pyomo.opt import SolverFactory
print(json.dumps([SolverFactory.get_class("lexmargin").__name__, "pyomo.environ" in sys.modules]))
""",
}


def test_registration_in_both_import_orders():
    """Fresh interpreters, run side by side: lexmargin then Pyomo (the import hook; a solve), Pyomo then
    lexmargin (registered at once), and pyomo.opt without pyomo.environ.  Registering imports no CasADi."""
    runs = {name: subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True) for name, code in IMPORT_ORDERS.items()}
    out = {}
    for name, proc in runs.items():
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        out[name] = json.loads(stdout.strip().splitlines()[-1])
    before, after, solved = out["lexmargin first"]
    assert before == {"pyomo": False, "hook": True}
    assert after == {"registered": True, "casadi": False, "hook": False, "loader": "SourceFileLoader"}
    assert solved[0] == "optimal" and solved[1] == pytest.approx(1.0) and solved[2] == pytest.approx(-2.0)
    assert out["pyomo first"] == {"registered": "LazySolver", "hook": False}
    assert out["pyomo.opt alone"][0] == "LazySolver"


