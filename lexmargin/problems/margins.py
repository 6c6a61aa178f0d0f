"""Where the margin rows f_n(theta) of a max-margin NLP come from.

* ``LinearMargins``: models affine in theta, f = A theta + c with A the exact Jacobian.  When max |A| is
  outside [2^-8, 2^8], A is stored divided by 2^e (e chosen so that max |A| is in [1/2, 1)): the problem
  is solved in theta' = 2^e theta, which is exact in floating point, so data scaled by any factor gives
  an equally well-scaled problem.  Columns of
  very different sizes are handled by IPOPT variable scaling (``column_scale``, powers of two);
* ``InputAffineMargins``: models whose output is affine in the input x, g(theta; x) = beta(theta).x + c(theta)
  (deep linear nets, diagonal nets, linear models, the svm_bias model): f = A beta(theta) + y c(theta) with
  A = y * X, so values and Jacobian are one product with A and the weighted Hessian sum_n w_n Hess f_n is
  the Hessian of the single function beta(theta).(A^T w) + (y.w) c(theta) -- instead of N per-sample
  P x P Hessians; the NLP's CasADi rows are A beta(theta) (N d nodes, not N copies of the model's graph).
  Detected from the model's own CasADi trace (``input_affine``), exactly (symbolic, no sampling);
* ``ModelMargins``: any model, through its CasADi functions (margins, Jacobian, weighted Hessian);
* ``lexmargin.modeling.regions.RegionMargins``: ReLU nets restricted to an activation region, with
  sign rows on the pre-activations.

A source may carry extra rows (``extra_*``, e.g. region sign rows) that are not margins.
"""

from __future__ import annotations

import math

import casadi as ca
import numpy as np

from ..errors import LexmarginError
from ..modeling.data import Dataset
from ..modeling.model import Model

STRUCTURES = ("auto", "general")
COLUMN_SPREAD = 2.0 ** 8     # columns whose sizes differ by more are passed to IPOPT with variable scaling
DATA_SPREAD = 8              # data with max |A| outside [2^-8, 2^8] is rescaled by a power of two
MIN_COLUMN_EXPONENT = -1023   # column scales 2^-e_j stay at most 2^1023 (the largest power of two)


def power_of_two_exponent(value: float) -> int:
    """e with value / 2^e in [1/2, 1) (0 for 0 or non-finite values)."""
    if not (value > 0 and math.isfinite(value)):
        return 0
    return math.frexp(value)[1]


def largest_magnitude(A, axis: int) -> np.ndarray:
    """max |A| along ``axis`` (A not empty along it) as max(max A, -min A): two reductions instead of forming |A|
    (a copy of A) and reducing it; the same numbers up to the sign of a zero."""
    return np.maximum(A.max(axis=axis), -A.min(axis=axis))


def prescale(A, *, in_place: bool = False) -> tuple[np.ndarray, int, np.ndarray | None]:
    """The prescaling of linear margin rows A theta + c (``LinearMargins``): (A / 2^e, e, column scales or None).

    e = ``power_of_two_exponent(max |A|)`` when that is outside [-DATA_SPREAD, DATA_SPREAD], else 0 (data of
    ordinary size is solved as given).  The column scales are 2^-e_j with e_j the exponent of column j's largest
    |entry| after the division (1 for a zero column), kept only when they spread by more than COLUMN_SPREAD (IPOPT
    copes with a few binary orders of magnitude; variable scaling costs a little per iteration).  Every division
    is by a power of two: exact.  A is returned itself when e = 0, divided in place with ``in_place``, else as a
    new array; |A| is never formed (``largest_magnitude``)."""
    columns = largest_magnitude(A, 0) if A.shape[0] else np.zeros(A.shape[1])
    exponent = power_of_two_exponent(float(np.max(columns, initial=0.0)))
    exponent = exponent if abs(exponent) > DATA_SPREAD else 0
    if exponent:
        A = np.ldexp(A, -exponent, out=A if in_place else None)
        columns = np.ldexp(columns, -exponent)                   # exact: powers of two
    # power_of_two_exponent of every column at once (frexp's exponent; 0 for zero columns), at most 2^1023 (a column
    # of subnormal entries beside others of size 1, e.g. features at 1e-310 beside a bias column: its 2^1029 would
    # overflow; such a column's coefficient overflows anyway, which the certificate reports)
    exponents = np.where(columns > 0, np.frexp(columns)[1], 0)
    scale = np.ldexp(1.0, -np.maximum(exponents, MIN_COLUMN_EXPONENT))
    spread = scale.size and np.max(scale) > COLUMN_SPREAD * np.min(scale)
    return A, exponent, (scale if spread else None)


