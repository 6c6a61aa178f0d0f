"""Linear SVM through the origin: the exact max-margin solution with its certificate.

For a linear model f(theta; x) = theta . x, gradient descent on the exponential loss converges in
direction to the solution of min ||theta||^2 s.t. y_n theta . x_n >= 1 (the hard-margin SVM without a
bias).  `lm.max_margin` solves it and returns a certificate whose residuals are recomputed in numpy;
scikit-learn's SVC with a very large C (a soft margin that is almost hard) agrees with it.
"""
# requires: sklearn

import numpy as np
from sklearn.svm import SVC

import lexmargin as lm

# 40 separable points in the plane, labels from a direction through the origin, pushed 0.3 off the line
rng = np.random.default_rng(0)
w_true = np.array([1.0, -2.0]) / np.sqrt(5.0)
X = rng.standard_normal((40, 2))
y = np.where(X @ w_true >= 0, 1.0, -1.0)
X += 0.3 * y[:, None] * w_true
data = lm.Dataset(X, y)

model = lm.load_model("linear", input_dim=2)
cert = lm.max_margin(model, data)              # min ||theta||^2  s.t.  y_n theta . x_n >= 1
print(cert.summary())
print("status:", cert.status.value)
print("theta:", np.round(cert.theta, 6), " margin 1/||theta|| =", round(1 / np.linalg.norm(cert.theta), 6))
print("support vectors:", [int(n) for n in cert.support], " multipliers there:", np.round(cert.multipliers[cert.support], 6))
print("largest relative KKT residual: %.1e" % cert.kkt.max)

# scikit-learn: the same problem as a soft-margin SVM with C = 1e8 and no intercept.  Its decision
# function is w . x + b, so the bias is removed by fitting on the points and their negatives with
# flipped labels (a symmetric data set has b = 0); dual_coef_ is half of lexmargin's multipliers
# because SVC's objective is (1/2) ||w||^2 (docs/certificates.md).
svc = SVC(kernel="linear", C=1e8, tol=1e-10).fit(np.vstack([X, -X]), np.concatenate([y, -y]))
w_svc = svc.coef_.ravel()
print("sklearn SVC (C=1e8) w:", np.round(w_svc, 6), " intercept: %.1e" % svc.intercept_[0])
print("max |theta - w_svc| = %.1e" % np.max(np.abs(cert.theta - w_svc)))
assert np.allclose(cert.theta, w_svc, atol=1e-4)
