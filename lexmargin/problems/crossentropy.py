"""The regularization path's NLP with the softmax cross-entropy loss (multi-class; the logistic loss on binary data).

    min_theta  log( L(theta) + lambda ||theta||^2 ) - c,     L = sum_n l_n,   l_n = log(1 + sum_{j != y_n} exp(-f_{n,j}))

over the margin rows f_{n,j} (``modeling.multiclass.MarginRows``: K - 1 rows per sample, sample-major); on binary data
each sample is a group of one row and l_n = log(1 + exp(-f_n)), the logistic loss.  Everything in log space: with
s_n = logsumexp_j(-f_{n,j}) the exponents are a_n = log softplus(s_n) and a_reg = log lambda + log ||theta||^2, the
objective is logsumexp(a) - c (c = p[1], a shift that keeps IPOPT's objective O(1)).

Derivatives by hand, from the model's margins, Jacobian and weighted Hessians (the certificate recomputes them in
numpy): with q_{n,j} = exp(-f_{n,j} - softplus(s_n)) (the wrong classes' softmax probabilities) and the weights
v_{n,j} = q_{n,j} / (L + R) = exp(-f_{n,j} - softplus(s_n) - logsumexp(a)), w_reg = softmax(a)_reg,

    grad   = -J^T v + w_reg 2 theta / ||theta||^2,
    Hessian = sum_n J_n^T (diag(v_n) - v_n q_n^T) J_n - sum_{n,j} v_{n,j} Hess f_{n,j} + w_reg 2 I / ||theta||^2
              - grad grad^T.
"""

from __future__ import annotations

import casadi as ca
import numpy as np

from ..errors import LexmarginError
from ..modeling.multiclass import MarginRows
from ..nlp.nlp import NLP, Point
from .logspace import casadi_logsumexp, logsumexp, softmax

LOSSES = ("exp", "cross_entropy")
SMALL = -30.0      # below this s, log softplus(s) = s - e^s / 2 to rounding (the next term is e^{2s} / 24)


def group_size(data) -> int:
    """Margin rows per sample: K - 1 for multi-class rows, 1 for binary data."""
    return data.n_classes - 1 if isinstance(data, MarginRows) else 1


def _softplus(s) -> np.ndarray:
    return np.logaddexp(0.0, s)


def _log_softplus(s) -> np.ndarray:
    """log(log(1 + e^s)) without underflow for very negative s."""
    s = np.asarray(s, dtype=float)
    small = s < SMALL
    with np.errstate(divide="ignore"):
        regular = np.log(_softplus(np.where(small, 0.0, s)))
    return np.where(small, s - np.exp(np.minimum(s, 0.0)) / 2, regular)


def _ca_log_softplus(s):
    softplus = ca.if_else(s > 0, s + ca.log1p(ca.exp(-s)), ca.log1p(ca.exp(s)))
    return ca.if_else(s < SMALL, s - ca.exp(s) / 2, ca.log(softplus))


def _group_logsumexp(F) -> np.ndarray:
    """logsumexp over each row of F (N, g)."""
    m = np.max(F, axis=1)
    return m + np.log(np.sum(np.exp(F - m[:, None]), axis=1))


def group_log_loss(F):
    """The cross-entropy's log-space parts on margins F (N, g), one sample a row:

        s_n = logsumexp_j(-F_{n,j}),   a_n = log softplus(s_n) = log l_n,   A = logsumexp_n a_n = log L,
        q_{n,j} = exp(-F_{n,j} - softplus(s_n))   (the wrong classes' softmax probabilities),
        v_{n,j} = q_{n,j} / L = exp(-F_{n,j} - softplus(s_n) - A)   (-dA/dF_{n,j}; sum v <= 1).

    Every exponential is shifted (A ~ -min F at large margins): v stays O(1) where F ~ 1e8.

    Args:
        F: the margin rows reshaped (N, g), sample-major.

    Returns:
        (A, v, q, s): the log-loss, the weights and probabilities (N, g), and s (N,).
    """
    F = np.asarray(F, dtype=float)
    s = _group_logsumexp(-F)
    A = logsumexp(_log_softplus(s))
    shift = -F - _softplus(s)[:, None]
    return A, np.exp(shift - A), np.exp(shift), s


def group_log_loss_hessian(G, v, q) -> np.ndarray:
    """The Gauss-Newton part of the Hessian of A = log L through rows with Jacobian G (N g x n):

        G^T (diag(v) - blockdiag_n(v_n q_n^T) - v v^T) G   (block n: the sample's g rows; v_n q_n^T = L v_n v_n^T),

    in O(N g n^2): no N g x N g matrix (the curvature of the margins themselves, -sum v Hess f, is added by the caller).

    Args:
        G: the rows' Jacobian (N g x n), sample-major.
        v, q: from ``group_log_loss`` (N, g).

    Returns:
        The symmetric n x n matrix.
    """
    N, g = v.shape
    Gg = G.reshape(N, g, -1)
    H = (G.T * v.reshape(-1)) @ G
    Vn = np.einsum("nj,njp->np", v, Gg)                                   # G_n^T v_n
    H -= Vn.T @ np.einsum("nj,njp->np", q, Gg)                            # sum_n G_n^T v_n q_n^T G_n
    total = Vn.sum(axis=0)
    H -= np.outer(total, total)
    return (H + H.T) / 2