class _NoExtraRows:
    extra_kind = "none"
    n_extra = 0

    def extra_expression(self, theta):
        return None

    def extra_values(self, theta) -> np.ndarray:
        return np.zeros(0)

    def extra_jacobian(self, theta) -> np.ndarray:
        return np.zeros((0, theta.size))

    def extra_hessian(self, theta, weights) -> np.ndarray:
        return np.zeros((theta.size, theta.size))

    def extra_levels(self, theta) -> np.ndarray:
        return np.zeros(0)


class LinearMargins(_NoExtraRows):
    """f_n(theta) = A_n theta + c_n, stored as A' = A / 2^scale_exponent (theta' = 2^e theta)."""

    symbol = ca.MX
    convex = True
    linear = True

    def __init__(self, model: Model, data: Dataset):
        zero = np.zeros(model.n_params)
        A = np.array(model.margin_jacobian(zero, data), dtype=float)      # a copy of the model's array, scaled in place
        self.c = model.margins(zero, data)
        self.A, self.scale_exponent, self.column_scale = prescale(A, in_place=True)
        self.n_samples = A.shape[0]

    def to_user(self, theta_scaled) -> np.ndarray:
        """theta = 2^-e theta' (inf where it overflows in the data's units: the certificate says so,
        ``maxmargin.representable``)."""
        with np.errstate(over="ignore"):
            return np.ldexp(np.asarray(theta_scaled, dtype=float), -self.scale_exponent)

    def to_scaled(self, theta) -> np.ndarray:
        return np.ldexp(np.asarray(theta, dtype=float), self.scale_exponent)

    def expression(self, theta, index):
        return ca.mtimes(ca.DM(self.A[index]), theta) + ca.DM(self.c[index])

    def values(self, theta, index=slice(None)) -> np.ndarray:
        return self.A[index] @ theta + self.c[index]

    def jacobian(self, theta, index=slice(None)) -> np.ndarray:
        return self.A[index]

    def weighted_hessian(self, theta, index, weights) -> np.ndarray:
        return np.zeros((theta.size, theta.size))


