"""Depth-sensitive solutions: a shallow block that the limit of training discards.

The model f = y (w . x + (u * v) . x) sums a linear block w (degree 1) and a diagonal network with
parameters u, v (degree 2).  Theorem 1 of Nacson et al. (2019): training on the exponential loss
maximizes the margin of the shallowest block first, so the limit solves min ||w||^2 s.t. f_n >= 1;
here that minimum is 0 (the deep block separates alone), w is discarded, and the deep block solves
min ||u||^2 + ||v||^2, i.e. the l1 max-margin predictor in beta = u * v (with value 2 ||beta||_1).
The finite-gamma problems (eq. 14) move towards this solution as gamma grows.
"""

import numpy as np

import lexmargin as lm
from lexmargin import Block, Model, ops

D = 3
model = Model("linear+diagonal",
              [Block.array("w", D, degree=1), Block("deep", {"u": (D,), "v": (D,)}, degree=2)],
              input_dim=D,
              summands={"w": lambda p, x: ops.dot(p["w"], x),                  # degree 1
                        "deep": lambda p, x: ops.dot(p["u"] * p["v"], x)})     # degree 2

rng = np.random.default_rng(1)
X = rng.standard_normal((12, D))
data = lm.Dataset(X, np.sign(X @ np.array([1.0, -1.0, 0.5]) + 0.3))

result = lm.depth_sensitive(model, data)
for stage in result.stages:
    print("stage over %s (degree %g): min value %.3g, discarded: %s, status %s, KKT residual %.1e"
          % (stage.blocks, stage.degree, stage.value, stage.discarded, stage.certificate.status,
             stage.certificate.kkt.max))
params = model.unflatten(result.theta)
beta = params["u"] * params["v"]
print("discarded blocks:", result.discarded)
print("w =", params["w"], " beta = u * v =", np.round(beta, 6))
print("2 ||beta||_1 = %.9f = the deep stage's value %.9f" % (2 * np.abs(beta).sum(), result.stages[1].value))

# finite gamma: min sum_k gamma^(2/alpha_k) ||w_k||^2 s.t. f_n >= 1; the shallow block shrinks to 0
path = lm.depth_gamma_path(model, data, [1.0, 10.0, 100.0, 1e3, 1e4], reference=result.theta)
for point in path.points:
    print("gamma = %7g: ||w||^2 = %.3e, ||u||^2 + ||v||^2 = %.6f, distance to the solution %.2e"
          % (point.parameter, point.block_squared_norms["w"], point.block_squared_norms["deep"],
             point.distance_to_reference))
