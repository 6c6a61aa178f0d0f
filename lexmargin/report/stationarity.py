"""How close is a parameter vector to a KKT point of the max-margin problem?

Convention (Lyu & Li 2020): for a model homogeneous of degree alpha the point is rescaled to
theta_hat = theta / q_min^(1/alpha), q_min = min_n f_n(theta), so that min_n f_n(theta_hat) = 1, and
tested as a KKT point of

    min 1/2 ||theta||^2   s.t.   f_n(theta) >= 1,     i.e.   theta_hat = sum_n lambda_n grad f_n(theta_hat).

The multipliers lambda >= 0 are the non-negative least-squares fit on the near-support set
S = {n : f_n(theta_hat) <= 1 + support_tol} (default 0.1: gradient-descent iterates approach
the max-margin solution only like 1/log t, so their support margins differ by a few percent;
pass a smaller tolerance for solver output).  (eps, delta)-KKT numbers: eps = ||theta_hat - J_S^T lambda||_2,
delta = sum_n lambda_n (f_n(theta_hat) - 1).  A solver certificate for min ||theta||^2 (no 1/2) has
multipliers twice as large; the comparison detects and undoes that factor.

For a model that is not homogeneous theta is not rescaled and the constraint level is q_min itself.

Scale (nets with ~10^5 parameters and thousands of samples).  Margins, gradients and the rows of S come
from the model's numpy kernel (``lexmargin.numeric.kernels.kernel_for``: a structured kernel, or CasADi
per sample as the fallback); the N x P Jacobian is never formed.  With G = J_S J_S^T (k x k, k = |S|,
``Kernel.per_sample_gram``; for layered nets G = sum_l (D_l D_l^T) o (H_l H_l^T) from the per-sample
factors grad_{W_l} f_n = delta_l[n] (x) h_{l-1}[n]) and b = J_S theta_hat (``per_sample_jvp``),

    ||theta_hat - J_S^T lambda||^2 = ||theta_hat||^2 - 2 b^T lambda + lambda^T G lambda,

so the NNLS depends on J_S only through (G, b) and runs on them (``lexmargin.report.nnls.gram_nnls``:
Lawson-Hanson with a growing Cholesky factor of the passive block of G).  eps is then recomputed from the
vector theta_hat - J_S^T lambda (one vjp), not from the identity above, which cancels catastrophically
for small residuals.  LICQ is read from the spectrum of the unit-row Gram matrix D^-1/2 G D^-1/2 when
it leaves no doubt (all eigenvalues above ``GRAM_CONDITION`` of the largest, as in
``lexmargin.nlp.certify.unit_gram``); otherwise from the SVD of the rows J_S when they fit in
``dense_bytes``; otherwise at the Gram matrix's resolution: relative singular values below
sqrt(k eps) count as 0.  Memory: O(k^2 + k (sum of widths)) for layered nets, O(k^2 + batch P) else.

Kinks (relu, leaky_relu).  Lyu and Li's (eps, delta)-KKT point of a nonsmooth net takes each gradient from the
Clarke subdifferential.  At a near-support sample with units exactly at their kink (|z_u| <= KINK_TOL
||grad z_u|| ||theta||, the certificate's rule: ``RegionMargins.kinks``) f_n has no gradient, and its Clarke
subdifferential is the convex hull of the gradients G_n(p) of the realizable sign patterns p of those units
(``RegionMargins.vertices``, as ``nlp.clarke`` certifies ``max_margin``'s ReLU solutions).  Writing
lambda_n g_n = sum_p w_{n,p} G_n(p), w >= 0, the smallest eps over lambda >= 0 and every choice of elements is one
NNLS over the columns G_n(p) of the kinked rows and the gradients of the others (``clarke_fit``, on the dense
columns: at most ``dense_bytes``); eps, delta and the multipliers are then that fit's, ``kinks`` records the rows,
the chosen slopes and eps with the one gradient per row the kernel computes (the derivative 0 at a kink), which
only bounds the Clarke eps from above where that gradient's pattern is realizable.  Gradient-descent iterates
essentially never sit at a kink: the report of such a point is the smooth one, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..nlp.certify import GRAM_CONDITION, LICQ, licq
from ..nlp.nnls import nnls
from .nnls import gram_nnls

EPS = np.finfo(float).eps
DENSE_ROWS_BYTES = 1 << 28      # the rows J_S are formed for an exact LICQ SVD only up to 256 MiB
RANK_TOL = 1e-9                 # as lexmargin.nlp.certify.licq
KINK_TOL = 1e-8                 # a unit at its kink: |z_u| <= KINK_TOL ||grad z_u|| ||theta|| (the certificate's
#                                 tolerance of active rows, as max_margin's Clarke check reads it)
KINK_CANDIDATE = 1e-9           # pre-check: |z_u| at most this of the largest |z| of its layer on the sample.  A
#                                 solver's kinks sit at rounding level (1e-17 of the layer's largest at a certified
#                                 max_margin point); a gradient-descent iterate's units, at 10^6 (sample, unit) pairs,
#                                 come this near by chance once in some hundreds of reports
KINK_REGION_ENTRIES = 4_000_000  # the activation region (its symbolic U x P Jacobian of the pre-activations, seconds
#                                 at this size) is formed for the Clarke fit up to U P entries

CONVENTION = ("theta_hat = theta / q_min^(1/alpha); KKT of min 1/2||theta||^2 s.t. f_n >= 1: "
              "theta_hat = sum_n lambda_n grad f_n(theta_hat), lambda >= 0 by NNLS on the near-support set "
              "(at units exactly at a kink, grad f_n ranges over the Clarke subdifferential)")


@dataclass(frozen=True)
class KKTNumbers:
    """(eps, delta)-KKT numbers of Lyu & Li (2020) plus complementarity and feasibility."""

    epsilon: float
    relative_epsilon: float
    delta: float
    complementarity: float
    primal_violation: float

    def to_dict(self) -> dict:
        return {k: float(getattr(self, k)) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Kinks:
    """The near-support rows with units at a kink, where the report's numbers range over the Clarke subdifferential
    (see the module docstring).

    ``rows``: the samples; ``units``: per row, the (activation call, position) of its kinked units; ``slopes``: per
    row with lambda_n > 0, the slope of each unit in the chosen element; ``undecided_rows``: rows with too many kinks
    to enumerate (their one gradient is used); ``fitted``: False when the activation region of the candidate rows
    (then ``rows`` and ``units`` are the candidates of the numeric pre-check, KINK_CANDIDATE, all undecided) or the
    Clarke columns exceeded their size limits: the numbers are then the one-gradient ones; ``single_gradient_epsilon``:
    eps with the kernel's one gradient per row.
    """

    rows: np.ndarray
    units: tuple
    slopes: tuple
    undecided_rows: int
    fitted: bool
    single_gradient_epsilon: float

    def to_dict(self) -> dict:
        return {"rows": [int(n) for n in self.rows], "units": [[list(u) for u in units] for units in self.units],
                "slopes": list(self.slopes), "undecided_rows": int(self.undecided_rows), "fitted": bool(self.fitted),
                "single_gradient_epsilon": float(self.single_gradient_epsilon)}


@dataclass(frozen=True)
class Stationarity:
    """Raw numbers at one point (no certificate, no trajectory)."""

    scale: float
    constraint_level: float
    margins: np.ndarray
    normalized_margin: float | None
    support: np.ndarray
    multipliers: np.ndarray
    kkt: KKTNumbers
    licq: LICQ
    alignment: float
    kinks: Kinks | None = None


def angle_between(a, b) -> float:
    """Angle in radians between two vectors, accurate for tiny angles.

    Args:
        a: a vector.
        b: a vector of the same length.

    Returns:
        The angle in [0, pi].
    """
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return float("nan")
    ua, ub = a / na, b / nb
    return float(2.0 * np.arctan2(np.linalg.norm(ua - ub), np.linalg.norm(ua + ub)))


def margin_kernel(model, data):
    """The numpy kernel of ``model`` on ``data`` (``lexmargin.numeric.kernels.kernel_for``, float64)."""
    from ..numeric.kernels import kernel_for

    return kernel_for(model, data)


def margins_of(model, theta, data, kernel=None) -> np.ndarray:
    """f_n(theta) (N,) from ``kernel`` when given, else from the model (CasADi)."""
    if kernel is None:
        return model.margins(theta, data)
    return np.asarray(kernel.margins(np.asarray(theta, dtype=float)), dtype=float)


def loss_gradient_alignment(model, theta, data, kernel=None) -> float:
    """cos of the angle between -grad L(theta) and theta for L = sum_n exp(-f_n) (Theorem 3).

    Args:
        model: the model.
        theta: the point (P,).
        data: the Dataset.
        kernel: the model's numpy kernel (``per_sample_vjp``: one forward and one vjp for structured kernels,
            row batches for CasADi; never the N x P Jacobian); None: the model's CasADi Jacobian.

    Returns:
        cos angle(sum_n exp(-f_n) grad f_n, theta).
    """
    f = margins_of(model, theta, data, kernel)
    weights = np.exp(-(f - np.min(f)))  # a positive rescaling of exp(-f_n): the cosine is unchanged
    if kernel is None:
        direction = model.margin_jacobian(theta, data).T @ weights
    else:
        direction = kernel.per_sample_vjp(np.asarray(theta, dtype=float), np.arange(weights.size), weights)
    return float(np.cos(angle_between(direction, theta)))


def rescale(model, theta, data, kernel=None) -> tuple[np.ndarray, float, float]:
    """theta_hat, the scale theta / theta_hat, and the constraint level (see module docstring)."""
    theta = np.asarray(theta, dtype=float)
    q_min = float(np.min(margins_of(model, theta, data, kernel)))
    if model.degree is None:
        return theta, 1.0, q_min
    if q_min <= 0:  # misclassified: no rescaling reaches margin 1; the violation is reported
        return theta, 1.0, 1.0
    scale = q_min ** (1.0 / model.degree)
    return theta / scale, scale, 1.0


def near_support(margins, level: float, support_tol: float) -> np.ndarray:
    """Indices with f_n <= level + support_tol * max(1, |level|)."""
    return np.nonzero(margins <= level + support_tol * max(1.0, abs(level)))[0]


def fit_multipliers(jacobian, theta_hat, support, n_samples: int) -> tuple[np.ndarray, float]:
    """NNLS fit of theta_hat = J_S^T lambda; returns lambda on all samples (zero off S) and the residual."""
    lam = np.zeros(n_samples)
    if support.size == 0:
        return lam, float(np.linalg.norm(theta_hat))
    coef, residual = nnls(jacobian[support].T, theta_hat, maxiter=50 * max(support.size, 10))
    lam[support] = coef
    return lam, float(residual)


def fit_multipliers_gram(gram, rhs, support, n_samples: int) -> np.ndarray:
    """NNLS fit of theta_hat = J_S^T lambda from G = J_S J_S^T and b = J_S theta_hat only.

    Args:
        gram: G (k, k), k = len(support).
        rhs: b = J_S theta_hat (k,).
        support: the sample indices S (k,).
        n_samples: the number of margin rows: N, or N (K - 1) for K-class data.

    Returns:
        lambda (N,), zero off S: ``lexmargin.report.nnls.gram_nnls`` (Lawson-Hanson on (G, b)), the
        minimizer of ``fit_multipliers`` on the rows.
    """
    lam = np.zeros(n_samples)
    k = support.size
    if k == 0:
        return lam
    lam[support] = gram_nnls(gram, rhs, maxiter=50 * max(k, 10))
    return lam


def stationarity_residual(kernel, theta_hat, multipliers) -> float:
    """eps = ||theta_hat - sum_n lambda_n grad f_n(theta_hat)||_2, from one vjp of ``kernel`` on the samples
    with lambda_n != 0 (``Kernel.per_sample_vjp``)."""
    theta_hat = np.asarray(theta_hat, dtype=float)
    lam = np.asarray(multipliers, dtype=float)
    rows = np.flatnonzero(lam)
    combination = kernel.per_sample_vjp(theta_hat, rows, lam[rows]) if rows.size else np.zeros_like(theta_hat)
    return float(np.linalg.norm(theta_hat - combination))


def licq_from_gram(gram, n_params: int, rank_tol: float = RANK_TOL) -> tuple[LICQ, bool]:
    """LICQ of rows J_S from G = J_S J_S^T: (LICQ, exact).

    The unit rows' Gram matrix is D^-1/2 G D^-1/2 (zero rows stay zero, as ``certify.unit_rows``); its
    eigenvalues w are the squared singular values up to ~ k eps.  ``exact``: the spectrum leaves no doubt
    (k <= P and w_min > max(GRAM_CONDITION, 100 rank_tol^2) w_max; then rank = k and the relative smallest
    singular value is sqrt(w_min / w_max), as ``certify.licq`` computes it on such rows).  Otherwise the
    rank counts relative singular values above max(rank_tol, sqrt(k eps)) and the smallest one below that
    resolution is reported as 0.
    """
    k = gram.shape[0]
    if k == 0:
        return LICQ(0, 0, 1.0, True), True
    norms = np.sqrt(np.clip(np.diag(gram), 0.0, None))
    norms = np.where(norms > 0, norms, 1.0)
    w = np.linalg.eigvalsh(gram / norms[:, None] / norms[None, :])
    top = float(w[-1])
    if top <= 0:
        return LICQ(k, 0, 0.0, False), True
    if k <= n_params and w[0] > max(GRAM_CONDITION, 100.0 * rank_tol ** 2) * top:
        return LICQ(k, k, float(np.sqrt(w[0] / top)), True), True
    resolution = max(rank_tol, float(np.sqrt(k * EPS)))
    s = np.sqrt(np.clip(w[::-1], 0.0, None) / top)[:min(k, n_params)]
    rank = int(np.sum(s > resolution))
    smallest = float(s[k - 1]) if k <= n_params and s[k - 1] > resolution else 0.0
    return LICQ(k, rank, smallest, rank == k), False


def support_licq(kernel, theta_hat, support, gram, dense_bytes: int = DENSE_ROWS_BYTES) -> LICQ:
    """LICQ of the near-support rows: from G when its spectrum decides, else the SVD of J_S if its
    k x P floats fit in ``dense_bytes``, else at G's resolution (``licq_from_gram``)."""
    result, exact = licq_from_gram(gram, kernel.n_params)
    if exact or support.size * kernel.n_params * 8 > dense_bytes:
        return result
    return licq(kernel.per_sample_jacobian(np.asarray(theta_hat, dtype=float), support))


