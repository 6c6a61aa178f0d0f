"""scikit-learn estimators on lexmargin's exact, certified max-margin solves (docs/sklearn.md).

``from lexmargin.sklearn import MaxMarginClassifier, SVMWithBiasClassifier`` (scikit-learn >= 1.3 is an
optional dependency: ``pip install "lexmargin[sklearn]"``; ``import lexmargin`` never imports it).

* ``MaxMarginClassifier(model="linear", norm="l2", ...)``: ``fit`` solves min ||theta|| s.t.
  y_n f(theta; x_n) >= 1 with ``lexmargin.max_margin`` for any declared model (bundled name, model file,
  module, ``build`` callable or ``Model``) and norm; for ``"linear"`` and ``"l2"`` it is the hard-margin SVM
  through the origin (no bias).  ``decision_function`` is the model's raw output f(theta; x).
* ``SVMWithBiasClassifier()``: the hard-margin SVM with an unregularized bias (``lexmargin.svm_with_bias``),
  what ``sklearn.svm.SVC(kernel="linear", C=large)`` approximates; ``coef_`` and ``intercept_`` as in SVC.

Both classify any two labels (strings, integers, booleans): ``classes_`` is sorted,
``classes_[0]`` is y = -1 and ``classes_[1]`` is y = +1, so ``decision_function > 0`` predicts
``classes_[1]`` as everywhere in scikit-learn.  ``MaxMarginClassifier`` also fits K > 2 classes: one K-output
model over the margin rows g_{y_n} - g_j (``"linear"`` becomes ``multiclass_linear``: the hard-margin
Crammer-Singer SVM without bias, not one-vs-rest), ``decision_function`` (n, K), ``predict`` the argmax class.
One class, or more than two for ``SVMWithBiasClassifier``, raises ``ValueError``.  The
fitted ``certificate_`` is lexmargin's ``Certificate`` (docs/certificates.md); a fit whose certificate is
not ``optimal`` raises instead of returning an uncertified model.

Data that the model cannot separate raises ``lexmargin.NotSeparableError`` (a Farkas proof in
``.certificate`` for models linear in theta; ``.certificate`` is None when two identical samples carry
both labels); a nonconvex model with no separating point from its starts raises
``NoSeparatingPointError``.  There is no soft-margin fallback: the exact max-margin solution does not
exist then, and a soft-margin SVM is ``sklearn.svm.SVC``.  Many of scikit-learn's estimator checks fit
non-separable data; ``expected_failed_checks(estimator)`` lists them with the reason for each, for
``parametrize_with_checks(..., expected_failed_checks=expected_failed_checks)`` (scikit-learn >= 1.6,
where the list is exact; 1.3 ... 1.5 read a superset from the ``_xfail_checks`` tag and skip those
checks).  ``sample_weight`` is not supported (``fit`` has no such argument: a hard-margin solution
separates every sample, whatever its weight).

Parameters follow scikit-learn's conventions: ``__init__`` stores them unchanged, ``fit`` validates
them, and ``get_params`` / ``set_params`` / ``clone`` work.  A fit that raises leaves the estimator
unfitted.  A fitted estimator pickles when its ``model`` parameter does (names, paths, module names and
module-level build functions do; a built ``Model`` whose functions are closures, as the bundled ones
are, does not): the built CasADi model is not pickled but rebuilt on the first prediction after loading.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import fields

import numpy as np

try:
    import sklearn
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets, type_of_target
    from sklearn.utils.validation import check_is_fitted
except ImportError as exc:     # tests/test_sklearn.py hides scikit-learn to see this message
    raise ImportError(
        "lexmargin.sklearn needs scikit-learn >= 1.3, which is an optional dependency of lexmargin: "
        f"install it with  pip install \"lexmargin[sklearn]\"  (or pip install scikit-learn); ({exc})") from exc

from .errors import DataError, LexmarginError, NotSeparableError

__all__ = ["MaxMarginClassifier", "SVMWithBiasClassifier", "expected_failed_checks"]

_SKLEARN_VERSION = tuple(int(part) for part in sklearn.__version__.split(".")[:2] if part.isdigit())
_NEW_TAGS = _SKLEARN_VERSION >= (1, 6)       # __sklearn_tags__ and validate_data (scikit-learn >= 1.6)

if _NEW_TAGS:
    from sklearn.utils.validation import validate_data as _validate_data
else:                                       # pragma: no cover - scikit-learn 1.3 ... 1.5
    def _validate_data(estimator, X="no_validation", y="no_validation", reset=True, **check_params):
        return estimator._validate_data(X, y, reset=reset, **check_params)

# SolveOptions fields that have their own estimator parameter (or are fixed by the estimator)
_OWN_OPTIONS = ("tol", "max_iter", "time_limit", "starts", "seed", "raise_on_failure")

# Data of scikit-learn's estimator checks that these classifiers cannot separate (each fit there raises
# NotSeparableError with a Farkas proof; tests/test_sklearn.py verifies every entry and that no other check
# fails).  SVMWithBiasClassifier(sign="positive") is binary-only: the checks reduce its labels to two classes;
# MaxMarginClassifier and SVMWithBiasClassifier() also fit K > 2 classes, so some checks give them multi-class data
# (_MULTICLASS_DATA).
_UNIFORM_THRESHOLD = "uniform points in [0, 3)^d (the positive orthant) labelled by a threshold on one coordinate"
# no hyperplane separates these, with or without a bias
_NO_HYPERPLANE = {
    "check_classifier_data_not_an_array": "12 fixed points in the plane whose two classes interleave",
    "check_classifiers_train": "two overlapping make_blobs clusters (300 samples, standardized)",
    "check_dtype_object": "uniform features with randomly permuted labels",
    "check_estimators_dtypes": "uniform features with alternating labels",
    "check_estimators_nan_inf": "uniform features labelled by position (first half, second half)",
    "check_fit_check_is_fitted": "Gaussian features with random labels",
    "check_fit_idempotent": "Gaussian features with random labels",
    "check_fit_score_takes_y": "uniform features with cyclic labels",
    "check_n_features_in": "Gaussian features with random labels",
    "check_n_features_in_after_fitting": "Gaussian features with permuted labels",
    "check_supervised_y_2d": "uniform features with cyclic labels",
}
# separable by a hyperplane with a negative bias, not by one through the origin
_NEGATIVE_BIAS = {
    "check_dict_unchanged": _UNIFORM_THRESHOLD,
    "check_dont_overwrite_parameters": _UNIFORM_THRESHOLD,
    "check_estimators_pickle": "make_blobs clusters around (0, 0, 0) and (1, 1, 1)",
    "check_f_contiguous_array_estimator": _UNIFORM_THRESHOLD,
    "check_fit2d_1feature": "one feature, uniform in [0, 3), labelled by a threshold",
    "check_fit2d_predict1d": _UNIFORM_THRESHOLD,
    "check_methods_sample_order_invariance": _UNIFORM_THRESHOLD,
    "check_methods_subset_invariance": _UNIFORM_THRESHOLD,
    "check_pipeline_consistency": "make_blobs clusters away from the origin",
}
# separable by a hyperplane with a positive bias, not by one through the origin
_POSITIVE_BIAS = {
    "check_estimators_fit_returns_self": "make_blobs clusters away from the origin (21 samples)",
    "check_estimators_overwrite_params": "make_blobs clusters away from the origin (21 samples)",
    "check_readonly_memmap_input": "make_blobs clusters away from the origin (21 samples)",
}
# multi-class data (K > 2 classes are fitted): iris's versicolor and virginica overlap, so no linear
# K-class model separates the three classes, with or without biases
_IRIS = "the three iris classes (versicolor and virginica overlap)"
_MULTICLASS_DATA = {
    "check_non_transformer_estimators_n_iter": _IRIS,
    "check_positive_only_tag_during_fit": f"{_IRIS}, centered; scikit-learn wraps the error in an AssertionError",
}
_BY_DESIGN = "fit raises NotSeparableError by design (there is no max-margin solution to return)"


def expected_failed_checks(estimator) -> dict[str, str]:
    """scikit-learn estimator checks that ``estimator`` fails by design, each with its reason.

    Every listed check fits data that the estimator cannot separate (random labels, overlapping blobs,
    clusters that only a hyperplane with a bias separates), where ``fit`` raises ``NotSeparableError``
    (the only behaviour: there is no max-margin solution to return).  All other checks pass.  With
    scikit-learn >= 1.6 the list is exact (tested: each listed check raises NotSeparableError, no other
    check fails) for ``MaxMarginClassifier`` with a model linear in theta through the origin (the default
    ``"linear"``, any norm) and for ``SVMWithBiasClassifier`` with either ``sign``; for other models it is the
    linear model's list (a nonlinear model may separate some of this data).  Older versions label some
    checks' data differently and only skip (or non-strictly xfail) the listed checks: the list is then a
    superset (checked with scikit-learn 1.4 and 1.5).

    Args:
        estimator: a ``MaxMarginClassifier`` or ``SVMWithBiasClassifier`` (other objects: an empty dict).

    Returns:
        {check name: reason}; pass the function itself to
        ``sklearn.utils.estimator_checks.parametrize_with_checks(..., expected_failed_checks=...)`` or its
        value to ``check_estimator(..., expected_failed_checks=...)``.
    """
    out = {name: f"it fits {data}: no hyperplane separates them, with or without a bias; {_BY_DESIGN}"
           for name, data in _NO_HYPERPLANE.items()}
    if isinstance(estimator, MaxMarginClassifier):
        for name, data in {**_NEGATIVE_BIAS, **_POSITIVE_BIAS}.items():
            out[name] = (f"it fits {data}: separable with a bias, not by a model through the origin "
                         f"(f(theta; 0) = 0); {_BY_DESIGN}")
        for name, data in _MULTICLASS_DATA.items():
            out[name] = f"it fits {data}: no linear 3-class model separates them; {_BY_DESIGN}"
    elif isinstance(estimator, SVMWithBiasClassifier):
        if estimator.get_params()["sign"] == "positive":
            for name, data in _NEGATIVE_BIAS.items():
                out[name] = f"it fits {data}: separable only with a bias b < 0, which sign='positive' excludes; " \
                            f"{_BY_DESIGN}"
        else:
            for name, data in _MULTICLASS_DATA.items():
                out[name] = f"it fits {data}: no 3 affine scores separate them; {_BY_DESIGN}"
    else:
        return {}
    if not _NEW_TAGS:      # scikit-learn < 1.6 gives these checks other labels: list every candidate (a superset)
        for name in {**_NEGATIVE_BIAS, **_POSITIVE_BIAS}.keys() - out.keys():
            out[name] = ("with scikit-learn < 1.6 this check labels the class of its first sample against the rest, "
                         f"data that this classifier may not separate; {_BY_DESIGN}")
    return dict(sorted(out.items()))


def _as_seed(random_state) -> int:
    """An int seed for lexmargin from scikit-learn's random_state (None: drawn from numpy's global RNG)."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative integer, a RandomState or None; got {random_state}")
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _positive(name: str, value, *, integer: bool = False, optional: bool = False):
    if value is None and optional:
        return None
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:
        what = "a positive integer" if integer else "a positive number"
        raise ValueError(f"{name} must be {what}{' or None' if optional else ''}; got {value!r}")
    return value


