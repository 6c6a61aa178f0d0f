"""A two-layer ReLU network's max-margin solution, certified Clarke-KKT (docs/certificates.md, "ReLU networks").

ReLU nets are not differentiable where a unit's pre-activation is 0, so the KKT notion is Clarke's
(Lyu & Li 2020).  `max_margin` solves the problem restricted to one activation region (smooth there),
walks to a neighbouring region when the region's sign rows bind, and calls a point `optimal` only when
a Clarke-KKT certificate holds within tolerance; otherwise it says `region_boundary` (not certified here)
or another honest status.  A certified point is a local candidate (a first-order point), not a proof
of the global max-margin network.
"""

import numpy as np

import lexmargin as lm

rng = np.random.default_rng(0)
X = rng.standard_normal((30, 2))
data = lm.Dataset(X, np.sign(X[:, 0] + 0.5 * X[:, 1]))

# f(theta; x) = sum_j a_j relu(v_j . x): 4 hidden units, degree 2 in theta
model = lm.load_model("two_layer", input_dim=2, activation="relu", width=4)
cert = lm.max_margin(model, data, starts=5, seed=0, time_limit=60, raise_on_failure=False)

print(cert.summary())
print("status:", cert.status)
print("objective ||theta||^2 = %.6f, smallest margin %.9f" % (cert.objective, cert.margins.min()))
region = cert.diagnostics.region
print("activation region: %d units, %d sign rows, %d tight (at a kink), interior: %s"
      % (region.n_units, region.n_sign_constraints, region.tight_sign_constraints, region.interior))
print("restricted problem's largest residual: %.1e" % region.restricted_kkt.max)
if region.clarke is not None:                   # present when the Clarke check had kinked units to decide
    print("Clarke check: kinks %d on %d rows, undecided rows %d, residuals %s"
          % (region.clarke["kinks"], region.clarke["kinked_rows"], region.clarke["undecided_rows"],
             {k: float("%.1e" % v) for k, v in region.clarke["residuals"].items()}))
for step in region.walk:                        # the regions visited from the best start, in order
    print("  region: status %-16s objective %.6f, binding sign rows %d"
          % (step.status, step.objective, step.binding_sign_rows))
for i, start in enumerate(cert.diagnostics.starts):   # every start's outcome is recorded
    print("  start %d: status %-16s objective %.6f" % (i, start.status, start.objective))
# The second-order check uses the region's Hessian, a one-sided model at kinks: informational only.
print("second order (informational at kinks): strict=%s, smallest eigenvalue %.2e"
      % (cert.second_order.strict, cert.second_order.min_eigenvalue))
