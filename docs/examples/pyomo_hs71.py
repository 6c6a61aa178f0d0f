"""Pyomo: lexmargin as a Pyomo solver on Hock-Schittkowski problem 71, and certify_pyomo.

After `import lexmargin`, `SolverFactory("lexmargin")` solves continuous Pyomo NLPs with IPOPT through
CasADi (no ipopt executable needed) and reports `optimal` only when lexmargin's certificate, recomputed
with Pyomo's own differentiation, says so.  `lexmargin.certify_pyomo(m)` certifies a model's current
values whoever solved it (multipliers from its `dual`/`rc` Suffixes, or fitted).  See docs/pyomo.md.
"""
# requires: pyomo

import pyomo.environ as pyo

import lexmargin

m = pyo.ConcreteModel()                          # HS71: the textbook IPOPT example
m.x = pyo.Var([1, 2, 3, 4], bounds=(1, 5), initialize={1: 1, 2: 5, 3: 5, 4: 1})
m.obj = pyo.Objective(expr=m.x[1] * m.x[4] * (m.x[1] + m.x[2] + m.x[3]) + m.x[3])
m.product = pyo.Constraint(expr=m.x[1] * m.x[2] * m.x[3] * m.x[4] >= 25)
m.sphere = pyo.Constraint(expr=sum(m.x[i] ** 2 for i in m.x) == 40)
m.dual = pyo.Suffix(direction=pyo.Suffix.IMPORT)  # constraint multipliers, in Pyomo's sign convention
m.rc = pyo.Suffix(direction=pyo.Suffix.IMPORT)    # reduced costs of the bounds

opt = pyo.SolverFactory("lexmargin")
results = opt.solve(m, options={"max_iter": 500})
print("termination:", results.solver.termination_condition)
pyo.assert_optimal_termination(results)          # optimal is the certificate's verdict, not IPOPT's claim
print("objective %.7f (known optimum 17.0140173)" % pyo.value(m.obj))
print("x =", [round(pyo.value(m.x[i]), 7) for i in m.x])
print("duals: product %.7f, sphere %.7f; reduced cost of x1 %.7f"
      % (m.dual[m.product], m.dual[m.sphere], m.rc[m.x[1]]))
print(opt.last_result.certificate.summary())      # residuals, active set, LICQ, second order

cert = lexmargin.certify_pyomo(m)                # the values and Suffixes as they are now
print("certify_pyomo: %s, largest relative residual %.1e, multipliers from: %s"
      % (cert.status, cert.kkt.max, cert.diagnostics.multipliers))

m.x[2].value += 1e-3                             # move the point: the certificate notices
moved = lexmargin.certify_pyomo(m)
print("after moving x2 by 1e-3 (off the sphere constraint): %s, largest relative residual %.1e" % (moved.status, moved.kkt.max))