def _check_outputs(model, n_classes: int | None) -> None:
    """ValueError unless ``model`` has one output for two classes and K outputs for K > 2 classes."""
    outputs = int(getattr(model, "n_outputs", 1))
    wanted = 1 if n_classes is None else n_classes
    if outputs == wanted:
        return
    if n_classes is None:
        raise ValueError(f"model {model.name!r} has {outputs} outputs but y has 2 classes: a binary fit needs a "
                         "model with one output")
    raise ValueError(f"y has {n_classes} classes but model {model.name!r} has {outputs} output(s): give a model "
                     f"with {n_classes} outputs (a K-output declaration or build option such as n_classes={n_classes}); "
                     "'linear' becomes multiclass_linear by itself")


class _CertifiedClassifier(ClassifierMixin, BaseEstimator):
    """Shared binary-label handling, input validation and solve options (not public)."""

    def _solve_options(self):
        """The estimator's solve parameters as a lexmargin SolveOptions (raise_on_failure=True)."""
        from .nlp.options import SolveOptions

        tol = self.tol
        if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not 0 < tol < 1:
            raise ValueError(f"tol must be a number in (0, 1); got {tol!r}")
        max_iter = self.max_iter
        if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
            raise ValueError(f"max_iter must be a positive integer; got {max_iter!r}")
        extra = {} if self.solve_options is None else self.solve_options
        if not isinstance(extra, Mapping):
            raise ValueError(f"solve_options must be a dict of lexmargin.SolveOptions fields or None; "
                             f"got {type(extra).__name__}")
        names = {f.name for f in fields(SolveOptions)}
        unknown = sorted(set(extra) - names)
        if unknown:
            raise ValueError(f"solve_options: unknown field(s) {unknown}; lexmargin.SolveOptions has {sorted(names)}")
        own = sorted(set(extra) & set(_OWN_OPTIONS))
        if own:
            raise ValueError(f"solve_options: {own} are set by the estimator's own parameters "
                             "(tol, max_iter, time_limit, starts, random_state; failures always raise)")
        try:
            return SolveOptions(tol=float(tol), max_iter=int(max_iter),
                                time_limit=_positive("time_limit", self.time_limit, optional=True),
                                starts=self._starts(), seed=_as_seed(self.random_state),
                                raise_on_failure=True, **extra)
        except LexmarginError as exc:
            raise ValueError(str(exc)) from exc

    def _starts(self):
        return None

    _FITTED = ("certificate_", "classes_", "theta_", "coef_", "intercept_", "n_iter_", "result_", "_model",
               "_model_spec")

    def __sklearn_is_fitted__(self):
        return "certificate_" in self.__dict__

    _MULTICLASS = False                      # True: more than two classes are fitted (Crammer-Singer rows)

    def _multiclass(self) -> bool:
        """Whether fit takes more than two classes (an estimator may decide by its parameters)."""
        return self._MULTICLASS

    def _validate_training_data(self, X, y):
        """(X as float64, labels, the sorted classes) with n_features_in_ and feature_names_in_ set.

        Two classes give labels -1/+1 (classes_[1] is +1); K > 2 classes (estimators whose ``_multiclass()``
        holds) give the integer labels 0..K-1, the index of each label in classes_.  The results of an earlier
        fit are dropped first: a fit that raises leaves the estimator unfitted.
        """
        for name in self._FITTED:
            self.__dict__.pop(name, None)
        X, y = _validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        classes, index = np.unique(y, return_inverse=True)
        name = type(self).__name__
        kind = type_of_target(y, input_name="y")
        if kind == "multiclass" and self._multiclass() and classes.size > 2:
            return X, index.astype(np.int64), classes
        if kind != "binary":
            raise ValueError(f"Only binary classification is supported. The type of the target is {kind}: "
                             f"{name} needs exactly 2 classes, y has {classes.size} "
                             f"({classes[:5].tolist()}{' ...' if classes.size > 5 else ''}); for more classes wrap "
                             "it in sklearn.multiclass.OneVsRestClassifier or OneVsOneClassifier")
        if classes.size < 2:
            raise ValueError(f"{name} needs samples of 2 classes; y has 1 class ({classes[0]!r})")
        return X, np.where(index == 1, 1.0, -1.0), classes

    @staticmethod
    def _dataset(X, y, n_classes: int | None = None):
        """A lexmargin Dataset (K-class when ``n_classes``); identical samples with different labels raise
        NotSeparableError."""
        from .modeling.data import Dataset

        try:
            return Dataset(X, y, n_classes=n_classes)
        except DataError as exc:
            if "identical but have" in str(exc):
                raise NotSeparableError(str(exc), certificate=None) from exc
            raise

    def _validate_test_data(self, X):
        check_is_fitted(self)
        return _validate_data(self, X, reset=False, dtype=np.float64)

    def predict(self, X):
        """Predicted labels: two classes: ``classes_[1]`` where ``decision_function(X) > 0``, else
        ``classes_[0]``; K > 2 classes: ``classes_[argmax_k decision_function(X)[:, k]]``.

        Args:
            X: array-like (n_samples, n_features_in_).

        Returns:
            array (n_samples,) of labels from ``classes_``.
        """
        scores = self.decision_function(X)
        if scores.ndim == 2:
            return self.classes_[np.argmax(scores, axis=1)]
        return self.classes_[(scores > 0).astype(int)]

    if _NEW_TAGS:
        def __sklearn_tags__(self):
            tags = super().__sklearn_tags__()
            tags.classifier_tags.multi_class = self._multiclass()
            return tags
    else:                                    # pragma: no cover - scikit-learn 1.3 ... 1.5
        def _more_tags(self):
            return {"binary_only": not self._multiclass(), "_xfail_checks": expected_failed_checks(self)}