def kkt_numbers(theta_hat, margins, multipliers, residual: float, level: float) -> KKTNumbers:
    slack = margins - level
    norm = float(np.linalg.norm(theta_hat))
    return KKTNumbers(
        epsilon=residual,
        relative_epsilon=residual / norm if norm > 0 else float("inf"),
        delta=float(np.sum(multipliers * slack)),
        complementarity=float(np.max(np.abs(multipliers * slack))) if slack.size else 0.0,
        primal_violation=max(0.0, -float(np.min(slack))) if slack.size else 0.0,
    )


def _pre_activations(model, kernel, theta, data, rows) -> list[np.ndarray]:
    """One (units, k) array per activation call on the samples ``rows``: the kernel's batch forward pass where it
    has one (layered nets), else a numeric pass of the model per sample.  Empty for a model without relu /
    leaky_relu."""
    batch = getattr(kernel, "pre_activations", None)
    if batch is not None:
        return batch(theta, rows)
    from ..modeling.regions import pre_activations

    per_sample = [pre_activations(model, theta, data.X[n], data.y[n]) for n in np.asarray(rows, dtype=int).tolist()]
    return [np.column_stack([z.reshape(-1) for z in calls]) for calls in zip(*per_sample)]


def kink_candidates(model, kernel, theta, data, rows) -> tuple[dict[int, list], int]:
    """(sample -> its units within KINK_CANDIDATE of their kink, relative to the largest |z| of their call on the
    sample, as (call, position); the units per sample): the samples the exact, relative rule of
    ``RegionMargins.kinks`` then looks at."""
    rows = np.asarray(rows, dtype=int)
    found: dict[int, list] = {}
    layers = _pre_activations(model, kernel, theta, data, rows)
    for call, Z in enumerate(layers):
        size = np.abs(Z)
        near = size <= KINK_CANDIDATE * size.max(axis=0, initial=0.0)
        for unit, column in zip(*np.nonzero(near)):
            found.setdefault(int(rows[column]), []).append((call, int(unit)))
    return found, sum(Z.shape[0] for Z in layers)


