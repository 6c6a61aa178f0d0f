"""scikit-learn: exact, certified max-margin classifiers as estimators (`lexmargin.sklearn`).

`MaxMarginClassifier` fits min ||theta|| s.t. y_n f(theta; x_n) >= 1 for any declared model (the default
linear model gives the hard-margin SVM through the origin); `SVMWithBiasClassifier` is the hard-margin
SVM with an unregularized bias.  Both take any two labels, work in pipelines and cross-validation, and keep
the certificate of the fit in `certificate_`.  See docs/sklearn.md.
"""
# requires: sklearn

import numpy as np
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lexmargin.sklearn import MaxMarginClassifier, SVMWithBiasClassifier

# two separated clouds with string labels
rng = np.random.default_rng(0)
X = np.vstack([rng.normal([2.0, 1.0], 0.5, (20, 2)), rng.normal([-1.0, -1.5], 0.5, (20, 2))])
y = np.array(["spam"] * 20 + ["ham"] * 20)

clf = MaxMarginClassifier().fit(X, y)            # hard-margin SVM through the origin
print("classes:", [str(c) for c in clf.classes_], "(the second is y = +1)")
print("coef:", np.round(clf.coef_, 6), " intercept:", clf.intercept_)
print("certificate:", clf.certificate_.status, " support vectors:", [int(n) for n in clf.certificate_.support])
print("predict [[3, 0.5], [-2, -2]]:", [str(c) for c in clf.predict([[3.0, 0.5], [-2.0, -2.0]])], " training accuracy:",
      clf.score(X, y))

svm = SVMWithBiasClassifier().fit(X, y)          # with an unregularized bias
print("with bias: coef", np.round(svm.coef_, 6), " intercept %.6f" % svm.intercept_[0],
      " status", svm.certificate_.status)

# a two-layer ReLU net, and the estimators in a pipeline with cross-validation
net = MaxMarginClassifier("two_layer", model_options={"width": 3, "activation": "relu"}, starts=2, random_state=0).fit(X, y)
print("two-layer net: status", net.certificate_.status, " training accuracy", net.score(X, y))
scores = cross_val_score(make_pipeline(StandardScaler(), SVMWithBiasClassifier()), X, y, cv=4)
print("4-fold cross-validation accuracy of StandardScaler + SVMWithBiasClassifier:", np.round(scores, 3))