class MaxMarginClassifier(_CertifiedClassifier):
    """Max-margin classifier of a declared model: min ||theta|| s.t. y_n f(theta; x_n) >= 1, certified.

    ``model="linear"`` with ``norm="l2"`` is the hard-margin linear SVM through the origin (no bias; see
    ``SVMWithBiasClassifier`` for a bias); other models give the max-margin solution that gradient descent
    on the exponential loss converges to in direction (the implicit bias; docs/max_margin.md).

    Args:
        model: a bundled model name ("linear", "two_layer", "deep_linear", "ensemble", ...), a model file
            path, a module name, a ``build(input_dim, **options)`` callable or a ``lexmargin.Model`` (whose
            ``input_dim`` must equal the number of features).  Built in ``fit`` with ``input_dim`` = the
            number of features; it must declare a raw output (``output=`` or ``summands=``).
        model_options: dict of options passed to the model's ``build`` (e.g. {"width": 4}); None: none.
        norm: "l2" (default), "l1", "linf" or "lp" (with ``p``).
        p: the exponent of norm "lp" (None otherwise).
        tol: IPOPT's convergence tolerance (the certificate applies its own tolerances).
        max_iter: IPOPT iteration limit per solve.
        time_limit: wall-clock seconds per IPOPT solve (None: no limit).
        starts: random starts for nonconvex models (None: lexmargin's default, 5; convex problems use 1).
        random_state: seed of the random starts: an int (default 0), a RandomState, or None (drawn from
            numpy's global RNG).  Models linear in theta do not use it.
        solve_options: dict of further ``lexmargin.SolveOptions`` fields (``tolerances``, ``finish``,
            ``ipopt``, ``init``); None: none.

    Attributes (after fit):
        classes_: the labels, sorted; two classes: classes_[0] is y = -1, classes_[1] is y = +1; K > 2:
            class k of the K-output model is classes_[k].
        certificate_: the solve's ``lexmargin.Certificate`` (status ``optimal``; one row per (n, j) for K > 2).
        n_iter_: IPOPT iterations of the solve (over all starts; at least 1).
        theta_: the solution theta (the model's flat parameter vector).
        coef_, intercept_: for ``model="linear"`` only: theta_ as a (1, n_features) row and [0.0]; for K > 2
            classes W as a (K, n_features) array (row k: classes_[k]) and K zeros.
        n_features_in_, feature_names_in_: as in scikit-learn.

    Raises (from fit):
        NotSeparableError: the data is proved not separable by the model.
        NoSeparatingPointError, SolverError: a solve not certified optimal (``.certificate`` says why).
        ValueError: bad parameters, data, fewer than two classes, or a model whose number of outputs does
            not fit the classes (one for two classes, K for K > 2).
    """

    def __init__(self, model="linear", *, model_options=None, norm="l2", p=None, tol=1e-10, max_iter=3000,
                 time_limit=None, starts=None, random_state=0, solve_options=None):
        self.model = model
        self.model_options = model_options
        self.norm = norm
        self.p = p
        self.tol = tol
        self.max_iter = max_iter
        self.time_limit = time_limit
        self.starts = starts
        self.random_state = random_state
        self.solve_options = solve_options

    _MULTICLASS = True

    def _starts(self):
        return _positive("starts", self.starts, integer=True, optional=True)

    def _build_model(self, n_features: int, spec=None, n_classes: int | None = None):
        """The lexmargin Model for ``n_features`` inputs from (model, model_options): one output for two
        classes, ``n_classes`` outputs for more (``"linear"`` is then ``multiclass_linear``)."""
        from .modeling.loading import load_model
        from .modeling.model import Model

        model, options = spec if spec is not None else (self.model, self.model_options)
        options = dict(options or {})
        if n_classes is not None and isinstance(model, str) and model == "linear":
            model, options = "multiclass_linear", {**options, "n_classes": n_classes}
        if isinstance(model, Model):
            if options:
                raise ValueError("model_options apply to a model name, file or build function; "
                                 f"model {model.name!r} is already built")
            if model.input_dim != n_features:
                raise ValueError(f"model {model.name!r} has input_dim {model.input_dim}; X has {n_features} features")
            built = model
        else:
            try:
                built = load_model(model, input_dim=n_features, **options)
            except LexmarginError as exc:
                raise ValueError(str(exc)) from exc
        if not built.has_output:
            raise ValueError(f"model {built.name!r} declares its margin f(theta; x, y) directly and has no raw "
                             "output f(theta; x) to classify with; declare it with output= or summands=")
        _check_outputs(built, n_classes)
        return built

    def fit(self, X, y):
        """Solve the max-margin problem on (X, y) and keep its certificate.

        Args:
            X: array-like (n_samples, n_features), finite.
            y: array-like (n_samples,) of at least two distinct labels (K > 2: Crammer-Singer rows).

        Returns:
            self.

        Raises:
            NotSeparableError: the data cannot be separated by the model (see the class docstring).
        """
        from .nlp.norms import get_norm
        from .problems.maxmargin import max_margin

        X, y, classes = self._validate_training_data(X, y)
        options = self._solve_options()
        try:
            norm = get_norm(self.norm, self.p)
        except LexmarginError as exc:
            raise ValueError(str(exc)) from exc
        if self.model_options is not None and not isinstance(self.model_options, Mapping):
            raise ValueError(f"model_options must be a dict or None; got {type(self.model_options).__name__}")
        spec = (self.model, None if self.model_options is None else dict(self.model_options))
        n_classes = int(classes.size) if classes.size > 2 else None
        model = self._build_model(X.shape[1], spec, n_classes)
        cert = max_margin(model, self._dataset(X, y, n_classes), norm, options=options)
        self.classes_ = classes
        self.certificate_ = cert
        self.theta_ = np.array(cert.theta, dtype=float)
        self.n_iter_ = max(1, int(cert.solver.iterations))
        if isinstance(self.model, str) and self.model == "linear":
            self.coef_ = self.theta_.reshape(n_classes or 1, -1)          # W (K, d): row k is classes_[k]
            self.intercept_ = np.zeros(n_classes or 1)
        self._model_spec = spec
        self._model = model
        return self

    def _fitted_model(self):
        model = self.__dict__.get("_model")
        if model is None:                    # after unpickling: rebuilt from the fitted spec
            n_classes = int(self.classes_.size) if self.classes_.size > 2 else None
            model = self._model = self._build_model(self.n_features_in_, self._model_spec, n_classes)
        return model

    def decision_function(self, X):
        """The model's raw output for each row: two classes: f(theta_; x), > 0 means ``classes_[1]``; K > 2
        classes: the K scores g(theta_; x), column k for ``classes_[k]`` (the largest one is predicted).

        Args:
            X: array-like (n_samples, n_features_in_).

        Returns:
            array (n_samples,) for two classes (the margin of sample n is y_n times its value, y = +-1 as in
            classes_), (n_samples, K) for K > 2 (margin rows g_{y_n} - g_j).
        """
        X = self._validate_test_data(X)
        scores = np.asarray(self._fitted_model().decision_function(self.theta_, X), dtype=float)
        return scores.reshape(X.shape[0], -1) if self.classes_.size > 2 else scores.reshape(-1)

    def __getstate__(self):
        state = dict(super().__getstate__())
        state.pop("_model", None)             # CasADi functions and closures: rebuilt on demand
        return state


