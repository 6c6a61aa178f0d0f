"""The NLP layer: one problem form, one solver interface, one certificate.

``nlp.NLP`` (the form every problem is written in) -> ``ipopt.IpoptSolver`` (IPOPT through CasADi,
statuses and multiplier signs mapped once) -> ``finish.finish`` (exact active-set KKT solve) ->
``certify.certify`` (relative residuals, active set, support, LICQ, second order recomputed in numpy)
-> ``certificate.assemble`` (the frozen ``Certificate``).  ``norms`` gives every norm as objective and
as ball; ``options`` the shared ``SolveOptions`` and ``Tolerances``; ``status`` the ``Status`` enum.
"""

from .certificate import Certificate, Diagnostics, RowSummary, SolverInfo, jsonable
from .certify import LICQ, KKTReport, Residuals, SecondOrder, certify
from .finish import FinishInfo
from .nlp import NLP, Point, Rows
from .norms import NORMS, Norm, get_norm
from .options import SolveOptions, Tolerances
from .status import SUCCESS, Status

__all__ = [
           "LICQ",
           "NLP",
           "NORMS",
           "SUCCESS",
           "Certificate",
           "Diagnostics",
           "FinishInfo",
           "KKTReport",
           "Norm",
           "Point",
           "Residuals",
           "RowSummary",
           "Rows",
           "SecondOrder",
           "SolveOptions",
           "SolverInfo",
           "Status",
           "Tolerances",
           "certify",
           "get_norm",
           "jsonable",
]
