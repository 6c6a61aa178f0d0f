"""Clarke stationarity of an NLP whose margin rows have kinks (relu / leaky_relu nets).

At a point z of  min phi(z)  s.t.  c_i(z) >= 0, h_j(z) = 0,  let some inequality rows i (margin rows
f_n - 1 of samples with units at a kink) be nonsmooth.  Each such row is smooth near z within every sign
pattern p of its kinked units, with gradient G_i(p); its Clarke subdifferential is the convex hull of the
gradients of the realizable patterns (limits of gradients from nearby points where it is differentiable):

    d_C c_i(z) = conv{ G_i(p) : p realizable }          (``regions.RegionMargins.vertices``).

Clarke-KKT (Lyu & Li 2020, the KKT notion for nonsmooth homogeneous nets) asks for lambda >= 0, mu and
one Clarke element g_i in d_C c_i(z) per row with

    grad phi = sum_i lambda_i g_i + sum_j mu_j grad h_j,     lambda_i c_i = 0,  c >= 0,  h = 0.

Writing lambda_i g_i = sum_p w_{i,p} G_i(p) with w >= 0 (lambda_i = sum_p w_{i,p}) makes stationarity
linear: one nonnegative least-squares problem over the columns G_i(p) of the kinked rows and the
gradients of the smooth candidate rows (active rows; equalities split into +-).  The chosen element of
row i is g_i = sum_p w_{i,p} G_i(p) / lambda_i, and its slopes s_{i,k} = sum_p w_{i,p} p_k / lambda_i
(relu'(0) in [0, 1], leaky_relu'(0) in [alpha, 1]).  The certificate then recomputes every residual,
the active set, the support and LICQ with these gradients in place of the rows' (``certify`` with the
point's Jacobian replaced): the decision uses exactly the formulas of every other certificate.

The columns are exactly the Clarke subdifferential of each row, so a passing check certifies a
Clarke-KKT point (to the certificate's tolerances).  The multipliers are the NNLS choice, which minimizes
the absolute 2-norm stationarity residual over all choices; a failing check says that this best choice
leaves a residual (reported), not more.  When a sample has too many kinks to enumerate its patterns, the
check is ``undecided`` and never certifies.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .certify import TINY, KKTReport, certify, unit_rows
from .nlp import NLP, extend, split_extended_multipliers
from .nnls import nnls
from .options import Tolerances


@dataclass(frozen=True)
class KinkedRow:
    """The Clarke columns of one nonsmooth NLP row: the gradients (in z) of its realizable patterns.

    ``row``: the NLP row; ``slopes`` (V, k): each pattern's slopes of the row's k kinked units;
    ``columns`` (V, n): the row's gradient in each; ``units``: labels of the kinked units (reported);
    ``complete``: False when the patterns were too many to enumerate (the check is then undecided).
    """

    row: int
    units: tuple
    slopes: np.ndarray
    columns: np.ndarray
    complete: bool = True


@dataclass(frozen=True)
class ClarkeCheck:
    """Outcome of the Clarke-KKT check: the report with the chosen Clarke gradients, and the choices.

    ``report``: certify's KKTReport at z with the kinked rows' gradients replaced by the chosen elements
    and the NNLS multipliers; ``slopes``: per kinked row with a multiplier, the chosen slope of each unit;
    ``kinks``: kinked units on candidate rows; ``undecided``: rows whose patterns were not enumerated.
    """

    report: KKTReport
    slopes: tuple
    kinks: int
    kinked_rows: int
    undecided: int

    def holds(self, tol: Tolerances) -> bool:
        return self.undecided == 0 and self.report.kkt_met(tol)

    def summary(self) -> dict:
        return {"kinks": self.kinks, "kinked_rows": self.kinked_rows, "undecided_rows": self.undecided,
                "residuals": self.report.residuals.to_dict(), "slopes": list(self.slopes)}


def clarke_check(nlp: NLP, z, kinked: dict[int, KinkedRow], tolerances: Tolerances | None = None) -> ClarkeCheck:
    """Decide Clarke-KKT at z (see the module docstring).

    Args:
        nlp: the problem with its kinked rows evaluated in one pattern (its Jacobian rows are replaced).
        z: the point.
        kinked: NLP row -> KinkedRow for the nonsmooth rows (rows not listed are smooth at z).
        tolerances: the certificate's tolerances.
    Returns:
        A ClarkeCheck; ``holds(tol)`` is the verdict.
    """
    tol = tolerances or Tolerances()
    z = np.asarray(z, dtype=float)
    point = nlp.evaluate(z)
    ext = extend(nlp, point, z)
    candidates = np.nonzero(ext.equality | (ext.values / np.maximum(ext.levels, TINY) <= tol.active))[0]
    lam, elements = clarke_choice(ext.jacobian, candidates, kinked, ext.equality, ext.point.gradient)
    jacobian = point.jacobian.copy()
    slopes = []
    for row, (element, chosen) in elements.items():
        jacobian[row] = element
        slopes.append({"row": int(row), "units": [list(u) for u in kinked[row].units],
                       "slopes": [float(s) for s in chosen]})
    report = certify(nlp, z, *split_extended_multipliers(nlp, lam), tolerances=tol,
                     point=replace(point, jacobian=jacobian))
    on_candidates = [kinked[r] for r in candidates.tolist() if r in kinked]
    return ClarkeCheck(report, tuple(slopes), sum(len(e.units) for e in on_candidates), len(on_candidates),
                       sum(not e.complete for e in on_candidates))


def clarke_choice(jacobian, candidates, kinked: dict[int, KinkedRow], equality, gradient):
    """The NNLS choice of the module docstring on the ``candidates`` rows of ``jacobian`` (kinked rows by their
    pattern columns): (lambda, one per row of ``jacobian``; elements: kinked row with lambda_i > 0 -> (its chosen
    Clarke element g_i, the slopes of its units in it, padded to the most units of any kinked row)) fitting
    ``gradient`` = sum_i lambda_i g_i, lambda >= 0 (free on ``equality`` rows)."""
    columns, owners, choices = _columns(jacobian, candidates, kinked)
    weights = _nnls_weights(columns, np.asarray(equality, dtype=bool)[owners], gradient)
    lam = np.zeros(np.shape(jacobian)[0])
    np.add.at(lam, owners, weights)
    elements = {}
    for row, entry in kinked.items():
        mine = owners == row
        if lam[row] > 0 and entry.complete:
            elements[row] = (weights[mine] @ columns[mine] / lam[row], weights[mine] @ choices[mine] / lam[row])
    return lam, elements


def _columns(jacobian, candidates, kinked):
    """The NNLS columns: each candidate row's gradient, or its pattern gradients when it is kinked;
    the row owning each column and, for kinked rows, the pattern's slopes (else empty)."""
    columns, owners, choices = [], [], []
    width = max((e.slopes.shape[1] for e in kinked.values()), default=0)
    for row in candidates:
        entry = kinked.get(int(row))
        if entry is None or not entry.complete:
            columns.append(jacobian[row][None])
            owners.append(row)
            choices.append(np.zeros((1, width)))
            continue
        columns.append(entry.columns)
        owners.extend([row] * entry.columns.shape[0])
        padded = np.zeros((entry.columns.shape[0], width))
        padded[:, :entry.slopes.shape[1]] = entry.slopes
        choices.append(padded)
    if not columns:
        return np.zeros((0, jacobian.shape[1])), np.zeros(0, dtype=int), np.zeros((0, width))
    return np.vstack(columns), np.asarray(owners, dtype=int), np.vstack(choices)


def _nnls_weights(columns, equality, gradient) -> np.ndarray:
    """w >= 0 (free for equality rows, split into +-) minimizing ||g - C^T w|| on unit-normalized columns."""
    if columns.shape[0] == 0:
        return np.zeros(0)
    norms = np.linalg.norm(columns, axis=1)
    norms = np.where(norms > 0, norms, 1.0)
    units = unit_rows(columns)
    system = np.hstack([units.T, -units[equality].T])
    scale = max(float(np.max(np.abs(gradient), initial=0.0)), TINY)
    coef, _ = nnls(system, gradient / scale, maxiter=50 * max(system.shape[1], 10))
    w = coef[:columns.shape[0]].copy()
    w[np.nonzero(equality)[0]] -= coef[columns.shape[0]:]
    return w * scale / norms


__all__ = ["ClarkeCheck", "KinkedRow", "clarke_check", "clarke_choice"]
