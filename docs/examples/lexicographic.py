"""Lexicographic max-margin: when the max-margin set is not a single point.

Under the l-infinity ball the max-margin problem of this data has a whole segment of solutions:
with f = w . x the margins are w1, 2 + w2 and 2.5 - 2 w2, and every w = (1, w2) with -1 <= w2 <= 3/4
has the same smallest margin 1.  Gradient descent's limit (Theorem 4 of Nacson et al. 2019) is the
lexicographic max-margin solution: after the smallest margin, it maximizes the next one, and so on.
Here stage 2 equalizes the 2nd and 3rd margins: w = (1, 1/6), sorted margins (1, 13/6, 13/6).
"""

import numpy as np

import lexmargin as lm

X = np.array([[1.0, 0.0], [2.0, 1.0], [2.5, -2.0]])
data = lm.Dataset(X, np.ones(3))
model = lm.load_model("linear", input_dim=2)

result = lm.lexicographic_max_margin(model, data, norm="linf")
for stage in result.stages:                     # one certified stage per margin level
    print("stage %d: level %.9f, samples fixed %s, status %s, KKT residual %.1e, solution unique: %s"
          % (stage.k, stage.level, [int(n) for n in stage.fixed], stage.certificate.status,
             stage.certificate.kkt.max, stage.unique))
print("lexicographic solution:", np.round(result.theta, 9), " (exact: [1, 1/6])")
print("sorted margins:", np.round(result.sorted_margins, 9), " (exact: [1, 13/6, 13/6])")
assert np.allclose(result.theta, [1.0, 1.0 / 6.0], atol=1e-7)

# the constrained path argmin_{||theta||_inf <= 1} L(rho theta) approaches it as rho grows:
# exactly w(rho) = (1, 1/6 - log(2) / (3 rho))
path = lm.constrained_path(model, data, [1.0, 2.0, 5.0, 10.0], norm="linf", reference=result.theta)
for point in path.points:
    exact = 1 / 6 - np.log(2) / (3 * point.parameter)
    print("rho = %4g: theta = %s, w2 exact %.9f, distance to the lexicographic solution %.3g"
          % (point.parameter, np.round(point.theta, 9), exact, point.distance_to_reference))
