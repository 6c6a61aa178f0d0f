"""The one problem form every lexmargin problem is written in.

    min_z  phi(z)   s.t.   c_i(z) >= 0  (inequality rows),   h_j(z) = 0  (equality rows),
                           lower <= z <= upper,

with a map z -> theta and, for every block of rows, its kind ("margin" of sample n, "ball",
"region_sign", "fixed_margin", ...).  An ``NLP`` carries

* ``expressions(z, p) -> (phi, rows)``: CasADi expressions, used only to build the IPOPT solver;
* ``evaluate(z, p) -> Point``: numpy values, gradient, Jacobian and row levels recomputed from the
  model's own functions, used by the certificate (never read from the solver);
* ``hessian(z, p, multipliers)``: the Hessian of the Lagrangian phi - sum_i lambda_i c_i, used by the
  exact finish and the second-order check (optional);
* ``parameters``: the number of CasADi parameters p (paths re-solve one NLP along a schedule).

Multiplier convention (one for everything): grad phi = sum_i lambda_i grad c_i + sum_j mu_j grad h_j
+ lower-bound multipliers - upper-bound multipliers, lambda >= 0.  Bounds become rows of kind
"lower_bound" (z_i - lower_i >= 0) and "upper_bound" (upper_i - z_i >= 0) in the certificate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import casadi as ca
import numpy as np

LOWER_BOUND, UPPER_BOUND = "lower_bound", "upper_bound"


@dataclass(frozen=True)
class Rows:
    """A block of rows of one kind.  ``samples``: the sample of each row (margin-like rows)."""

    kind: str
    size: int
    equality: bool = False
    samples: np.ndarray | None = None

    def __post_init__(self):
        if self.samples is not None:
            samples = np.asarray(self.samples, dtype=int).reshape(-1)
            if samples.size != self.size:
                raise ValueError(f"rows {self.kind!r}: {samples.size} sample indices for {self.size} rows")
            object.__setattr__(self, "samples", samples)


@dataclass(frozen=True, eq=False)
class Point:
    """An NLP evaluated in numpy at z: rows in block order (bounds not included).

    ``levels``: the natural scale of each row (its slack is judged relative to it).
    ``gradient_scale``: the size of the terms that make up grad phi (elementwise, >= |grad phi|);
    ``jacobian_scale``: the same for the rows' gradients (m x n, >= |jacobian|; None: the entries are not sums that
    cancel).  Each component of the stationarity balance is measured against these terms.
    """

    objective: float
    gradient: np.ndarray
    values: np.ndarray
    jacobian: np.ndarray
    levels: np.ndarray
    gradient_scale: np.ndarray | None = None
    jacobian_scale: np.ndarray | None = None

    def __post_init__(self):
        m, n = self.values.size, self.gradient.size
        if self.jacobian.shape != (m, n):
            raise ValueError(f"jacobian has shape {self.jacobian.shape}; expected {(m, n)}")
        if self.levels.shape != (m,):
            raise ValueError(f"levels have shape {self.levels.shape}; expected {(m,)}")
        if self.jacobian_scale is not None and self.jacobian_scale.shape != (m, n):
            raise ValueError(f"jacobian_scale has shape {self.jacobian_scale.shape}; expected {(m, n)}")


@dataclass(frozen=True, eq=False)
class NLP:
    name: str
    n: int
    rows: tuple[Rows, ...]
    lower: np.ndarray
    upper: np.ndarray
    expressions: Callable
    evaluate: Callable[..., Point]
    theta: Callable[[np.ndarray], np.ndarray]
    hessian: Callable | None = None
    parameters: int = 0
    symbol: type = ca.SX
    hessian_diagonal: bool = False      # hessian() returns the diagonal only (and the constraint
    #                                   # rows are linear): the finish uses a Schur complement
    linear_margins: bool = False        # the sample rows are linear in z (a model linear in its parameters): the
    #                                   # finish (Newton on an LP or a QCQP) always runs on IPOPT's point
    options: dict = field(default_factory=dict)   # IPOPT options the problem needs (e.g. Mehrotra)
    x_scale: np.ndarray | None = None   # IPOPT solves in u = z / x_scale (powers of two: exact)
    exact_values: Callable | None = None   # (z, rows) -> (values, done): rows' values exactly rounded where it can
    #                                     # (done), for the certificate's rows whose rounding matters (``certify``)

    def __post_init__(self):
        lower = np.broadcast_to(np.asarray(self.lower, dtype=float), (self.n,)).copy()
        upper = np.broadcast_to(np.asarray(self.upper, dtype=float), (self.n,)).copy()
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)
        object.__setattr__(self, "rows", tuple(self.rows))

    @property
    def m(self) -> int:
        return sum(r.size for r in self.rows)

    @cached_property
    def equality_mask(self) -> np.ndarray:
        return np.concatenate([np.full(r.size, r.equality) for r in self.rows]) if self.rows else np.zeros(0, bool)

    def block(self, kind: str) -> slice:
        """Row positions of the first block of this kind."""
        start = 0
        for r in self.rows:
            if r.kind == kind:
                return slice(start, start + r.size)
            start += r.size
        raise KeyError(kind)

    def kinds(self) -> np.ndarray:
        return self._extended_layout[0][:self.m]

    def samples(self) -> np.ndarray:
        """Sample index of every row (-1 where the row is not a sample's)."""
        return self._extended_layout[1][:self.m]

    def bound_rows(self):
        """(positions with a finite lower bound, positions with a finite upper bound)."""
        return self._bounds

    @cached_property
    def _bounds(self):
        return np.nonzero(np.isfinite(self.lower))[0], np.nonzero(np.isfinite(self.upper))[0]

    @cached_property
    def _extended_layout(self):
        """Row kinds, samples, equality flags, bound variables and (kind, start, stop) blocks of the extended rows
        (static per NLP)."""
        lo, up = self._bounds
        blocks, start = [], 0
        for kind, size in [(r.kind, r.size) for r in self.rows] + [(LOWER_BOUND, lo.size), (UPPER_BOUND, up.size)]:
            blocks.append((kind, start, start + size))
            start += size
        samples = [r.samples if r.samples is not None else np.full(r.size, -1) for r in self.rows]
        samples.append(np.full(lo.size + up.size, -1))
        equality = np.concatenate([self.equality_mask, np.zeros(lo.size + up.size, dtype=bool)])
        variables = np.concatenate([np.full(self.m, -1), lo, up]).astype(int)
        return (_labels(blocks, start), np.concatenate(samples).astype(int), equality, variables, tuple(blocks))


def _labels(blocks, total: int) -> np.ndarray:
    """An object array holding each block's kind over its rows, by slice assignment (np.full with an object dtype
    takes some 20 times longer: 4 ms per 10^5 rows)."""
    labels = np.empty(total, dtype=object)
    for kind, start, stop in blocks:
        labels[start:stop] = kind
    return labels


@dataclass(frozen=True, eq=False)
class Extended:
    """An NLP point with the bounds appended as rows (the form the certificate works on)."""

    point: Point
    z: np.ndarray
    values: np.ndarray
    jacobian: np.ndarray
    levels: np.ndarray
    equality: np.ndarray
    kinds: np.ndarray
    samples: np.ndarray
    variables: np.ndarray     # the variable of each bound row (-1 for the NLP's own rows)
    blocks: tuple             # (kind, start, stop) of every block of rows, in order (the NLP's, then the bounds)

    @property
    def jacobian_scale(self) -> np.ndarray | None:
        """``Point.jacobian_scale`` over the extended rows (a bound row's entries are its own), or None."""
        scale = self.point.jacobian_scale
        if scale is None:
            return None
        m = scale.shape[0]
        return scale if m == self.jacobian.shape[0] else np.vstack([scale, np.abs(self.jacobian[m:])])

    def kind_names(self) -> tuple[str, ...]:
        """The kinds that have rows, in order of their first row."""
        return tuple(dict.fromkeys(kind for kind, start, stop in self.blocks if stop > start))

    def kind_mask(self, kind: str) -> np.ndarray:
        """The rows of one kind (from the blocks: no comparison of the object array row by row)."""
        mask = np.zeros(self.kinds.size, dtype=bool)
        for name, start, stop in self.blocks:
            if name == kind:
                mask[start:stop] = True
        return mask


def extend(nlp: NLP, point: Point, z) -> Extended:
    """Append finite bounds as rows z_i - lower_i >= 0 and upper_i - z_i >= 0."""
    z = np.asarray(z, dtype=float)
    lo, up = nlp.bound_rows()
    kinds, samples, equality, variables, blocks = nlp._extended_layout
    if lo.size + up.size == 0:
        return Extended(point, z, point.values, point.jacobian, point.levels, equality, kinds, samples, variables,
                        blocks)
    scale = max(float(np.max(np.abs(z), initial=0.0)), np.finfo(float).tiny)
    values = np.concatenate([point.values, z[lo] - nlp.lower[lo], nlp.upper[up] - z[up]])
    jacobian = np.vstack([point.jacobian, _unit_rows(lo, nlp.n, 1.0), _unit_rows(up, nlp.n, -1.0)])
    levels = np.concatenate([point.levels, np.maximum(np.abs(nlp.lower[lo]), scale),
                             np.maximum(np.abs(nlp.upper[up]), scale)])
    return Extended(point, z, values, jacobian, levels, equality, kinds, samples, variables, blocks)


def _unit_rows(columns, n: int, sign: float) -> np.ndarray:
    rows = np.zeros((columns.size, n))
    rows[np.arange(columns.size), columns] = sign
    return rows


def split_extended_multipliers(nlp: NLP, lam):
    """Multipliers over the extended rows (NLP rows, then bounds) as (rows, lower, upper): the inverse of
    appending ``split_bound_multipliers`` to the rows' multipliers."""
    lam = np.asarray(lam, dtype=float)
    m, (lo, up) = nlp.m, nlp.bound_rows()
    lower, upper = np.zeros(nlp.n), np.zeros(nlp.n)
    lower[lo], upper[up] = lam[m:m + lo.size], lam[m + lo.size:]
    return lam[:m], lower, upper


def split_bound_multipliers(nlp: NLP, lower_multipliers, upper_multipliers) -> np.ndarray:
    """Bound multipliers (one per variable each) as the extended rows' multipliers."""
    lo, up = nlp.bound_rows()
    return np.concatenate([np.asarray(lower_multipliers, dtype=float)[lo],
                           np.asarray(upper_multipliers, dtype=float)[up]])


def two_product(a, b) -> tuple[np.ndarray, np.ndarray]:
    """(p, e) with p = fl(a b) and p + e = a b exactly (Dekker's product with Veltkamp's split; non-finite where a
    product or a split overflows, beyond ~1e300)."""
    def split(x):
        c = 134217729.0 * x                     # 2^27 + 1
        high = c - (c - x)
        return high, x - high

    with np.errstate(over="ignore", invalid="ignore"):
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        p = a * b
        (ah, al), (bh, bl) = split(a), split(b)
        return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def exact_affine_values(J, z, offsets) -> tuple[np.ndarray, np.ndarray]:
    """(values, done): J_i z + sum(offsets_i) exactly rounded for each row (every product exact, ``two_product``; one
    ``math.fsum`` per row), done where every part is finite.  ``offsets``: (rows, m) constant parts, kept apart so
    that their own sum is not rounded first (a margin's c_n and its -1)."""
    import math

    J, z = np.asarray(J, dtype=float), np.asarray(z, dtype=float)
    offsets = np.asarray(offsets, dtype=float).reshape(J.shape[0], -1)
    p, e = two_product(J, z[None, :])
    parts = np.hstack([p, e, offsets])
    done = np.all(np.isfinite(parts), axis=1)
    values = np.array([math.fsum(row) if ok else np.nan for row, ok in zip(parts, done)])
    return values, done
