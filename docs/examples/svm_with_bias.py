"""Hard-margin SVM with an unregularized bias, as the depth-sensitive limit of the `svm_bias` model.

The bundled `svm_bias` model f = y (w . x + b1^2 - b2^2) is a sum of a degree-1 block (w) and a degree-2
block (the bias).  By Theorem 1 of Nacson et al. (2019) gradient descent maximizes the margin of the
shallower block first, which is the SVM min ||w||^2 s.t. y_n (w . x_n + b) >= 1 with b left free.
`lm.svm_with_bias` computes it (a convex QP, certified stage by stage on the model) and returns (w, b, result).
Appending a constant feature instead regularizes the bias and gives a different classifier.
"""
# requires: sklearn

import numpy as np
from sklearn.svm import SVC

import lexmargin as lm

# 16 points around (1, 0.5), labelled by a line that does not pass through the origin
rng = np.random.default_rng(3)
X = 0.5 * rng.standard_normal((16, 2)) + np.array([1.0, 0.5])
y = np.where(X[:, 0] - 0.5 * X[:, 1] > 0.8, 1.0, -1.0)
X += 0.15 * y[:, None] * np.array([1.0, -0.5])
data = lm.Dataset(X, y)

w, b, result = lm.svm_with_bias(data)          # sign="both": any bias, b = b1^2 - b2^2
print("route:", result.route, " success:", result.success)
print("w =", np.round(w, 6), " b = %.6f" % b)
for stage in result.stages:                     # stage 1: min ||w||^2; stage 2: the smallest bias parameters
    print("  stage over blocks %s (degree %g): value %.6g, status %s, KKT residual %.1e"
          % (stage.blocks, stage.degree, stage.value, stage.certificate.status, stage.certificate.kkt.max))
model = lm.load_model("svm_bias", input_dim=2, sign="both")
print("the svm_bias model's parameters (w, b1, b2):", np.round(result.theta, 6))
print("its smallest margin: %.9f" % model.margins(result.theta, data).min())

# scikit-learn's soft-margin SVC approaches the hard-margin SVM as C grows
svc = SVC(kernel="linear", C=1e10, tol=1e-12).fit(X, y)
print("sklearn SVC (C=1e10): w =", np.round(svc.coef_[0], 6), " b = %.6f" % svc.intercept_[0])
assert np.allclose(w, svc.coef_[0], atol=1e-5) and abs(b - svc.intercept_[0]) < 1e-5

# the max-margin solution on augmented features [x, 1] minimizes ||w||^2 + b^2: not the same classifier
augmented = lm.Dataset(np.hstack([X, np.ones((len(y), 1))]), y)
wb = lm.max_margin(lm.load_model("linear", input_dim=3), augmented).theta
print("augmented features [x, 1]: w =", np.round(wb[:2], 6), " b = %.6f (the bias is regularized)" % wb[2])