class InputAffineMargins(_NoExtraRows):
    """f_n(theta) = A_n beta(theta) + y_n c(theta), A = y * X: a model whose output is affine in the input.

    ``beta``, its Jacobian, ``c``, its gradient and the weighted Hessian are CasADi functions of theta
    alone, traced from the model's own margin function (``input_affine``); evaluating them costs one
    model-sized graph, not N.  The NLP is traced in MX: A enters as one constant matrix whose derivative
    CasADi takes as a matrix (in SX the N x P Jacobian of A beta(theta) is built entry by entry).  No rescaling
    (theta as given)."""

    symbol = ca.MX
    convex = False
    linear = False
    scale_exponent = 0
    column_scale = None

    def __init__(self, model: Model, data: Dataset, parts=None):
        parts = parts if parts is not None else input_affine(model)
        if parts is None:
            raise ValueError(f"model {model.name!r} is not affine in its input")
        self.model, self.data = model, data
        self.n_samples = data.n_samples
        self.A = np.ascontiguousarray(data.y[:, None] * data.X)
        self.y = np.asarray(data.y, dtype=float)
        self._beta, self._dbeta, self._c, self._dc, self._hessian, self.has_offset = parts

    @staticmethod
    def to_user(theta) -> np.ndarray:
        return np.asarray(theta, dtype=float)

    to_scaled = to_user

    def beta(self, theta) -> np.ndarray:
        """The end-to-end vector beta(theta) (g = beta.x + c)."""
        return np.array(self._beta(np.asarray(theta, dtype=float))).reshape(-1)

    def expression(self, theta, index=slice(None)):
        rows = ca.mtimes(ca.DM(self.A[index]), self._beta(theta))
        if self.has_offset:
            rows = rows + ca.DM(self.y[index]) * self._c(theta)
        return rows

    def values(self, theta, index=slice(None)) -> np.ndarray:
        theta = np.asarray(theta, dtype=float)
        f = self.A[index] @ self.beta(theta)
        if self.has_offset:
            f = f + self.y[index] * float(self._c(theta))
        return f

    def jacobian(self, theta, index=slice(None)) -> np.ndarray:
        theta = np.asarray(theta, dtype=float)
        J = self.A[index] @ _dense(self._dbeta(theta))
        if self.has_offset:
            J = J + np.outer(self.y[index], np.array(self._dc(theta)).reshape(-1))
        return J

    def weighted_hessian(self, theta, index, weights) -> np.ndarray:
        w = np.asarray(weights, dtype=float)
        b = self.A[index].T @ w
        return _dense(self._hessian(np.asarray(theta, dtype=float), b, float(self.y[index] @ w)))

    # lifted rows (IPOPT formulations): f = A u_beta + y u_c with u = (beta(theta), c(theta))
    @property
    def n_link(self) -> int:
        return self.A.shape[1] + (1 if self.has_offset else 0)

    def link_expression(self, theta):
        return ca.vertcat(self._beta(theta), self._c(theta)) if self.has_offset else self._beta(theta)

    def link_values(self, theta) -> np.ndarray:
        theta = np.asarray(theta, dtype=float)
        beta = self.beta(theta)
        return np.append(beta, float(self._c(theta))) if self.has_offset else beta

    def lifted_expression(self, u, index=slice(None)):
        d = self.A.shape[1]
        rows = ca.mtimes(ca.DM(self.A[index]), u[:d])
        return rows + ca.DM(self.y[index]) * u[d] if self.has_offset else rows


def input_affine(model: Model):
    """CasADi functions (beta, d beta/d theta, c, grad c, Hess_theta[beta.b + s c](theta, b, s), has_offset)
    when the model's output is affine in its input, g(theta; x) = beta(theta).x + c(theta); else None.

    Exact: f = y g for models declared with ``output=``/``summands=``; g is affine in x when its gradient in
    x does not depend on x (structurally, on the model's own SX trace), and then g = g(theta; 0) + x.grad_x g.
    Cached on the model."""
    cache = model.__dict__.setdefault("_lexmargin_structure", {})
    if "input_affine" in cache:
        return cache["input_affine"]
    parts = None
    if model.has_output and getattr(model, "n_outputs", 1) == 1:     # K outputs: margins are contrasts of g
        theta, x, y = model.casadi_margin.sx_in()
        g = ca.substitute(model.casadi_margin(theta, x, y), y, ca.SX(1.0))
        beta = ca.densify(ca.gradient(g, x))
        if not ca.depends_on(beta, x):
            c = ca.substitute(g, x, ca.SX.zeros(x.numel()))
            has_offset = not c.is_zero()
            b, s = ca.SX.sym("b", x.numel()), ca.SX.sym("s")
            weighted = ca.dot(beta, b) + (s * c if has_offset else 0)
            parts = (ca.Function("beta", [theta], [beta]),
                     ca.Function("beta_jacobian", [theta], [ca.jacobian(beta, theta)]),
                     ca.Function("offset", [theta], [ca.densify(c)]),
                     ca.Function("offset_gradient", [theta], [ca.densify(ca.gradient(c, theta))]),
                     _OnFirstCall(lambda: ca.Function("weighted_hessian", [theta, b, s],
                                                      [ca.hessian(weighted, theta)[0]])),
                     has_offset)
    cache["input_affine"] = parts
    return parts


