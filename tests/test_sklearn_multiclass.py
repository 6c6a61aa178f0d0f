"""MaxMarginClassifier with more than two classes (issue 16): the hard-margin Crammer-Singer max-margin of one
K-output model (not one-vs-rest), against lexmargin's own certificate, cvxpy/Clarabel (Kesler form) and
LinearSVC(multi_class="crammer_singer", C large); classes_ of any labels, decision_function (n, K), predict,
refusals, pickling and pipelines.  scikit-learn's estimator checks run in tests/test_sklearn.py."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

import lexmargin as lm
from lexmargin import NotSeparableError, Status
from lexmargin.modeling.multiclass import multiplier_matrix
from lexmargin.sklearn import MaxMarginClassifier


def separable(seed=0, n=30, d=3, K=4):
    """Labels argmax_k (W x)_k of a random W: separable by a linear K-class model through the origin."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((K, d))
    X = rng.standard_normal((n, d))
    return X, np.argmax(X @ W.T, axis=1)


def wine():
    X, y = load_wine(return_X_y=True)
    return (X - X.mean(axis=0)) / X.std(axis=0), y


def kesler_clarabel(X, y, K):
    """min ||W||^2 s.t. (W_{y_n} - W_j) . x_n >= 1 with cvxpy + Clarabel at tolerances 1e-12 (W as K d, C order)."""
    cp = pytest.importorskip("cvxpy")
    rows = []
    for x, label in zip(X, y):
        for j in range(K):
            if j != label:
                a = np.zeros((K, X.shape[1]))
                a[label], a[j] = x, -x
                rows.append(a.ravel())
    w = cp.Variable(K * X.shape[1])
    problem = cp.Problem(cp.Minimize(cp.sum_squares(w)), [np.array(rows) @ w >= 1])
    problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12, tol_ktratio=1e-10)
    assert problem.status == cp.OPTIMAL
    return np.asarray(w.value).reshape(K, X.shape[1])


