"""lexmargin.sklearn: scikit-learn's estimator checks (every expected failure verified to be a
NotSeparableError on data the classifier cannot separate), agreement with lexmargin, cvxpy/Clarabel,
LinearSVC and SVC on separable data, pipelines, cross-validation, clone, pickling and labels."""

from __future__ import annotations

import importlib
import pickle
import sys
import warnings

import cvxpy as cp
import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.utils.estimator_checks import parametrize_with_checks

import lexmargin as lm
from lexmargin import NotSeparableError, Status
from lexmargin.sklearn import MaxMarginClassifier, SVMWithBiasClassifier, expected_failed_checks

SKLEARN_1_6 = tuple(int(v) for v in sklearn.__version__.split(".")[:2]) >= (1, 6)
ESTIMATORS = [MaxMarginClassifier(), SVMWithBiasClassifier(), SVMWithBiasClassifier(sign="positive")]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_estimator_checks(estimator, check):
    """Every check passes, except those in expected_failed_checks(estimator), which must fail as their reason
    says: fit raises NotSeparableError with a Farkas proof (stricter than a strict xfail, which takes any error)."""
    name = getattr(check, "func", check).__name__
    expected = expected_failed_checks(estimator)
    if name not in expected:
        check(estimator)
        return
    assert "NotSeparableError" in expected[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not SKLEARN_1_6:                            # the list is a superset there: fail as said, or pass
            try:
                check(estimator)
            except NotSeparableError:
                pass
            return
        with pytest.raises((NotSeparableError, AssertionError)) as info:
            check(estimator)
    # a few checks re-raise the fit's error as an AssertionError "from" it: the cause must be the proof
    error = info.value if isinstance(info.value, NotSeparableError) else info.value.__cause__
    assert isinstance(error, NotSeparableError), info.value
    assert error.certificate.status == Status.NOT_SEPARABLE
    assert error.certificate.diagnostics.farkas is not None


@pytest.mark.skipif(not SKLEARN_1_6, reason="check_estimator(expected_failed_checks=) is new in scikit-learn 1.6")
def test_expected_failed_checks_declares_them_to_scikit_learn():
    """The same list through scikit-learn's own mechanism: check_estimator passes with it, fails without."""
    from sklearn.utils.estimator_checks import check_estimator

    estimator = SVMWithBiasClassifier()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_estimator(estimator, expected_failed_checks=expected_failed_checks(estimator))
        with pytest.raises(NotSeparableError):
            check_estimator(estimator)


def test_expected_failed_checks_of_other_objects_is_empty():
    assert expected_failed_checks(StandardScaler()) == {}
    assert set(expected_failed_checks(SVMWithBiasClassifier())) <= set(expected_failed_checks(MaxMarginClassifier()))


# ---- data -----------------------------------------------------------------------------------------------
def separable(seed=0, n=40, d=3, offset=0.0, gap=0.3):
    """Labels of a random hyperplane (through the origin when offset = 0), pushed apart by ``gap``."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    X = rng.standard_normal((n, d))
    y = np.where(X @ u + offset >= 0, 1, -1)
    return X + gap * y[:, None] * u, y


def symmetric(seed=0, n=20, d=3):
    """x and -x with opposite labels: mean exactly 0, so standardizing keeps it separable through 0."""
    X, y = separable(seed, n, d)
    return np.vstack([X, -X]), np.concatenate([y, -y])


def clarabel(X, y, bias=False):
    """min ||w||^2 s.t. y (X w + b) >= 1 with cvxpy + Clarabel at tolerances 1e-14 (b = 0 unless bias)."""
    w = cp.Variable(X.shape[1])
    b = cp.Variable() if bias else 0.0
    problem = cp.Problem(cp.Minimize(cp.sum_squares(w)), [cp.multiply(y, X @ w + b) >= 1])
    problem.solve(solver="CLARABEL", tol_gap_abs=1e-14, tol_gap_rel=1e-14, tol_feas=1e-14, max_iter=500)
    return np.asarray(w.value), float(b.value) if bias else 0.0


def relative(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


# ---- agreement on separable data ------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_linear_is_the_hard_margin_svm_through_the_origin(seed):
    X, y = separable(seed)
    clf = MaxMarginClassifier().fit(X, y)
    cert = lm.max_margin(lm.load_model("linear", input_dim=3), lm.Dataset(X, y.astype(float)))
    assert clf.certificate_.status == Status.OPTIMAL
    np.testing.assert_array_equal(clf.coef_[0], cert.theta)
    np.testing.assert_array_equal(clf.theta_, cert.theta)
    assert clf.intercept_.tolist() == [0.0] and clf.n_iter_ >= 1
    w_ref, _ = clarabel(X, y)
    assert relative(clf.coef_[0], w_ref) <= 1e-8
    np.testing.assert_allclose(clf.decision_function(X), X @ w_ref, rtol=1e-8, atol=1e-8)
    assert np.min(y * clf.decision_function(X)) == pytest.approx(1.0, abs=1e-9)      # hard margin 1
    # LinearSVC with the hinge loss, no intercept and C above every dual variable (lambda / 2: objective
    # ||w||^2 here, 1/2 ||w||^2 there) is the same problem; liblinear may warn at tol=1e-12 yet is exact here
    C = 100.0
    assert clf.certificate_.multipliers.max() / 2 < C
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        svc = LinearSVC(fit_intercept=False, loss="hinge", C=C, tol=1e-12, max_iter=100_000).fit(X, y)
    assert relative(svc.coef_[0], clf.coef_[0]) <= 1e-8
    assert clf.score(X, y) == 1.0


@pytest.mark.parametrize("norm, p", [("l1", None), ("linf", None), ("lp", 3.0)])
def test_norms_match_max_margin_and_clarabel(norm, p):
    X, y = separable(2, n=30, d=6)
    clf = MaxMarginClassifier(norm=norm, p=p).fit(X, y)
    cert = lm.max_margin(lm.load_model("linear", input_dim=6), lm.Dataset(X, y.astype(float)), norm, p=p)
    np.testing.assert_array_equal(clf.theta_, cert.theta)
    w = cp.Variable(6)
    order = {"l1": 1, "linf": "inf", "lp": 3}[norm]
    cp.Problem(cp.Minimize(cp.norm(w, order)), [cp.multiply(y, X @ w) >= 1]).solve(
        solver="CLARABEL", tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
    assert relative(clf.theta_, w.value) <= 1e-6          # Clarabel's own accuracy on the lifted problem


@pytest.mark.parametrize("offset", [-0.7, 0.0, 0.9])
def test_svm_with_bias_matches_svc_and_clarabel(offset):
    X, y = separable(1, offset=offset)
    clf = SVMWithBiasClassifier().fit(X, y)
    w, b, result = lm.svm_with_bias(lm.Dataset(X, y.astype(float)))
    np.testing.assert_array_equal(clf.coef_[0], w)
    assert clf.intercept_[0] == b and clf.result_.route == result.route == "qp"
    assert clf.certificate_ is clf.result_.qp and clf.certificate_.status == Status.OPTIMAL
    w_ref, b_ref = clarabel(X, y, bias=True)
    assert relative(np.append(clf.coef_[0], clf.intercept_), np.append(w_ref, b_ref)) <= 1e-8
    # SVC at large C stops at its own tolerance: ~1e-4 at its default tol=1e-3, ~1e-8 at tol=1e-12
    for tol, agree in ((1e-3, 1e-3), (1e-12, 1e-6)):
        svc = SVC(kernel="linear", C=1e10, tol=tol).fit(X, y)
        assert relative(np.append(svc.coef_[0], svc.intercept_), np.append(clf.coef_[0], clf.intercept_)) <= agree
        np.testing.assert_array_equal(svc.predict(X), clf.predict(X))


def test_positive_bias_is_the_svm_restricted_to_b_nonnegative():
    """Separable through the origin, best bias negative: with b >= 0 the bias is 0 and w is the SVM through 0."""
    rng = np.random.default_rng(0)
    u = rng.standard_normal(3)
    u /= np.linalg.norm(u)
    X = rng.standard_normal((40, 3)) + np.array([1.0, 0.5, 0.0])
    y = np.where(X @ u >= 0, 1, -1)
    X = X + 0.3 * y[:, None] * u
    free = SVMWithBiasClassifier().fit(X, y)
    if free.intercept_[0] > 0:               # negating the labels negates (w, b)
        y = -y
        free = SVMWithBiasClassifier().fit(X, y)
    positive = SVMWithBiasClassifier(sign="positive").fit(X, y)
    assert free.intercept_[0] < -0.1 and positive.intercept_[0] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(positive.coef_, MaxMarginClassifier().fit(X, y).coef_, rtol=1e-9)
    w = cp.Variable(3)
    b = cp.Variable()
    cp.Problem(cp.Minimize(cp.sum_squares(w)), [cp.multiply(y, X @ w + b) >= 1, b >= 0]).solve(
        solver="CLARABEL", tol_gap_abs=1e-14, tol_gap_rel=1e-14, tol_feas=1e-14)
    assert relative(positive.coef_[0], w.value) <= 1e-8


def test_other_models_use_their_output():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 2))
    y = np.where(X[:, 0] * X[:, 1] > 0, "same", "opposite")       # XOR: no hyperplane, a quadratic net
    clf = MaxMarginClassifier("two_layer", model_options={"width": 4, "activation": "square"}, starts=2).fit(X, y)
    model = lm.load_model("two_layer", input_dim=2, width=4, activation="square")
    assert clf.certificate_.status == Status.OPTIMAL and not hasattr(clf, "coef_")
    np.testing.assert_allclose(clf.decision_function(X), model.decision_function(clf.theta_, X), rtol=1e-12)
    assert clf.score(X, y) == 1.0
    back = pickle.loads(pickle.dumps(clf))             # the CasADi model is rebuilt, not pickled
    assert "_model" not in back.__dict__
    np.testing.assert_array_equal(back.decision_function(X), clf.decision_function(X))
    # a built Model works as the parameter too
    built = MaxMarginClassifier(model, starts=2).fit(X, y)
    np.testing.assert_array_equal(built.theta_, clf.theta_)


# ---- scikit-learn tooling -------------------------------------------------------------------------------
def test_pipeline_with_standard_scaler():
    X, y = symmetric()
    X = X * np.array([1e3, 1.0, 1e-3]) + 0.0          # features of very different scales, mean 0
    pipe = make_pipeline(StandardScaler(), MaxMarginClassifier()).fit(X, y)
    direct = MaxMarginClassifier().fit(StandardScaler().fit_transform(X), y)
    np.testing.assert_allclose(pipe[-1].coef_, direct.coef_, rtol=1e-12)
    assert pipe.score(X, y) == 1.0
    np.testing.assert_allclose(pipe.decision_function(X), direct.decision_function(StandardScaler().fit_transform(X)))


def test_cross_val_score_on_separable_data():
    X, y = separable(3, n=60, gap=0.5)
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    for clf in (MaxMarginClassifier(), SVMWithBiasClassifier()):
        scores = cross_val_score(clf, X, y, cv=folds)
        manual = [clone(clf).fit(X[tr], y[tr]).score(X[te], y[te]) for tr, te in folds.split(X, y)]
        np.testing.assert_array_equal(scores, manual)
        assert scores.min() >= 0.9


def test_params_clone_and_set_params():
    clf = MaxMarginClassifier("two_layer", model_options={"width": 4}, norm="lp", p=3.0, starts=2, tol=1e-9,
                              solve_options={"finish": False})
    params = clf.get_params()
    assert params["model_options"] == {"width": 4} and params["p"] == 3.0 and params["random_state"] == 0
    twin = clone(clf)
    assert twin.get_params() == params and twin.model_options is not clf.model_options
    twin.set_params(model="linear", model_options=None, norm="l2", p=None)
    assert twin.get_params()["model"] == "linear" and clf.get_params()["model"] == "two_layer"
    # __init__ stores parameters unchanged and validates nothing; fit does
    bad = MaxMarginClassifier(norm="l3", tol=-1)
    assert bad.norm == "l3" and bad.tol == -1
    X, y = separable()
    for params, match in (({"norm": "l3"}, "unknown norm"), ({"tol": -1}, "tol"), ({"max_iter": 0}, "max_iter"),
                          ({"starts": 0}, "starts"), ({"model_options": [1]}, "model_options"),
                          ({"solve_options": {"seed": 3}}, "own parameters"),
                          ({"solve_options": {"nope": 1}}, "unknown field"), ({"norm": "l2", "p": 2}, "p is only"),
                          ({"random_state": -1}, "random_state"), ({"time_limit": 0}, "time_limit")):
        with pytest.raises(ValueError, match=match):
            MaxMarginClassifier(**params).fit(X, y)
    with pytest.raises(ValueError, match="sign"):
        SVMWithBiasClassifier(sign="negative").fit(X, y)


def test_pickle_a_fitted_estimator():
    X, y = separable()
    for clf in (MaxMarginClassifier().fit(X, y), SVMWithBiasClassifier().fit(X, y)):
        back = pickle.loads(pickle.dumps(clf))
        np.testing.assert_array_equal(back.decision_function(X), clf.decision_function(X))
        np.testing.assert_array_equal(back.certificate_.theta, clf.certificate_.theta)
        assert back.certificate_.status == Status.OPTIMAL and back.get_params() == clf.get_params()


@pytest.mark.parametrize("labels", [("cat", "dog"), (3, 7), (False, True), (-1.0, 1.0)])
def test_any_two_labels_map_to_minus_and_plus_one(labels):
    X, y = separable()
    named = np.where(y > 0, labels[1], labels[0]).astype(np.asarray(labels).dtype)
    clf = MaxMarginClassifier().fit(X, named)
    assert clf.classes_.tolist() == sorted(labels)
    np.testing.assert_array_equal(clf.coef_, MaxMarginClassifier().fit(X, y).coef_)     # classes_[1] is +1
    np.testing.assert_array_equal(clf.predict(X), named)
    assert clf.predict(X).dtype == named.dtype
    flipped = MaxMarginClassifier().fit(X, np.where(y > 0, labels[0], labels[1]))
    np.testing.assert_allclose(flipped.coef_, -clf.coef_, rtol=1e-12)


def test_one_class_or_more_than_two_is_a_value_error():
    X, y = separable()
    with pytest.raises(ValueError, match="1 class"):
        MaxMarginClassifier().fit(X, np.ones(len(y)))
    with pytest.raises(ValueError, match="Only binary classification is supported.*OneVsRestClassifier"):
        SVMWithBiasClassifier(sign="positive").fit(X, np.arange(len(y)) % 3)
    with pytest.raises(ValueError, match="Unknown label type"):
        MaxMarginClassifier().fit(X, X[:, 0])


def test_non_separable_data_raises_with_its_proof():
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    y = np.array(["a", "a", "b", "b"])
    for clf in (MaxMarginClassifier(), SVMWithBiasClassifier()):
        with pytest.raises(NotSeparableError) as info:
            clf.fit(X, y)
        assert info.value.certificate.diagnostics.farkas is not None
        with pytest.raises(NotFittedError):               # a fit that raises leaves the estimator unfitted
            clf.predict(X)
    fitted = MaxMarginClassifier().fit(*separable(d=2))
    with pytest.raises(NotSeparableError):
        fitted.fit(X, y)
    assert not hasattr(fitted, "certificate_") and not hasattr(fitted, "classes_")
    # identical samples with both labels: no certificate is needed to see it
    with pytest.raises(NotSeparableError, match="identical") as info:
        MaxMarginClassifier().fit(np.array([[1.0, 2.0], [1.0, 2.0], [3.0, 1.0]]), [0, 1, 1])
    assert info.value.certificate is None


def test_models_without_a_raw_output_or_mismatched_are_value_errors():
    X, y = separable()
    with pytest.raises(ValueError, match="no raw output"):
        MaxMarginClassifier("log_predictor").fit(np.abs(X), y)
    with pytest.raises(ValueError, match="input_dim 2"):
        MaxMarginClassifier(lm.load_model("linear", input_dim=2)).fit(X, y)
    with pytest.raises(ValueError, match="already built"):
        MaxMarginClassifier(lm.load_model("linear", input_dim=3), model_options={"width": 2}).fit(X, y)
    clf = MaxMarginClassifier().fit(X, y)
    with pytest.raises(ValueError, match="3 features"):
        clf.predict(X[:, :2])


def test_sample_weight_is_not_supported():
    X, y = separable()
    with pytest.raises(TypeError, match="sample_weight"):
        MaxMarginClassifier().fit(X, y, sample_weight=np.ones(len(y)))


def test_feature_names_in():
    pd = pytest.importorskip("pandas")
    X, y = separable()
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    clf = MaxMarginClassifier().fit(frame, y)
    assert clf.feature_names_in_.tolist() == ["a", "b", "c"] and clf.n_features_in_ == 3


def test_missing_scikit_learn_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)          # what `import sklearn` sees when it is absent
    monkeypatch.delitem(sys.modules, "lexmargin.sklearn")
    with pytest.raises(ImportError, match=r'pip install "lexmargin\[sklearn\]"'):
        importlib.import_module("lexmargin.sklearn")