class _OnFirstCall:
    """A CasADi function built on its first call.  The weighted Hessian of a deep net's beta(theta) is the costly
    part of ``input_affine`` (CasADi's symbolic Hessian: 0.1 s for a depth-3 linear net of width 20, 3 s at 40, 36 s
    at 60, growing like width^6) and is needed only where a P x P Hessian is formed (second-order checks up to
    ``certify.SECOND_ORDER_MAX_SIZE`` variables, the finish's Newton steps); the closed form of deep linear nets
    and wide problems never call it."""

    def __init__(self, build):
        self._build, self._function = build, None

    def __call__(self, *args):
        if self._function is None:
            self._function = self._build()
        return self._function(*args)


def _dense(matrix) -> np.ndarray:
    """A (sparse) CasADi DM as a dense numpy array, filled from its nonzeros (np.array(DM) is slow for large
    mostly-zero matrices)."""
    out = np.zeros(matrix.shape)
    rows, cols = matrix.sparsity().get_triplet()
    out[rows, cols] = matrix.nonzeros()
    return out


def model_margins(model: Model, data: Dataset, structure: str = "auto"):
    """The margin source of a model that is not linear in theta: ``InputAffineMargins`` when the model's output
    is affine in its input (``structure="auto"``), else (or with ``structure="general"``) ``ModelMargins``."""
    if structure not in STRUCTURES:
        raise LexmarginError(f"unknown structure {structure!r}; use one of {STRUCTURES}")
    parts = input_affine(model) if structure == "auto" else None
    return InputAffineMargins(model, data, parts) if parts is not None else ModelMargins(model, data)


class ModelMargins(_NoExtraRows):
    """General models: constraints traced from the model's CasADi functions (no rescaling)."""

    symbol = ca.SX
    convex = False
    linear = False
    scale_exponent = 0
    column_scale = None

    def __init__(self, model: Model, data: Dataset):
        self.model, self.data = model, data
        self.n_samples = data.n_samples

    @staticmethod
    def to_user(theta) -> np.ndarray:
        return np.asarray(theta, dtype=float)

    to_scaled = to_user

    def expression(self, theta, index=slice(None)):
        return self.model.margin_expressions(theta, self._subset(index))

    # lifted rows (IPOPT formulations): f = M u with u = f itself (M = I, one variable per sample)
    @property
    def n_link(self) -> int:
        return self.n_samples

    def link_expression(self, theta):
        return self.expression(theta)

    def link_values(self, theta) -> np.ndarray:
        return self.values(theta)

    def lifted_expression(self, u, index=slice(None)):
        return u[np.arange(self.n_samples)[index].tolist()]

    def values(self, theta, index=slice(None)) -> np.ndarray:
        return self.model.margins(theta, self._subset(index))

    def jacobian(self, theta, index=slice(None)) -> np.ndarray:
        return self.model.margin_jacobian(theta, self._subset(index))

    def weighted_hessian(self, theta, index, weights) -> np.ndarray:
        return self.model.weighted_hessian(theta, self._subset(index), weights)

    def _subset(self, index):
        if isinstance(index, slice) and index == slice(None):
            return self.data
        index = np.asarray(index)
        if index.size == self.data.n_samples and np.array_equal(index, np.arange(self.data.n_samples)):
            return self.data
        return self.data.subset(index)