def relative(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


def test_wine_is_crammer_singer_with_any_labels():
    X, y = wine()
    names = np.array(["barolo", "grignolino", "barbera"])[y]       # sorted: barbera, barolo, grignolino
    clf = MaxMarginClassifier().fit(X, names)
    assert clf.classes_.tolist() == ["barbera", "barolo", "grignolino"]
    assert clf.certificate_.status == Status.OPTIMAL and clf.certificate_.kkt.max <= 1e-8
    index = np.searchsorted(clf.classes_, names)                     # the integer label of each sample
    cert = lm.max_margin(lm.load_model("multiclass_linear", input_dim=13, n_classes=3),
                         lm.Dataset(X, index, n_classes=3))
    np.testing.assert_array_equal(clf.theta_, cert.theta)
    assert clf.coef_.shape == (3, 13) and clf.intercept_.tolist() == [0.0, 0.0, 0.0]
    np.testing.assert_array_equal(clf.coef_.ravel(), cert.theta)    # row k is classes_[k]
    scores = clf.decision_function(X)
    assert scores.shape == (178, 3)
    np.testing.assert_allclose(scores, X @ clf.coef_.T, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(clf.predict(X), names)
    assert clf.score(X, names) == 1.0
    n, j = clf.certificate_.margin_rows.T
    assert np.min(scores[n, index[n]] - scores[n, j]) == pytest.approx(1.0, abs=1e-9)   # hard margin 1


def test_wine_matches_linear_svc_crammer_singer_at_large_c():
    """LinearSVC(multi_class="crammer_singer") minimizes 1/2 ||W||^2 + C sum_n max_j hinge; on separable data with
    C = 1e3 above every dual variable it is the hard-margin problem.  liblinear stops on its dual's projected
    gradient: at tol=1e-10 it agrees to 5.5e-11 relative (measured), asserted to 1e-7 as in test_multiclass.py."""
    X, y = wine()
    clf = MaxMarginClassifier().fit(X, y)
    assert clf.certificate_.multipliers.max() / 2 < 1e3             # lambda / 2: ||W||^2 here, 1/2 ||W||^2 there
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        svc = LinearSVC(multi_class="crammer_singer", C=1e3, fit_intercept=False, tol=1e-10,
                        max_iter=200_000).fit(X, y)
    assert relative(svc.coef_, clf.coef_) <= 1e-7
    assert np.array_equal(svc.predict(X), clf.predict(X))


@pytest.mark.parametrize("seed, K, d", [(0, 4, 3), (1, 3, 5), (2, 5, 3)])
def test_matches_cvxpy_clarabel_and_is_not_one_vs_rest(seed, K, d):
    X, y = separable(seed, n=10 * K, d=d, K=K)
    assert np.all(np.bincount(y, minlength=K) > 0)                     # every class present
    labels = np.array([10, 20, 30, 40, 50])[y]                        # integer labels that are not 0..K-1
    clf = MaxMarginClassifier().fit(X, labels)
    assert clf.classes_.tolist() == [10, 20, 30, 40, 50][:K]
    W_ref = kesler_clarabel(X, y, K)
    assert relative(clf.coef_, W_ref) <= 1e-8
    # stationarity of ||W||^2 read from the certificate's (n, j) multipliers: 2 W = sum lambda_nj (e_y - e_j) x_n^T
    Lam = multiplier_matrix(clf.certificate_, K)
    C = -Lam
    C[np.arange(len(y)), y] = Lam.sum(axis=1)
    np.testing.assert_allclose(2 * clf.coef_, C.T @ X, atol=1e-8 * np.max(np.abs(clf.coef_)))
    # not one-vs-rest: "class k against the rest" through the origin is not separable on these data (measured on
    # all three draws), while the K-class problem is
    with pytest.raises(NotSeparableError):
        OneVsRestClassifier(MaxMarginClassifier()).fit(X, labels)


def test_class_order_permutes_the_rows_and_two_classes_stay_binary():
    X, y = separable(3, n=24, d=3, K=3)
    clf = MaxMarginClassifier().fit(X, y)
    flipped = MaxMarginClassifier().fit(X, 2 - y)                      # class k is now called 2 - k
    np.testing.assert_allclose(flipped.coef_, clf.coef_[::-1], rtol=1e-10, atol=1e-12)
    binary = MaxMarginClassifier().fit(X[y < 2], y[y < 2])
    assert binary.coef_.shape == (1, 3) and binary.decision_function(X).shape == (len(y),)


def test_non_separable_classes_raise_with_a_farkas_proof():
    X = np.array([[1.0], [2.0], [3.0], [1.5]])                        # class "b" between "a" and "c" on a line
    clf = MaxMarginClassifier()
    with pytest.raises(NotSeparableError) as info:
        clf.fit(X, ["a", "b", "c", "a"])
    assert info.value.certificate.status == Status.NOT_SEPARABLE
    assert info.value.certificate.diagnostics.farkas is not None
    assert not hasattr(clf, "classes_") and not hasattr(clf, "certificate_")
    with pytest.raises(NotSeparableError, match="identical") as info:
        clf.fit(np.array([[1.0, 2.0], [1.0, 2.0], [3.0, 1.0]]), [0, 1, 2])
    assert info.value.certificate is None


def test_the_model_must_have_one_output_per_class():
    X, y = separable(4, n=20, d=3, K=3)
    with pytest.raises(ValueError, match="3 classes but model 'mlp_relu' has 1 output"):
        MaxMarginClassifier("mlp", model_options={"hidden": (4,)}).fit(X, y)
    with pytest.raises(ValueError, match="has 3 outputs but y has 2 classes"):
        MaxMarginClassifier(lm.load_model("multiclass_linear", input_dim=3, n_classes=3)).fit(X[y < 2], y[y < 2])
    with pytest.raises(ValueError, match="takes only n_classes"):
        MaxMarginClassifier(model_options={"width": 2}).fit(X, y)
    built = MaxMarginClassifier(lm.load_model("multiclass_linear", input_dim=3, n_classes=3)).fit(X, y)
    np.testing.assert_array_equal(built.theta_, MaxMarginClassifier().fit(X, y).theta_)
    assert not hasattr(built, "coef_")                                # coef_ only for model="linear"


def test_pickle_pipeline_and_cross_validation():
    X, y = wine()
    clf = pickle.loads(pickle.dumps(MaxMarginClassifier().fit(X, y)))
    assert "_model" not in clf.__dict__
    np.testing.assert_allclose(clf.decision_function(X[:5]), X[:5] @ clf.coef_.T, rtol=1e-13, atol=1e-13)
    raw, _ = load_wine(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), MaxMarginClassifier())
    scores = cross_val_score(pipe, raw, y, cv=StratifiedKFold(3, shuffle=True, random_state=0))
    assert scores.shape == (3,) and np.all(scores > 0.9)


# ---- SVMWithBiasClassifier with K > 2 classes: the Crammer-Singer SVM with unregularized biases ------------
def kesler_with_biases(X, y, K):
    """min ||W||^2 s.t. (w_{y_n} - w_j) . x_n + b_{y_n} - b_j >= 1 (the biases b free) with cvxpy + Clarabel."""
    cp = pytest.importorskip("cvxpy")
    W, b = cp.Variable((K, X.shape[1])), cp.Variable(K)
    rows = [(W[label] - W[j]) @ x + b[label] - b[j] >= 1
            for x, label in zip(X, y) for j in range(K) if j != label]
    problem = cp.Problem(cp.Minimize(cp.sum_squares(W)), rows)
    problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12, tol_ktratio=1e-10)
    assert problem.status == cp.OPTIMAL
    return np.asarray(W.value), np.asarray(b.value) - np.mean(b.value)