def kinked_rows(model, theta_hat, data, candidates: dict, units: int, dense_bytes: int = DENSE_ROWS_BYTES):
    """Candidate sample -> its ``RegionMargins.vertices`` (the gradients of the realizable patterns of its kinked
    units) for the candidates with a unit at a kink by the exact, relative rule (KINK_TOL, ``RegionMargins.kinks``),
    from the activation region of the candidates alone; None when that region is too large to form (U P above
    KINK_REGION_ENTRIES, or its dense sign-row Jacobian, candidates x U x P floats, above ``dense_bytes``)."""
    samples = np.array(sorted(candidates), dtype=int)
    if units * model.n_params > KINK_REGION_ENTRIES or samples.size * units * model.n_params * 8 > dense_bytes:
        return None
    from ..modeling.data import Dataset
    from ..modeling.regions import RegionMargins

    region = RegionMargins(model, Dataset(data.X[samples], data.y[samples]), theta_hat)
    return {int(samples[i]): region.vertices(theta_hat, i, found, KINK_TOL)
            for i, found in region.kinks(theta_hat, KINK_TOL).items()}


def clarke_fit(kernel, theta_hat, support, vertices: dict, n_rows: int, dense_bytes: int = DENSE_ROWS_BYTES):
    """(lambda (n_rows,), eps, slopes) minimizing ||theta_hat - sum_n lambda_n g_n|| over lambda >= 0 and one Clarke
    element g_n per support row (``vertices``: row -> ``RegionMargins.vertices`` of the kinked rows; the other rows'
    gradients as the kernel computes them): the NNLS of max_margin's Clarke check (``nlp.clarke.clarke_choice``),
    eps recomputed from the residual vector with the chosen elements.  ``slopes``: per row with lambda_n > 0, its
    units' slopes in the chosen element.  None when the columns (count x P floats) exceed ``dense_bytes``."""
    from ..nlp.clarke import KinkedRow, clarke_choice

    support = np.asarray(support, dtype=int)
    theta_hat = np.asarray(theta_hat, dtype=float)
    kinked = {i: KinkedRow(i, vertices[n].units, vertices[n].slopes, vertices[n].gradients)
              for i, n in enumerate(support.tolist())
              if n in vertices and vertices[n].complete and vertices[n].gradients.shape[0]}
    count = support.size + sum(entry.columns.shape[0] - 1 for entry in kinked.values())
    if count * theta_hat.size * 8 > dense_bytes:
        return None
    J = np.array(kernel.per_sample_jacobian(theta_hat, support), dtype=float)   # its kinked rows replaced
    lam_S, elements = clarke_choice(J, np.arange(support.size), kinked, np.zeros(support.size, dtype=bool), theta_hat)
    slopes = []
    for i, (element, chosen) in elements.items():
        J[i] = element
        slopes.append({"row": int(support[i]), "units": [list(u) for u in kinked[i].units],
                       "slopes": [float(s) for s in chosen[:len(kinked[i].units)]]})
    lam = np.zeros(n_rows)
    lam[support] = lam_S
    return lam, float(np.linalg.norm(theta_hat - J.T @ lam_S)), tuple(slopes)