class LiftedSolver:
    """IPOPT on a reformulation of ``nlp`` whose variables begin with nlp's and whose rows include nlp's
    (``rows``: their positions), e.g. margins lifted into variables u with f = M u and link rows
    u = link(theta).  ``solve(z0, p)`` answers in nlp's variables and rows, so the pipeline finishes and
    certifies ``nlp`` itself; only IPOPT sees the lifted form.  ``start(z0, p)``: the lifted start."""

    def __init__(self, nlp, lifted, rows, start, options=None):
        from ..nlp.ipopt import IpoptSolver

        self.nlp, self.lifted = nlp, lifted
        self.rows = np.asarray(rows, dtype=int)
        self.start = start
        self.inner = IpoptSolver(lifted, options)

    def solve(self, z0, p=None):
        from dataclasses import replace

        result = self.inner.solve(self.start(np.asarray(z0, dtype=float), p), p)
        n = self.nlp.n
        return replace(result, z=result.z[:n], multipliers=result.multipliers[self.rows],
                       lower_multipliers=result.lower_multipliers[:n], upper_multipliers=result.upper_multipliers[:n])


# ---- deep linear nets: the end-to-end map is a product of matrices ---------------------------------------
def deep_linear_widths(model: Model, source) -> tuple[int, ...] | None:
    """Hidden widths (h_1, ..., h_{L-1}) when the model is a deep linear net f = y w_L^T W_{L-1} ... W_1 x, its
    arrays in that order with shapes (h_1, d), (h_2, h_1), ..., (h_{L-1},) (or (1, h_{L-1})); else None.

    Read from the parameter layout and accepted only when the source's beta(theta) equals
    W_1^T ... W_{L-1}^T w_L at two random points (to rounding): beta is a polynomial, so agreement at random
    points is agreement everywhere, up to probability zero."""
    if not isinstance(source, InputAffineMargins) or source.has_offset:
        return None
    d, shapes = model.input_dim, [tuple(s) for s in model.layout.shapes]
    if len(shapes) < 2 or any(len(s) != 2 for s in shapes[:-1]):
        return None
    widths = [d]
    for shape in shapes[:-1]:
        if shape[1] != widths[-1]:
            return None
        widths.append(shape[0])
    if shapes[-1] not in ((widths[-1],), (1, widths[-1])):
        return None
    rng = np.random.default_rng(0)
    for _ in range(2):
        theta = rng.standard_normal(model.n_params)
        expected = end_to_end(model, theta)
        if not np.allclose(source.beta(theta), expected, rtol=1e-10, atol=1e-12 * np.max(np.abs(expected))):
            return None
    return tuple(widths[1:])


def end_to_end(model: Model, theta) -> np.ndarray:
    """W_1^T ... W_{L-1}^T w_L of a deep linear net (arrays in layout order)."""
    arrays = list(model.unflatten(np.asarray(theta, dtype=float)).values())
    beta = np.asarray(arrays[-1], dtype=float).reshape(-1)
    for W in reversed(arrays[:-1]):
        beta = W.T @ beta
    return beta


def balanced_factorization(model: Model, beta, widths) -> np.ndarray:
    """theta of a deep linear net with end-to-end vector beta and every layer of Frobenius norm s = ||beta||^(1/L):
    W_1 = s u_1 v^T, W_k = s u_k u_{k-1}^T, w_L = s u_{L-1} with v = beta/||beta|| and u_k = (1, ..., 1)/sqrt(h_k).
    By the AM-GM inequality ||theta||^2 = sum_k ||W_k||^2 >= L prod_k ||W_k||^(2/L) >= L ||beta||^(2/L), with
    equality here: the smallest parameter norm of any net computing beta."""
    beta = np.asarray(beta, dtype=float)
    L, size = len(widths) + 1, float(np.linalg.norm(beta))
    s = size ** (1.0 / L)
    units = [np.full(h, 1.0 / np.sqrt(h)) for h in widths]
    layers = [s * np.outer(units[0], beta / size)]
    layers += [s * np.outer(units[k], units[k - 1]) for k in range(1, L - 1)]
    layers.append(s * units[-1])
    names, shapes = model.layout.names, model.layout.shapes
    return model.flatten({n: a.reshape(shape) for n, a, shape in zip(names, layers, shapes)})
