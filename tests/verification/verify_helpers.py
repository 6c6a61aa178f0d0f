"""Small NLPs written by hand in numpy, with KKT points known by construction.

The certificate (``lexmargin.nlp.certify``) only needs an NLP's numpy evaluation, so these problems need
neither CasADi nor IPOPT: every test built on them runs in well under a millisecond, which is what lets
the mutation run (docs/mutation_testing.md) re-run them for every mutant.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

import lexmargin as lm
from hypothesis import HealthCheck, settings

from lexmargin.nlp.certify import certify
from lexmargin.nlp.nlp import NLP, Point, Rows

# deterministic property tests: the same examples on every run, no example database
PROPERTY = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _no_expressions(z, p):  # the certificate never builds CasADi expressions
    raise AssertionError("the certificate must not use the CasADi expressions")


@dataclass(frozen=True, eq=False)
class QP:
    """min 0.5 z'Qz + q'z  s.t.  A z - b >= 0 (rows "margin"), E z - e = 0 (rows "fixed"), lower <= z <= upper,
    with a point z and multipliers (lam for A, mu for E, lo/up for the bounds) in lexmargin's convention.

    ``levels``/``eq_levels``: the rows' levels; ``gradient_scale``: the Point's g~ (None: |g|);
    ``diagonal``: the NLP returns the diagonal of its Hessian (``hessian_diagonal``).
    """

    Q: np.ndarray
    q: np.ndarray
    A: np.ndarray
    b: np.ndarray
    E: np.ndarray
    e: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    z: np.ndarray
    lam: np.ndarray
    mu: np.ndarray
    lo: np.ndarray
    up: np.ndarray
    levels: np.ndarray
    eq_levels: np.ndarray
    gradient_scale: np.ndarray | None = None
    diagonal: bool = False
    samples: np.ndarray | None = None      # the sample of each "margin" row (default 0, 1, ...)
    casadi: bool = False                   # give the NLP CasADi expressions (to solve it with IPOPT)
    x_scale: np.ndarray | None = None
    options: dict | None = None

    @property
    def n(self) -> int:
        return self.q.size

    @property
    def multipliers(self) -> np.ndarray:
        return np.concatenate([self.lam, self.mu])

    def nlp(self) -> NLP:
        Q, q, A, b, E, e = self.Q, self.q, self.A, self.b, self.E, self.e
        levels = np.concatenate([self.levels, self.eq_levels])
        gs = self.gradient_scale
        samples = np.arange(A.shape[0]) if self.samples is None else self.samples
        rows = [r for r in (Rows("margin", A.shape[0], samples=samples),
                            Rows("fixed", E.shape[0], equality=True)) if r.size]

        def evaluate(z, p=None) -> Point:
            z = np.asarray(z, dtype=float)
            return Point(float(0.5 * z @ Q @ z + q @ z), Q @ z + q, np.concatenate([A @ z - b, E @ z - e]),
                         np.vstack([A, E]), levels.copy(), None if gs is None else gs.copy())

        def hessian(z, p, multipliers):
            return np.diag(Q).copy() if self.diagonal else Q.copy()

        def expressions(z, p):          # for IPOPT (tests of the solver interface)
            import casadi as ca
            M = np.vstack([A, E])
            return (0.5 * ca.dot(z, ca.mtimes(ca.DM(Q), z)) + ca.dot(ca.DM(q), z),
                    ca.mtimes(ca.DM(M), z) - ca.DM(np.concatenate([b, e])) if M.shape[0] else ca.SX(0, 1))

        return NLP("qp", self.n, tuple(rows), self.lower, self.upper,
                   expressions if self.casadi else _no_expressions, evaluate, theta=lambda z: z, hessian=hessian,
                   hessian_diagonal=self.diagonal, x_scale=self.x_scale, options=dict(self.options or {}))

    def report(self, tolerances=None, **changes):
        p = replace(self, **changes) if changes else self
        return certify(p.nlp(), p.z, p.multipliers, p.lo, p.up, tolerances=tolerances)

    # ---- rescalings that must leave every relative residual unchanged ---------------------------
    def objective_scaled(self, alpha: float) -> "QP":
        """phi -> alpha phi: every multiplier scales by alpha."""
        return replace(self, Q=alpha * self.Q, q=alpha * self.q, lam=alpha * self.lam, mu=alpha * self.mu,
                       lo=alpha * self.lo, up=alpha * self.up,
                       gradient_scale=None if self.gradient_scale is None else alpha * self.gradient_scale)

    def row_scaled(self, i: int, beta: float) -> "QP":
        """Inequality row i -> beta * row i (its level too): its multiplier scales by 1 / beta."""
        A, b, lam, levels = self.A.copy(), self.b.copy(), self.lam.copy(), self.levels.copy()
        A[i], b[i], lam[i], levels[i] = beta * A[i], beta * b[i], lam[i] / beta, beta * levels[i]
        return replace(self, A=A, b=b, lam=lam, levels=levels)

    def variables_scaled(self, kappa: float) -> "QP":
        """New variables w = kappa z (theta in other units): gradients / kappa, bounds * kappa."""
        return replace(self, Q=self.Q / kappa ** 2, q=self.q / kappa, A=self.A / kappa, E=self.E / kappa,
                       lower=self.lower * kappa, upper=self.upper * kappa, z=self.z * kappa,
                       lo=self.lo / kappa, up=self.up / kappa,
                       gradient_scale=None if self.gradient_scale is None else self.gradient_scale / kappa)


def kkt_qp(rng, n=4, active=2, inactive=2, equalities=0, bounds=False, Q=None) -> QP:
    """A convex QP whose point z is a KKT point by construction: the active rows pass through z with
    positive multipliers, inactive rows have slack >= 0.5, and q is chosen so that stationarity holds.
    ``bounds``: z_0 at an active lower bound, z_1 at an active upper bound, z_2 strictly inside both."""
    z = rng.standard_normal(n)
    A = rng.standard_normal((active + inactive, n))
    slack = np.concatenate([np.zeros(active), 0.5 + rng.random(inactive)])
    b = A @ z - slack
    lam = np.concatenate([0.5 + rng.random(active), np.zeros(inactive)])
    E = rng.standard_normal((equalities, n))
    mu = rng.standard_normal(equalities)
    Q = np.eye(n) if Q is None else np.asarray(Q, dtype=float)
    lower, upper = np.full(n, -np.inf), np.full(n, np.inf)
    lo, up = np.zeros(n), np.zeros(n)
    if bounds:
        lower[0], upper[1] = z[0], z[1]
        lower[2], upper[2] = z[2] - 1.0, z[2] + 1.0
        lo[0], up[1] = 0.7, 1.3
    q = A.T @ lam + E.T @ mu + lo - up - Q @ z
    return QP(Q, q, A, b, E, E @ z, lower, upper, z, lam, mu, lo, up, np.ones(active + inactive),
              np.ones(equalities))


def casadi_reference(nlp, z, lam, p=None):
    """Objective, gradient, rows, Jacobian and Hessian of the Lagrangian phi - lam.c from the NLP's CasADi
    expressions (what IPOPT solves), to compare with the NLP's numpy evaluation (what the certificate uses)."""
    import casadi as ca
    zs = nlp.symbol.sym("z", nlp.n)
    ls = nlp.symbol.sym("l", nlp.m)
    ps = nlp.symbol.sym("p", max(nlp.parameters, 1))
    f, g = nlp.expressions(zs, ps if nlp.parameters else None)
    out = [f, ca.gradient(f, zs), g, ca.jacobian(g, zs), ca.hessian(f - ca.dot(ls, g), zs)[0]]
    fn = ca.Function("ref", [zs, ls, ps], [ca.densify(e) for e in out])
    return [np.array(v) for v in fn(z, lam, np.zeros(1) if p is None else p)]