def _kinks(model, kernel, theta_hat, data, support, lam, residual, dense_bytes):
    """(lambda, eps, Kinks | None): the Clarke fit's where near-support rows have units at a kink, else the
    one-gradient fit's as given (K-class data: the activation regions are binary, no kinks are looked for)."""
    if data.n_classes is not None or not np.asarray(support).size:
        return lam, residual, None
    candidates, units = kink_candidates(model, kernel, theta_hat, data, support)
    if not candidates:
        return lam, residual, None
    vertices = kinked_rows(model, theta_hat, data, candidates, units, dense_bytes)
    if vertices is None:                # the region is too large to form: the candidates, not fitted
        rows = np.array(sorted(candidates), dtype=int)
        return lam, residual, Kinks(rows, tuple(tuple(candidates[n]) for n in rows.tolist()), (), int(rows.size),
                                    False, residual)
    if not vertices:
        return lam, residual, None
    rows = np.array(sorted(vertices), dtype=int)
    units_of = tuple(vertices[n].units for n in rows.tolist())
    undecided = sum(not vertices[n].complete for n in rows.tolist())
    fitted = clarke_fit(kernel, theta_hat, support, vertices, lam.size, dense_bytes)
    if fitted is None:
        return lam, residual, Kinks(rows, units_of, (), undecided, False, residual)
    clarke_lam, clarke_residual, slopes = fitted
    return clarke_lam, clarke_residual, Kinks(rows, units_of, slopes, undecided, True, residual)


