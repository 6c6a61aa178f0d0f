"""Stationarity report of a trained network: how close is training to a KKT point of the max-margin problem?

A two-layer ReLU net is trained with normalized gradient descent on the exponential loss
(`lexmargin.numeric`, batched numpy kernels).  Its direction converges to a KKT point of
min ||theta||^2 s.t. f_n(theta) >= 1 (Lyu & Li 2020); `stationarity_report` measures how far the trained
parameters are from one: it rescales theta to the constraint level, fits multipliers on the support by
NNLS and reports the (eps, delta)-KKT numbers, LICQ and, for the checkpoints, the normalized margin and
the angle to a certified max-margin solution started from the trained point.
"""

import tempfile

import numpy as np

import lexmargin as lm
from lexmargin.numeric import Normalized, Reference, kernel_for, train
from lexmargin.report import stationarity_report

rng = np.random.default_rng(0)
X = rng.standard_normal((30, 2))
data = lm.Dataset(X, np.sign(X[:, 0] + 0.5 * X[:, 1]))
model = lm.load_model("two_layer", input_dim=2, activation="relu", width=4)

kernel = kernel_for(model, data)                 # numpy kernel, checked against the model's CasADi margins
theta0 = kernel.random_theta([0])                # one run, seed 0
history = train(kernel, theta0, rule=Normalized(0.01), n_steps=20000, checkpoints=12)
print("trained %d steps: log-loss %.1f, normalized margin %.6f"
      % (history.steps[-1], history.log_loss[-1, 0], history.normalized_margin[-1, 0]))

# the max-margin problem solved from the trained point (its activation region), for comparison
cert = lm.max_margin(model, data, init=history.theta[0], raise_on_failure=False)
print("max_margin from the trained point:", cert.status, " normalized margin %.6f" % cert.normalized_margin)

# Directions converge slowly (like 1/log of the loss), so after 20000 steps the numbers are small but not
# at 1e-3: the report says so rather than rounding it to "KKT".
report = stationarity_report(model, data, history, certificate=cert, run=0, seed=0)
kkt = report.kkt
print("support (samples within 10%% of the smallest margin): %s" % [int(n) for n in report.support])
print("relative eps %.2e, delta %.2e, primal violation %.1e, approximately KKT (1e-3): %s"
      % (kkt.relative_epsilon, kkt.delta, kkt.primal_violation, report.is_approximate_kkt()))
print("LICQ on the support:", report.licq.holds)
c = report.comparison
print("angle to the certificate's theta %.2e rad, between margin vectors %.2e rad"
      % (c.angle, c.margin_vector_angle))
for step, margin, angle in zip(report.trajectory.iterations, report.trajectory.margins, report.trajectory.angles):
    print("  step %6d: normalized margin %.6f, angle to the certificate %.3e" % (step, margin, angle))

with tempfile.TemporaryDirectory() as out:      # report.json (docs/schema/report.schema.json), report.md, figures
    files = report.save(out, formats=("png",))
    print("saved:", sorted(files))