def assert_nlp_matches_expressions(nlp, z, lam, p=None, rtol=1e-10, atol=1e-12):
    f, grad, g, jac, hess = casadi_reference(nlp, z, lam, p)
    point = nlp.evaluate(z, p)
    np.testing.assert_allclose(point.objective, f.item(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(point.gradient, grad.reshape(-1), rtol=rtol, atol=atol)
    np.testing.assert_allclose(point.values, g.reshape(-1), rtol=rtol, atol=atol)
    np.testing.assert_allclose(point.jacobian, jac, rtol=rtol, atol=atol)
    H = np.asarray(nlp.hessian(z, p, lam), dtype=float)
    np.testing.assert_allclose(np.diag(H) if nlp.hessian_diagonal else H, hess, rtol=rtol, atol=atol)
    return point


def kinked_point(seed, width=3, d=3, n=5):
    """A random two-layer net and data where unit 0 is exactly at its kink on sample 0 and every margin is 1
    (a . relu(V x) is positively 1-homogeneous in x: x_n / |g_n| has margin 1 with y_n = sign(g_n))."""
    rng = np.random.default_rng(seed)
    while True:
        V, a = rng.standard_normal((width, d)), rng.standard_normal(width)
        X = rng.standard_normal((n, d))
        X[0] -= (X[0] @ V[0]) / (V[0] @ V[0]) * V[0]           # v_0 . x_0 = 0
        g = np.array([a @ np.maximum(V @ x, 0.0) for x in X])
        if np.all(np.abs(g) > 1e-2):
            return V, a, lm.Dataset(X / np.abs(g)[:, None], np.sign(g))


def three_class_points():
    """Four separable points in R^2 with labels 0..2 (sample 3 shares class 0): the multi-class linear model
    (K = 3), the Dataset, X, the integer labels and the (n, j != y_n) margin rows in the certificate's order."""
    X = np.array([[3.0, 0.0], [0.0, 3.0], [-3.0, -3.0], [2.0, 0.5]])
    y = np.array([0, 1, 2, 0])
    pairs = [[n, j] for n in range(4) for j in range(3) if j != y[n]]
    model = lm.load_model("multiclass_linear", input_dim=2, n_classes=3)
    return model, lm.Dataset(X, y, n_classes=3), X, y, pairs


# ---- multi-class max-margin in exact arithmetic ---------------------------------------------------------------
def kesler(X, y, K):
    """The margin rows as a matrix: row (n, j) of A is (e_{y_n} - e_j) kron x_n, sample-major, j increasing."""
    rows, pairs = [], []
    for n, (x, label) in enumerate(zip(X, y)):
        for j in range(K):
            if j != label:
                a = np.zeros((K, X.shape[1]))
                a[label] += x
                a[j] -= x
                rows.append(a.ravel())
                pairs.append((n, j))
    return np.array(rows), np.array(pairs)


def exact_support_optimum(A, support):
    """The max-margin optimum over the rows ``support`` in rational arithmetic: theta = A_S^T mu / 2 with
    (A_S A_S^T) mu = 2 (None when A_S A_S^T is singular), and whether it is the optimum over all rows (mu >= 0 and
    every row A theta >= 1, exactly)."""
    from fractions import Fraction

    rows = [[Fraction(float(v)) for v in A[i]] for i in range(A.shape[0])]
    S = [rows[i] for i in support]
    k = len(S)
    M = [[sum(a * b for a, b in zip(S[i], S[j])) for j in range(k)] + [Fraction(2)] for i in range(k)]
    for c in range(k):                                    # Gauss-Jordan, exact
        p = next((i for i in range(c, k) if M[i][c] != 0), None)
        if p is None:
            return None, False
        M[c], M[p] = M[p], M[c]
        for i in range(k):
            if i != c and M[i][c] != 0:
                f = M[i][c] / M[c][c]
                M[i] = [a - f * b for a, b in zip(M[i], M[c])]
    mu = [M[i][k] / M[i][i] for i in range(k)]
    theta = [sum(mu[i] * S[i][p] for i in range(k)) / 2 for p in range(A.shape[1])]
    optimal = all(m >= 0 for m in mu) and all(sum(a * t for a, t in zip(row, theta)) >= 1 for row in rows)
    return np.array([float(t) for t in theta]), optimal