def normalized_margin_or_none(model, theta, data, kernel=None) -> float | None:
    """min_n f_n(theta) / ||theta||^degree, None when the model is not homogeneous or theta = 0."""
    if model.degree is None or not np.any(theta):
        return None
    if kernel is None:
        return float(model.normalized_margin(theta, data))
    return float(np.min(margins_of(model, theta, data, kernel))) / float(np.linalg.norm(theta)) ** model.degree


def stationarity(model, theta, data, support_tol: float = 0.1, kernel=None,
                 dense_bytes: int = DENSE_ROWS_BYTES) -> Stationarity:
    """All pointwise numbers of the stationarity report (see the module docstring for the method).

    Args:
        model: the Model; theta: the point (P,); data: the Dataset.
        support_tol: relative width of the near-support set.
        kernel: the model's numpy kernel on ``data`` (default: ``margin_kernel(model, data)``).
        dense_bytes: the largest J_S (k x P floats) formed for an exact LICQ when G's spectrum does not
            decide it.

    Returns:
        Stationarity: scale, level, margins, support, multipliers, (eps, delta)-KKT numbers, LICQ,
        alignment, and the near-support rows at a kink (``kinks``; None when there are none).
    """
    theta = np.asarray(theta, dtype=float).reshape(-1)
    kernel = margin_kernel(model, data) if kernel is None else kernel
    theta_hat, scale, level = rescale(model, theta, data, kernel)
    margins = margins_of(model, theta_hat, data, kernel)
    support = near_support(margins, level, support_tol)
    gram = kernel.per_sample_gram(theta_hat, support) if support.size else np.zeros((0, 0))
    rhs = kernel.per_sample_jvp(theta_hat, support, theta_hat) if support.size else np.zeros(0)
    lam = fit_multipliers_gram(gram, rhs, support, margins.size)   # one per margin row: N, or N (K - 1) for K classes
    residual = stationarity_residual(kernel, theta_hat, lam)
    lam, residual, kinks = _kinks(model, kernel, theta_hat, data, support, lam, residual, dense_bytes)
    return Stationarity(
        scale=scale, constraint_level=level, margins=margins,
        normalized_margin=normalized_margin_or_none(model, theta, data, kernel),
        support=support, multipliers=lam,
        kkt=kkt_numbers(theta_hat, margins, lam, residual, level),
        licq=support_licq(kernel, theta_hat, support, gram, dense_bytes),
        alignment=loss_gradient_alignment(model, theta, data, kernel), kinks=kinks)
