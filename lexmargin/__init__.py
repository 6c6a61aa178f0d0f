"""lexmargin: the implicit bias of training, solved exactly and simulated fast.

Declare a model once (``Model``/``Block`` with ``lexmargin.ops``), then solve the max-margin,
path, lexicographic and depth-sensitive problems with IPOPT (through CasADi) and get certificates
whose numbers are recomputed independently of the solver (``Certificate``, docs/certificates.md),
run batched gradient methods in numpy (``lexmargin.numeric``) and write stationarity reports
(``lexmargin.report``).

Layers (imports point down only): ``problems`` (max-margin, paths, lexicographic, depth) and
``interop`` (Pyomo) build NLPs on ``nlp`` (NLP form, IPOPT, exact finish, certify, norms, options,
statuses), which builds on ``modeling`` (ops, Model, Dataset, homogeneity, activation regions).
"""

from .errors import (DataError, HomogeneityError, LexmarginError, ModelError, NoSeparatingPointError,
                     NotSeparableError, SolverError)
from .modeling import ops
from .modeling.data import Dataset, as_dataset
from .modeling.homogeneity import check_homogeneity
from .modeling.loading import load_model
from .modeling.model import Block, Model, Params
from .nlp import NORMS, Certificate, SolveOptions, Status, Tolerances, get_norm
from .problems.depth import depth_gamma_path, depth_sensitive, svm_with_bias
from .problems.lexicographic import lexicographic_max_margin
from .problems.maxmargin import MaxMarginProblem, WorkingSetOptions, max_margin
from .problems.paths import constrained_path, margin_path, regularization_path

__version__ = "0.1.0"

__all__ = [
    "ops", "Dataset", "as_dataset", "Block", "Model", "Params", "load_model", "check_homogeneity",
    "Certificate", "SolveOptions", "Status", "Tolerances", "NORMS", "get_norm",
    "max_margin", "MaxMarginProblem", "WorkingSetOptions", "margin_path", "constrained_path",
    "regularization_path", "lexicographic_max_margin", "depth_sensitive", "depth_gamma_path", "svm_with_bias",
    "LexmarginError", "DataError", "ModelError", "HomogeneityError", "NotSeparableError", "NoSeparatingPointError",
    "SolverError",
]