def test_svm_with_biases_of_k_classes_agrees_with_cvxpy():
    """Wine (3 classes) and shifted random data (4 classes, separable only with biases): W and the biases (sum 0:
    they are free up to a common constant) agree with cvxpy + Clarabel to 1e-8; the certificate is optimal with one
    row per (n, j); the biases left out of the objective give a smaller ||W|| than the model through the origin."""
    from lexmargin.sklearn import SVMWithBiasClassifier

    rng = np.random.default_rng(4)
    Xs, ys = separable(seed=3, n=40, d=3, K=4)
    for X, y, K in ((*wine(), 3), (Xs + 5.0 * rng.standard_normal(3), ys, 4)):
        labels = np.array(["c%d" % k for k in y])
        clf = SVMWithBiasClassifier().fit(X, labels)
        W, b = kesler_with_biases(X, y, K)
        assert relative(clf.coef_, W) <= 1e-8 and np.max(np.abs(clf.intercept_ - b)) <= 1e-8 * np.max(np.abs(W))
        assert clf.certificate_.status == Status.OPTIMAL and clf.certificate_.kkt.max <= 1e-8
        assert clf.certificate_.margin_rows.shape == (X.shape[0] * (K - 1), 2) and clf.result_ is None
        assert abs(clf.intercept_.sum()) <= 1e-12 and clf.n_iter_ >= 1
        scores = clf.decision_function(X)
        assert scores.shape == (X.shape[0], K) and np.all(clf.predict(X) == labels)
        np.testing.assert_allclose(scores, X @ clf.coef_.T + clf.intercept_)
        own = scores[np.arange(len(y)), y]
        assert np.min(own[:, None] - np.where(np.eye(K, dtype=bool)[y], -np.inf, scores)) >= 1 - 1e-9
        origin = MaxMarginClassifier().fit(X, labels) if K == 3 else None
        if origin is not None:
            assert np.sum(clf.coef_ ** 2) <= np.sum(origin.coef_ ** 2) + 1e-9


def test_svm_with_biases_of_k_classes_refusals():
    """sign="positive" (b >= 0, the two-class svm_bias model's limit) takes two classes only; data that no K affine
    scores separate raise NotSeparableError with a Farkas proof."""
    from sklearn.datasets import load_iris

    from lexmargin.sklearn import SVMWithBiasClassifier

    X, y = wine()
    with pytest.raises(ValueError, match="Only binary classification is supported"):
        SVMWithBiasClassifier(sign="positive").fit(X, y)
    Xi, yi = load_iris(return_X_y=True)
    with pytest.raises(NotSeparableError) as info:
        SVMWithBiasClassifier().fit(Xi, yi)
    assert info.value.certificate.diagnostics.farkas is not None
    clf = SVMWithBiasClassifier().fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict(X), clf.predict(X))