def casadi_log_terms(F, g: int):
    """CasADi's a_n = log l_n = log softplus(logsumexp_j(-F_{n,j})) (N x 1) of the margin rows F (N g x 1,
    sample-major), vectorized over the samples (a loop over the g rows of a sample, not over N)."""
    N = F.shape[0] // g
    E = -ca.reshape(F, g, N)                       # column n: sample n's rows
    top = E[0, :]
    for j in range(1, g):
        top = ca.fmax(top, E[j, :])
    s = top + ca.log(ca.sum1(ca.exp(E - ca.repmat(top, g, 1))))
    return _ca_log_softplus(s.T)


def casadi_group_log_loss(F, g: int):
    """CasADi's A = log L = logsumexp_n a_n (``casadi_log_terms``)."""
    return casadi_logsumexp(casadi_log_terms(F, g))


def cross_entropy_exponents(model, data, theta, log_lam):
    """(a, f, s): the exponents a = (log l_1, ..., log l_N, log lambda + log ||theta||^2), the margins f (rows)
    and s_n = logsumexp_j(-f_{n,j})."""
    theta = np.asarray(theta, dtype=float)
    g = group_size(data)
    f = model.margins(theta, data)
    s = _group_logsumexp(-f.reshape(-1, g))
    return np.append(_log_softplus(s), log_lam + np.log(theta @ theta)), f, s


def cross_entropy_regularization_nlp(model, data) -> NLP:
    """min log(sum_n l_n(theta) + exp(log lambda + log ||theta||^2)) - c;  p = (log lambda, c); data: a binary
    Dataset or multi-class MarginRows (what ``paths.check_data`` returns)."""
    P, g = model.n_params, group_size(data)
    N = data.n_samples // g

    def weights(z, log_lam):
        a, f, s = cross_entropy_exponents(model, data, z, log_lam)
        top = logsumexp(a)
        F = f.reshape(N, g)
        q = np.exp(-F - _softplus(s)[:, None])            # (N, g) the wrong classes' softmax probabilities
        v = np.exp(-F - _softplus(s)[:, None] - top)       # q / (L + R)
        return a, q, v, float(softmax(a)[-1])

    def gradient(z, J, v, w_reg):
        return -J.T @ v.reshape(-1) + w_reg * 2 * z / (z @ z)

    def expressions(z, p):
        F = model.margin_expressions(z, data)
        terms = [_ca_log_softplus(casadi_logsumexp(-F[n * g:(n + 1) * g])) for n in range(N)]
        a = ca.vertcat(*terms, p[0] + ca.log(ca.dot(z, z)))
        return casadi_logsumexp(a) - p[1], None

    def evaluate(z, p) -> Point:
        a, _, v, w_reg = weights(z, float(p[0]))
        J = model.margin_jacobian(z, data)
        reg = 2 * z / (z @ z)
        grad = gradient(z, J, v, w_reg)
        scale = np.abs(J).T @ v.reshape(-1) + w_reg * np.abs(reg)
        return Point(logsumexp(a) - float(p[1]), grad, np.zeros(0), np.zeros((0, P)), np.zeros(0), scale)

    def hessian(z, p, lam):
        _, q, v, w_reg = weights(z, float(p[0]))
        J = model.margin_jacobian(z, data)
        grad = gradient(z, J, v, w_reg)
        Jg = J.reshape(N, g, P)
        H = np.einsum("nj,njp,njq->pq", v, Jg, Jg)                            # sum_n J_n^T diag(v_n) J_n
        Vj = np.einsum("nj,njp->np", v, Jg)                                   # J_n^T v_n
        Qj = np.einsum("nj,njp->np", q, Jg)                                   # J_n^T q_n
        H -= Vj.T @ Qj                                                        # sum_n J_n^T v_n q_n^T J_n
        H -= model.weighted_hessian(z, data, v.reshape(-1))
        H += w_reg * 2 * np.eye(P) / (z @ z) - np.outer(grad, grad)
        return (H + H.T) / 2

    return NLP("regularization_path", P, (), np.full(P, -np.inf), np.full(P, np.inf), expressions, evaluate,
               theta=lambda z: z, hessian=hessian, parameters=2)


def exponents(loss: str, model, data, theta, log_lam) -> np.ndarray:
    """The log-sum-exp exponents of the regularization objective at theta for ``loss``."""
    if loss == "exp":
        return np.concatenate([-model.margins(theta, data), [log_lam + np.log(theta @ theta)]])
    return cross_entropy_exponents(model, data, theta, log_lam)[0]


def check_loss(loss: str, path: str = "regularization") -> str:
    """``loss`` if it is one of LOSSES; a LexmarginError naming the path otherwise."""
    if loss not in LOSSES:
        raise LexmarginError(f"unknown loss {loss!r} for the {path} path; use one of {LOSSES}")
    return loss


__all__ = ["LOSSES", "casadi_group_log_loss", "casadi_log_terms", "cross_entropy_exponents", "cross_entropy_regularization_nlp",
           "exponents", "group_log_loss", "group_log_loss_hessian"]
