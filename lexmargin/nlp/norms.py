"""Parameter norms, each usable as an objective and as a ball, registered by name.

Every form is a smooth NLP over a lifted decision vector z with theta = T z (T linear):

========  ================================================  =================================================
norm      objective form  (min ... s.t. problem rows)       ball form  (||theta|| <= 1)
========  ================================================  =================================================
l2        z = theta;  ||theta||_2^2                         z = theta;  row 1 - theta.theta >= 0
l1        z = [u; v] >= 0, theta = u - v;  sum(u + v)        z = [u; v] >= 0;  row 1 - sum(u + v) >= 0
linf      z = [theta; t];  rows t - theta, t + theta >= 0;   z = theta with bounds -1 <= theta <= 1
          objective t
lp        z = [u; v] >= 0;  sum(u^p + v^p) (= ||theta||_p^p)  z = [u; v] >= 0;  row 1 - sum(u^p + v^p) >= 0
========  ================================================  =================================================

``PartialL2(free=...)``: l2 with some coordinates left out of the objective (objective form only).

``PathNorm``: the squared l2 path norm of a two-layer net f = a . sigma(V x) (Neyshabur, Salakhutdinov
& Srebro 2015), sum_j a_j^2 ||v_j||^2, objective form only, z = theta; bound to a model's V (H x D) and a (H)
by ``bind(model)`` (``max_margin`` binds it).  Not a norm of theta: homogeneous of degree 4, invariant under the
node rescalings a_j -> c_j a_j, v_j -> v_j / c_j.  Registered as "path" in its gauge-fixed form
``BalancedPathNorm`` (phi + rho sum_j (a_j^2 - ||v_j||^2)^2, the same KKT points in the balanced gauge;
``docs/path_norm.md``).

At an optimum of an objective form the lift is tight (u_j v_j = 0, t = max |theta_j|), so the
objective equals ``objective_value(theta)``.  ``objective_degree`` k: objective(c theta) =
c^k objective(theta) (2 for l2, 1 for l1 and linf, p for lp), which maps multipliers across a
rescaling theta -> c theta exactly.

Each form gives CasADi expressions (for IPOPT) and numpy values, gradients, Jacobians and Hessians
(for the certificate and the exact finish), written out by hand here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import casadi as ca
import numpy as np

from ..errors import LexmarginError

OBJECTIVE, BALL = "objective", "ball"


@dataclass(frozen=True)
class Lift:
    """One form (objective or ball) of a norm for ``n_params`` parameters: z -> theta = T z."""

    norm: Norm
    form: str
    n_params: int

    @property
    def split(self) -> bool:
        return self.norm.split_lift

    @property
    def n(self) -> int:
        P = self.n_params
        return 2 * P if self.split else P + (1 if self.form == OBJECTIVE and self.norm.name == "linf" else 0)

    def theta(self, z):
        """theta = T z for numpy arrays and CasADi symbols."""
        P = self.n_params
        return z[:P] - z[P:2 * P] if self.split else z[:P]

    def theta_map(self) -> np.ndarray:
        """T (P x n)."""
        P = self.n_params
        T = np.zeros((P, self.n))
        T[:, :P] = np.eye(P)
        if self.split:
            T[:, P:] = -np.eye(P)
        return T

    def pull_back(self, jacobian) -> np.ndarray:
        """J T for a Jacobian J with respect to theta (rows x P)."""
        J = np.asarray(jacobian, dtype=float)
        out = np.zeros((J.shape[0], self.n))
        P = self.n_params
        out[:, :P] = J
        if self.split:
            out[:, P:] = -J
        return out

    def push_hessian(self, H) -> np.ndarray:
        """T^T H T for a Hessian with respect to theta."""
        T = self.theta_map()
        return T.T @ np.asarray(H, dtype=float) @ T

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lower, upper = np.full(self.n, -np.inf), np.full(self.n, np.inf)
        if self.split:
            lower[:] = 0.0
        elif self.form == BALL and self.norm.name == "linf":
            lower[:], upper[:] = -1.0, 1.0
        elif self.form == OBJECTIVE and self.norm.name == "linf":
            lower[-1] = 0.0
        return lower, upper

    def start(self, theta, margin: float = 1e-3) -> np.ndarray:
        """A point z with theta(z) = theta strictly inside the bounds (for IPOPT's interior point)."""
        theta = np.asarray(theta, dtype=float).reshape(-1)
        if self.split:
            pad = margin * max(1.0, float(np.max(np.abs(theta)))) if self.form == OBJECTIVE else 0.0
            return np.concatenate([np.maximum(theta, 0), np.maximum(-theta, 0)]) + pad
        if self.form == OBJECTIVE and self.norm.name == "linf":
            return np.append(theta, np.max(np.abs(theta), initial=0.0) * (1 + margin) + margin)
        return theta.copy()

    # ---- rows (>= 0) -----------------------------------------------------------------------------
    @property
    def n_rows(self) -> int:
        return self.norm.rows_count(self.form, self.n_params)

    def rows(self, z):
        return self.norm.rows_expr(self.form, z, self.n_params)

    def row_values(self, z) -> np.ndarray:
        return self.norm.rows_value(self.form, np.asarray(z, dtype=float), self.n_params)

    def row_jacobian(self, z) -> np.ndarray:
        return self.norm.rows_jacobian(self.form, np.asarray(z, dtype=float), self.n_params)

    def row_hessian(self, z, weights) -> np.ndarray:
        """sum_i w_i Hessian of row i."""
        return self.norm.rows_hessian(self.form, np.asarray(z, dtype=float), self.n_params,
                                      np.asarray(weights, dtype=float))

    def row_levels(self, z) -> np.ndarray:
        return self.norm.rows_levels(self.form, np.asarray(z, dtype=float), self.n_params)

    # ---- objective (objective form only) ---------------------------------------------------------
    def objective(self, z):
        return self.norm.objective_expr(z, self.n_params)

    def objective_value(self, z) -> float:
        return self.norm.objective_of_z(np.asarray(z, dtype=float), self.n_params)

    def objective_gradient(self, z) -> np.ndarray:
        return self.norm.objective_gradient(np.asarray(z, dtype=float), self.n_params)

    def objective_hessian(self, z) -> np.ndarray:
        return self.norm.objective_hessian(np.asarray(z, dtype=float), self.n_params)


class Norm:
    """Base class: the numpy value of the norm and the hooks of its two forms."""

    name = ""
    split_lift = False          # z = [u; v] >= 0 with theta = u - v
    objective_degree = 1.0

    @property
    def label(self) -> str:
        return self.name

    @property
    def objective_label(self) -> str:
        raise NotImplementedError

    @property
    def ball_label(self) -> str:
        return f"||theta||_{self.label[1:]} <= 1"

    @property
    def polyhedral(self) -> bool:
        return False

    def lift(self, form: str, n_params: int) -> Lift:
        if form not in (OBJECTIVE, BALL):
            raise LexmarginError(f"unknown norm form {form!r}")
        return Lift(self, form, int(n_params))

    def bind(self, model) -> Norm:
        """The norm for ``model``'s parameter layout (the norm itself unless it depends on the layout)."""
        return self

    def value(self, theta) -> float:
        raise NotImplementedError

    def objective_value(self, theta) -> float:
        """The objective form's value at theta (||theta||^2 for l2, ||theta||_p^p for lp)."""
        return self.value(theta)

    def normalize(self, theta) -> np.ndarray:
        n = self.value(theta)
        if n == 0:
            raise LexmarginError("cannot normalize theta = 0")
        return np.asarray(theta, dtype=float) / n

    def interior(self, theta, shrink: float = 0.99) -> np.ndarray:
        """theta scaled into the ball's interior (a warm start IPOPT accepts without projection)."""
        theta = np.asarray(theta, dtype=float)
        n = self.value(theta)
        return theta * (shrink / n) if n > shrink else theta

    # hooks: objective form
    def objective_expr(self, z, P):
        raise NotImplementedError

    def objective_of_z(self, z, P) -> float:
        raise NotImplementedError

    def objective_gradient(self, z, P) -> np.ndarray:
        raise NotImplementedError

    def objective_hessian(self, z, P) -> np.ndarray:
        return np.zeros((z.size, z.size))

    # hooks: rows (default: none)
    def rows_count(self, form, P) -> int:
        return 0

    def rows_expr(self, form, z, P):
        return ca.SX(0, 1) if isinstance(z, ca.SX) else ca.MX(0, 1)

    def rows_value(self, form, z, P) -> np.ndarray:
        return np.zeros(0)

    def rows_jacobian(self, form, z, P) -> np.ndarray:
        return np.zeros((0, z.size))

    def rows_hessian(self, form, z, P, w) -> np.ndarray:
        return np.zeros((z.size, z.size))

    def rows_levels(self, form, z, P) -> np.ndarray:
        return np.ones(self.rows_count(form, P))

    def to_dict(self) -> dict:
        return {"name": self.name, "label": self.label}

    def __eq__(self, other):
        return isinstance(other, Norm) and self.label == other.label

    def __hash__(self):
        return hash(self.label)

    def __repr__(self):
        return f"{type(self).__name__}()"


class L2(Norm):
    name = "l2"
    objective_degree = 2.0

    @property
    def objective_label(self) -> str:
        return "||theta||_2^2"

    @property
    def ball_label(self) -> str:
        return "||theta||_2^2 <= 1"

    def value(self, theta) -> float:
        return float(np.linalg.norm(np.asarray(theta, dtype=float)))

    def objective_value(self, theta) -> float:
        theta = np.asarray(theta, dtype=float)
        return float(theta @ theta)

    def objective_expr(self, z, P):
        return ca.dot(z, z)

    def objective_of_z(self, z, P) -> float:
        return float(z @ z)

    def objective_gradient(self, z, P) -> np.ndarray:
        return 2.0 * z

    def objective_hessian(self, z, P) -> np.ndarray:
        return 2.0 * np.eye(z.size)

    def rows_count(self, form, P) -> int:
        return 1 if form == BALL else 0

    def rows_expr(self, form, z, P):
        return 1 - ca.dot(z, z) if form == BALL else super().rows_expr(form, z, P)

    def rows_value(self, form, z, P):
        return np.array([1.0 - z @ z]) if form == BALL else np.zeros(0)

    def rows_jacobian(self, form, z, P):
        return -2.0 * z[None, :] if form == BALL else np.zeros((0, z.size))

    def rows_hessian(self, form, z, P, w):
        return -2.0 * float(w[0]) * np.eye(z.size) if form == BALL else np.zeros((z.size, z.size))


@dataclass(frozen=True, eq=False)
class PartialL2(L2):
    """||theta_R||_2 over the regularized coordinates R: every coordinate except ``free``, which the
    objective leaves out (e.g. the unregularized bias of an SVM: min ||w||^2 over theta = (w, b)).

    A seminorm, so objective form only (its ball is unbounded along the free coordinates).  The lift is
    l2's (z = theta, no bounds, no rows); the objective's Hessian is 2 diag(mask) (0 on the free
    coordinates).  ``name`` stays "l2" (the lift, the convex QP path and the working set treat it as
    l2); the label names the free coordinates, so it never equals ``L2()``.
    """

    free: tuple = ()

    def __post_init__(self):
        free = tuple(int(i) for i in self.free)
        if not free or min(free) < 0 or len(set(free)) != len(free):
            raise LexmarginError(f"PartialL2 needs distinct non-negative free coordinates; got {self.free!r}")
        object.__setattr__(self, "free", tuple(sorted(free)))

    @property
    def label(self) -> str:
        return f"l2 without theta{list(self.free)}"

    @property
    def objective_label(self) -> str:
        return f"||theta||_2^2 without theta{list(self.free)}"

    def lift(self, form: str, n_params: int) -> Lift:
        if form != OBJECTIVE:
            raise LexmarginError("PartialL2 is a seminorm: it has an objective form only (its ball is unbounded)")
        if max(self.free) >= n_params:
            raise LexmarginError(f"PartialL2: free coordinates {list(self.free)} outside {n_params} parameters")
        return super().lift(form, n_params)

    def mask(self, n: int) -> np.ndarray:
        """1.0 on the regularized coordinates, 0.0 on the free ones."""
        mask = np.ones(n)
        mask[[i for i in self.free if i < n]] = 0.0
        return mask

    def _regularized(self, n: int) -> list:
        free = set(self.free)
        return [i for i in range(n) if i not in free]

    def value(self, theta) -> float:
        theta = np.asarray(theta, dtype=float).reshape(-1)
        return float(np.linalg.norm(theta * self.mask(theta.size)))

    def objective_value(self, theta) -> float:
        theta = np.asarray(theta, dtype=float).reshape(-1)
        kept = theta * self.mask(theta.size)
        return float(kept @ kept)

    def objective_expr(self, z, P):
        kept = z[self._regularized(P)]
        return ca.dot(kept, kept)

    def objective_of_z(self, z, P) -> float:
        return self.objective_value(z)

    def objective_gradient(self, z, P) -> np.ndarray:
        return 2.0 * z * self.mask(z.size)

    def objective_hessian(self, z, P) -> np.ndarray:
        return np.diag(2.0 * self.mask(z.size))

    def to_dict(self) -> dict:
        return {**super().to_dict(), "free": list(self.free)}


class L1(Norm):
    name = "l1"
    split_lift = True

    @property
    def objective_label(self) -> str:
        return "||theta||_1"

    @property
    def polyhedral(self) -> bool:
        return True

    def value(self, theta) -> float:
        return float(np.sum(np.abs(np.asarray(theta, dtype=float))))

    def objective_expr(self, z, P):
        return ca.sum1(z)

    def objective_of_z(self, z, P) -> float:
        return float(np.sum(z))

    def objective_gradient(self, z, P) -> np.ndarray:
        return np.ones(z.size)

    def rows_count(self, form, P) -> int:
        return 1 if form == BALL else 0

    def rows_expr(self, form, z, P):
        return 1 - ca.sum1(z) if form == BALL else super().rows_expr(form, z, P)

    def rows_value(self, form, z, P):
        return np.array([1.0 - np.sum(z)]) if form == BALL else np.zeros(0)

    def rows_jacobian(self, form, z, P):
        return -np.ones((1, z.size)) if form == BALL else np.zeros((0, z.size))


class LInf(Norm):
    name = "linf"

    @property
    def objective_label(self) -> str:
        return "||theta||_inf"

    @property
    def ball_label(self) -> str:
        return "||theta||_inf <= 1"

    @property
    def polyhedral(self) -> bool:
        return True

    def value(self, theta) -> float:
        return float(np.max(np.abs(np.asarray(theta, dtype=float)), initial=0.0))

    def objective_expr(self, z, P):
        return z[P]

    def objective_of_z(self, z, P) -> float:
        return float(z[P])

    def objective_gradient(self, z, P) -> np.ndarray:
        g = np.zeros(z.size)
        g[P] = 1.0
        return g

    # objective form rows: t - theta >= 0, t + theta >= 0
    def rows_count(self, form, P) -> int:
        return 2 * P if form == OBJECTIVE else 0

    def rows_expr(self, form, z, P):
        if form != OBJECTIVE:
            return super().rows_expr(form, z, P)
        return ca.vertcat(z[P] - z[:P], z[P] + z[:P])

    def rows_value(self, form, z, P):
        return np.concatenate([z[P] - z[:P], z[P] + z[:P]]) if form == OBJECTIVE else np.zeros(0)

    def rows_jacobian(self, form, z, P):
        if form != OBJECTIVE:
            return np.zeros((0, z.size))
        J = np.zeros((2 * P, z.size))
        J[:P, :P], J[P:, :P] = -np.eye(P), np.eye(P)
        J[:, P] = 1.0
        return J

    def rows_levels(self, form, z, P):
        return np.full(self.rows_count(form, P), max(abs(float(z[P])), np.finfo(float).tiny)) \
            if form == OBJECTIVE else np.zeros(0)


@dataclass(frozen=True, eq=False)
class Lp(Norm):
    p: float = 2.0
    name = "lp"
    split_lift = True

    def __post_init__(self):
        if self.p is None or not np.isfinite(self.p) or self.p <= 1:
            raise LexmarginError(f"norm 'lp' needs a finite p > 1; got p={self.p}")

    @property
    def objective_degree(self) -> float:       # type: ignore[override]
        return float(self.p)

    @property
    def label(self) -> str:
        return f"l{self.p:g}"

    @property
    def objective_label(self) -> str:
        return f"||theta||_{self.p:g}^{self.p:g}"

    @property
    def ball_label(self) -> str:
        return f"||theta||_{self.p:g}^{self.p:g} <= 1"

    def value(self, theta) -> float:
        return float(np.sum(np.abs(np.asarray(theta, dtype=float)) ** self.p) ** (1.0 / self.p))

    def objective_value(self, theta) -> float:
        return float(np.sum(np.abs(np.asarray(theta, dtype=float)) ** self.p))

    def objective_expr(self, z, P):
        return ca.sum1(z ** self.p)

    def objective_of_z(self, z, P) -> float:
        return float(np.sum(np.maximum(z, 0) ** self.p))

    def objective_gradient(self, z, P) -> np.ndarray:
        return self.p * np.maximum(z, 0) ** (self.p - 1)

    def objective_hessian(self, z, P) -> np.ndarray:
        return np.diag(self._curvature(z))

    def _curvature(self, z) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return self.p * (self.p - 1) * np.maximum(z, 0) ** (self.p - 2)

    def rows_count(self, form, P) -> int:
        return 1 if form == BALL else 0

    def rows_expr(self, form, z, P):
        return 1 - ca.sum1(z ** self.p) if form == BALL else super().rows_expr(form, z, P)

    def rows_value(self, form, z, P):
        return np.array([1.0 - self.objective_of_z(z, P)]) if form == BALL else np.zeros(0)

    def rows_jacobian(self, form, z, P):
        return -self.objective_gradient(z, P)[None, :] if form == BALL else np.zeros((0, z.size))

    def rows_hessian(self, form, z, P, w):
        return -float(w[0]) * np.diag(self._curvature(z)) if form == BALL else np.zeros((z.size, z.size))

    def to_dict(self) -> dict:
        return {**super().to_dict(), "p": float(self.p)}


@dataclass(frozen=True, eq=False)
class PathNorm(Norm):
    """The squared l2 path norm of a two-layer net f(x) = sum_j a_j sigma(v_j . x) as an objective:

        phi(theta) = sum_j a_j^2 ||v_j||^2 = sum over input-output paths of the product of squared weights
                   = sum_j ||w_j||^2,   w_j = a_j v_j  (the paths' products; Neyshabur et al. 2015, p = 2).

    ``value(theta)`` = phi^(1/4), a gauge homogeneous of degree 1 in theta (phi is homogeneous of degree 4:
    ``objective_degree`` = 4), so that a degree-2 net's normalized margin min_n f_n / value^2 is its path-norm
    margin min_n f_n / sqrt(phi).  Objective form only (z = theta, no bounds, no rows); gradient
    (2 a_j ||v_j||^2 on a_j, 2 a_j^2 v_j on v_j) and Hessian (2 ||v_j||^2, 4 a_j v_j, 2 a_j^2 I per unit) by hand.

    phi and the margins of a relu / leaky_relu / linear-activation net are invariant under the node rescalings
    a_j -> c_j a_j, v_j -> v_j / c_j (c_j > 0), so a minimizer is never isolated: the Hessian of the Lagrangian
    vanishes along the H rescaling directions and ``second_order.strict`` is never True.  ``balance`` fixes the
    gauge |a_j| = ||v_j|| (an exact symmetry: KKT points map to KKT points with the same multipliers).

    Built unbound (``get_norm("path")``); ``bind(model)`` finds the model's two arrays shaped (H, D) (first layer
    V, rows v_j) and (H,) (output weights a) and records their flat indices.
    """

    v_index: tuple = ()        # flat indices of V (H x D, C order) in theta
    a_index: tuple = ()        # flat indices of a (H) in theta
    name = "path"
    objective_degree = 4.0

    @property
    def bound(self) -> bool:
        return bool(self.a_index)

    @property
    def width(self) -> int:
        return len(self.a_index)

    @property
    def label(self) -> str:
        return "path"

    @property
    def objective_label(self) -> str:
        return "sum_j a_j^2 ||v_j||_2^2 (squared l2 path norm)"

    def bind(self, model) -> PathNorm:
        """This norm on ``model``'s layout: its arrays of shapes (H, D) and (H,) (the only two).

        Args:
            model: a two-layer net (``two_layer``, ``deep_linear`` of depth 2, or a model whose parameters are one
                (H, D) matrix and one (H,) vector).  Only for degree-2 nets (relu, leaky_relu, linear activation) is
                phi the path norm, invariant under the node rescalings; ``path_max_margin`` refuses the others.

        Returns:
            The bound PathNorm.
        """
        index = model.unflatten(np.arange(model.n_params, dtype=float))
        arrays = [np.asarray(index[k]) for k in index]
        D = model.input_dim
        matrices = [A for A in arrays if A.ndim == 2 and A.shape[1] == D]
        vectors = [A for A in arrays if A.ndim == 1]
        if len(arrays) != 2 or len(matrices) != 1 or len(vectors) != 1 or vectors[0].size != matrices[0].shape[0]:
            raise LexmarginError(f"norm 'path' needs a two-layer net with parameters V (H x {D}) and a (H); model "
                                 f"{model.name!r} has arrays of shapes {[A.shape for A in arrays]}")
        bound = replace(self, v_index=tuple(int(i) for i in matrices[0].reshape(-1)),
                        a_index=tuple(int(i) for i in vectors[0]))
        if self.bound and (bound.v_index, bound.a_index) != (self.v_index, self.a_index):
            raise LexmarginError("this PathNorm is bound to another model's layout")
        return bound

    def lift(self, form: str, n_params: int) -> Lift:
        if form != OBJECTIVE:
            raise LexmarginError("norm 'path' has an objective form only (its ball is not convex and is unbounded "
                                 "along the node rescalings)")
        if not self.bound:
            raise LexmarginError("norm 'path' depends on the model's layout: bind(model) first "
                                 "(max_margin does it)")
        if len(self.v_index) + len(self.a_index) != n_params:
            raise LexmarginError(f"norm 'path' is bound to {len(self.v_index) + len(self.a_index)} parameters; "
                                 f"got {n_params}")
        return super().lift(form, n_params)

    def split(self, theta):
        """(V (H, D), a (H,)) of a flat theta."""
        theta = np.asarray(theta, dtype=float).reshape(-1)
        return theta[list(self.v_index)].reshape(self.width, -1), theta[list(self.a_index)]

    def join(self, V, a) -> np.ndarray:
        """The flat theta of (V, a)."""
        theta = np.empty(len(self.v_index) + len(self.a_index))
        theta[list(self.v_index)] = np.asarray(V, dtype=float).reshape(-1)
        theta[list(self.a_index)] = a
        return theta

    def paths(self, theta) -> np.ndarray:
        """w_j = a_j v_j (H, D): the path products (phi = ||w||_F^2)."""
        V, a = self.split(theta)
        return a[:, None] * V

    def balance(self, theta) -> np.ndarray:
        """theta rescaled per unit to |a_j| = ||v_j|| (units with a_j = 0 or v_j = 0 are left as they are):
        a_j -> c_j a_j, v_j -> v_j / c_j with c_j = sqrt(||v_j|| / |a_j|); phi and every margin are unchanged.

        Args:
            theta: flat parameters.

        Returns:
            The balanced flat parameters.
        """
        V, a = self.split(theta)
        r = np.linalg.norm(V, axis=1)
        alive = (r > 0) & (a != 0)
        c = np.ones_like(a)
        c[alive] = np.sqrt(r[alive] / np.abs(a[alive]))
        return self.join(V / c[:, None], a * c)

    def imbalance(self, theta) -> float:
        """max_j | |a_j| - ||v_j|| | / max_j (|a_j| + ||v_j||): 0 on the balanced gauge.

        Args:
            theta: flat parameters.

        Returns:
            The relative imbalance (0 for theta = 0).
        """
        V, a = self.split(theta)
        r = np.linalg.norm(V, axis=1)
        size = float(np.max(np.abs(a) + r, initial=0.0))
        return float(np.max(np.abs(np.abs(a) - r), initial=0.0)) / size if size > 0 else 0.0

    def objective_value(self, theta) -> float:
        V, a = self.split(theta)
        return float(np.sum(a ** 2 * np.einsum("jd,jd->j", V, V)))

    def value(self, theta) -> float:
        return self.objective_value(theta) ** 0.25

    def path_norm(self, theta) -> float:
        """sqrt(phi): the l2 path norm of Neyshabur et al. (homogeneous of degree 2 in theta).

        Args:
            theta: flat parameters.

        Returns:
            The path norm.
        """
        return self.objective_value(theta) ** 0.5

    def objective_expr(self, z, P):
        H = self.width
        D = len(self.v_index) // H
        total = 0
        for j in range(H):
            v = ca.vertcat(*[z[self.v_index[j * D + k]] for k in range(D)])
            total = total + z[self.a_index[j]] ** 2 * ca.dot(v, v)
        return total

    def objective_of_z(self, z, P) -> float:
        return self.objective_value(z)

    def objective_gradient(self, z, P) -> np.ndarray:
        V, a = self.split(z)
        s = np.einsum("jd,jd->j", V, V)
        return self.join(2.0 * (a ** 2)[:, None] * V, 2.0 * a * s)

    def objective_hessian(self, z, P) -> np.ndarray:
        V, a = self.split(z)
        H, D = V.shape
        s = np.einsum("jd,jd->j", V, V)
        vi = np.asarray(self.v_index).reshape(H, D)
        ai = np.asarray(self.a_index)
        out = np.zeros((z.size, z.size))
        for j in range(H):
            out[vi[j], vi[j]] = 2.0 * a[j] ** 2
            out[ai[j], ai[j]] = 2.0 * s[j]
            out[ai[j], vi[j]] = out[vi[j], ai[j]] = 4.0 * a[j] * V[j]
        return out

    def to_dict(self) -> dict:
        return {**super().to_dict(), "width": self.width}


@dataclass(frozen=True, eq=False)
class BalancedPathNorm(PathNorm):
    """The path norm's NLP with its gauge fixed: objective phi(theta) + rho sum_j (a_j^2 - ||v_j||^2)^2.

    The penalty is constant-free along nothing the problem sees: phi and every margin are invariant under the node
    rescalings, so at a KKT point of this NLP its derivative along each live unit's orbit, d/dc of
    rho (c^2 a_j^2 - ||v_j||^2 / c^2)^2 at c = 1, vanishes, which forces a_j^2 = ||v_j||^2; there the penalty and its
    gradient are 0.  Its KKT points are therefore exactly the path-norm problem's KKT points in the balanced gauge
    (dead units: a_j = 0 and v_j = 0), with the same multipliers, and the orbit directions get curvature 8 rho a_j^2
    (||theta||^2 in total), so a solver does not drift along them (without it IPOPT ends at |a_j| / ||v_j|| ~ 1e-10,
    where the relative stationarity residual, dominated by the a-coordinates, no longer sees the v-coordinates).
    ``objective_value`` / ``value`` stay phi's (the certificate reports phi and the path-norm margin); the NLP's
    objective (``objective_of_z``, gradient, Hessian, CasADi) includes the penalty.
    """

    rho: float = 0.25

    @property
    def label(self) -> str:
        return "path"

    @property
    def objective_label(self) -> str:
        return f"sum_j a_j^2 ||v_j||_2^2 + {self.rho:g} sum_j (a_j^2 - ||v_j||^2)^2 (path norm, balanced gauge)"

    def objective_expr(self, z, P):
        H = self.width
        D = len(self.v_index) // H
        total = super().objective_expr(z, P)
        for j in range(H):
            v = ca.vertcat(*[z[self.v_index[j * D + k]] for k in range(D)])
            total = total + self.rho * (z[self.a_index[j]] ** 2 - ca.dot(v, v)) ** 2
        return total

    def objective_of_z(self, z, P) -> float:
        V, a = self.split(z)
        g = a ** 2 - np.einsum("jd,jd->j", V, V)
        return self.objective_value(z) + self.rho * float(g @ g)

    def objective_gradient(self, z, P) -> np.ndarray:
        V, a = self.split(z)
        g = a ** 2 - np.einsum("jd,jd->j", V, V)
        return super().objective_gradient(z, P) + self.rho * self.join(-4.0 * g[:, None] * V, 4.0 * g * a)

    def objective_hessian(self, z, P) -> np.ndarray:
        V, a = self.split(z)
        H, D = V.shape
        g = a ** 2 - np.einsum("jd,jd->j", V, V)
        vi = np.asarray(self.v_index).reshape(H, D)
        ai = np.asarray(self.a_index)
        out = super().objective_hessian(z, P)
        r = self.rho
        for j in range(H):
            out[np.ix_(vi[j], vi[j])] += r * (-4.0 * g[j] * np.eye(D) + 8.0 * np.outer(V[j], V[j]))
            out[ai[j], ai[j]] += r * (4.0 * g[j] + 8.0 * a[j] ** 2)
            out[ai[j], vi[j]] += -8.0 * r * a[j] * V[j]
            out[vi[j], ai[j]] += -8.0 * r * a[j] * V[j]
        return out

    def to_dict(self) -> dict:
        return {**super().to_dict(), "gauge": "balanced", "rho": float(self.rho)}


# "path" is the gauge-fixed form: the plain PathNorm's NLP lets a solver drift along the node rescalings to points
# whose relative residuals no longer see the v-coordinates (docs/path_norm.md); pass PathNorm() for the plain one
NORMS = {"l2": L2, "l1": L1, "linf": LInf, "lp": Lp, "path": BalancedPathNorm}


def get_norm(norm="l2", p: float | None = None) -> Norm:
    """A Norm from its name ("l2", "l1", "linf", "lp" with p) or a Norm instance.

    Args:
        norm: a registered name (``NORMS``; "path" comes unbound: ``PathNorm.bind(model)``) or a Norm (returned
            as it is).
        p: the exponent of "lp" (> 1).

    Returns:
        The Norm.
    """
    if isinstance(norm, Norm):
        if p is not None:
            raise LexmarginError("p applies to a norm name, not to a Norm instance")
        return norm
    if norm not in NORMS:
        raise LexmarginError(f"unknown norm {norm!r}; choose one of {tuple(NORMS)}")
    if norm == "lp":
        return Lp(p)
    if p is not None:
        raise LexmarginError(f"p is only used by norm 'lp' (got norm={norm!r}, p={p})")
    return NORMS[norm]()