class SVMWithBiasClassifier(_CertifiedClassifier):
    """Hard-margin linear SVM with an unregularized bias: min ||w||^2 s.t. y_n (w.x_n + b) >= 1, certified.

    The exact solution that ``sklearn.svm.SVC(kernel="linear", C=large)`` approximates (SVC stops at its own
    tolerance, ~1e-3 in the dual).  Two classes: solved by ``lexmargin.svm_with_bias`` (a convex QP in (w, b)
    certified on the linear max-margin pipeline, with the depth-sensitive route as fallback).  K > 2 classes
    (``sign="both"``): the hard-margin Crammer-Singer SVM with unregularized biases,

        min ||W||_F^2  s.t.  (w_{y_n} - w_j).x_n + b_{y_n} - b_j >= 1   (j != y_n),

    solved by ``lexmargin.max_margin`` on the K-output linear model of the features with a constant 1 appended,
    with the biases left out of the objective (``PartialL2``): one certificate, one row per (n, j).

    Args:
        sign: "both" (default; any bias) or "positive" (only b >= 0, the limit of the ``svm_bias`` model
            f = y (w.x + b^2); two classes only).
        tol: IPOPT's convergence tolerance.
        max_iter: IPOPT iteration limit per solve.
        time_limit: wall-clock seconds per IPOPT solve (None: no limit).
        random_state: seed of the fallback route's starts (int, RandomState or None); the QP does not use it.
        solve_options: dict of further ``lexmargin.SolveOptions`` fields (``tolerances``, ``finish``, ``ipopt``).

    Attributes (after fit):
        classes_: the labels, sorted; two classes: classes_[0] is y = -1, classes_[1] is y = +1; K > 2: row k of
            coef_ is classes_[k].
        coef_: w as a (1, n_features) row (as in SVC); K > 2: W as a (K, n_features) array.
        intercept_: b as a (1,) array; K > 2: the K biases, which the margins determine up to a common
            constant (they depend on differences only): reported with sum 0.
        certificate_: two classes: the QP's certificate (theta = (w, b)) when the QP route answered, else the
            last depth-sensitive stage's; K > 2: the solve's certificate (theta = the rows (w_k, b_k)).
        result_: two classes: the whole ``SVMBiasResult`` (stages, route, qp); K > 2: None.
        n_iter_: IPOPT iterations of the QP (of all stages on the fallback route; at least 1).
        n_features_in_, feature_names_in_: as in scikit-learn.

    Raises (from fit):
        NotSeparableError: no hyperplane (with b >= 0 for sign="positive"; K > 2: no K affine scores) separates
            the data.
        SolverError: a solve not certified optimal.
        ValueError: bad parameters, data, fewer than two classes, or more than two with sign="positive".
    """

    def __init__(self, *, sign="both", tol=1e-10, max_iter=3000, time_limit=None, random_state=0,
                 solve_options=None):
        self.sign = sign
        self.tol = tol
        self.max_iter = max_iter
        self.time_limit = time_limit
        self.random_state = random_state
        self.solve_options = solve_options

    def _multiclass(self) -> bool:          # b >= 0 (sign="positive") is the two-class svm_bias model's limit
        return self.sign == "both"

    def fit(self, X, y):
        """Solve the hard-margin SVM with bias on (X, y).

        Args:
            X: array-like (n_samples, n_features), finite.
            y: array-like (n_samples,) of at least two distinct labels (exactly two for sign="positive").

        Returns:
            self.

        Raises:
            NotSeparableError: no hyperplane with a bias (K > 2: no K affine scores) separates the data.
        """
        if self.sign not in ("both", "positive"):
            raise ValueError(f"sign must be 'both' or 'positive'; got {self.sign!r}")
        X, y, classes = self._validate_training_data(X, y)
        options = self._solve_options()
        if classes.size > 2:
            self._fit_classes(X, y, int(classes.size), options)
        else:
            self._fit_two(X, y, options)
        self.classes_ = classes
        return self

    def _fit_two(self, X, y, options) -> None:
        from .problems.depth import svm_with_bias

        w, b, result = svm_with_bias(self._dataset(X, y), sign=self.sign, options=options)
        self.coef_ = np.asarray(w, dtype=float).reshape(1, -1)
        self.intercept_ = np.array([float(b)])
        self.result_ = result
        self.certificate_ = result.qp if result.route == "qp" else result.stages[-1].certificate
        iterations = [s.certificate.solver.iterations for s in result.stages]
        self.n_iter_ = max(1, int(result.qp.solver.iterations if result.route == "qp" else sum(iterations)))

    def _fit_classes(self, X, labels, K: int, options) -> None:
        """The K-class SVM with biases: max_margin of g = W [x; 1] with the last column of W free."""
        from .modeling.loading import load_model
        from .nlp.norms import PartialL2
        from .problems.maxmargin import max_margin

        d = X.shape[1]
        model = load_model("multiclass_linear", input_dim=d + 1, n_classes=K)
        biases = tuple(k * (d + 1) + d for k in range(K))
        augmented = np.hstack([X, np.ones((X.shape[0], 1))])
        cert = max_margin(model, self._dataset(augmented, labels, K), PartialL2(free=biases), options=options)
        W = np.asarray(cert.theta, dtype=float).reshape(K, d + 1)
        self.coef_ = W[:, :d].copy()
        self.intercept_ = W[:, d] - W[:, d].mean()
        self.result_ = None
        self.certificate_ = cert
        self.n_iter_ = max(1, int(cert.solver.iterations))

    def decision_function(self, X):
        """w.x + b for each row: > 0 means ``classes_[1]``; K > 2: the K scores w_k.x + b_k (the largest is
        predicted).

        Args:
            X: array-like (n_samples, n_features_in_).

        Returns:
            array (n_samples,); K > 2: (n_samples, K), column k for ``classes_[k]``.
        """
        X = self._validate_test_data(X)
        if self.classes_.size > 2:
            return X @ self.coef_.T + self.intercept_
        return X @ self.coef_[0] + self.intercept_[0]
