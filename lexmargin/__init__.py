"""lexmargin: the implicit bias of training, solved exactly and simulated fast.

Declare a model once (``Model``/``Block`` with ``lexmargin.ops``), then solve the max-margin,
path, lexicographic and depth-sensitive problems with IPOPT (through CasADi) and get
independently-checked certificates, run batched gradient methods in numpy (``lexmargin.numeric``)
and write stationarity reports (``lexmargin.report``).
"""

from .modeling import ops
from .modeling.data import Dataset, as_dataset
from .errors import (DataError, HomogeneityError, LexmarginError, ModelError, NotSeparableError,
                     SolverError)
from .modeling.homogeneity import check_homogeneity
from .modeling.loading import load_model
from .depth import depth_gamma_path, depth_sensitive, svm_with_bias
from .lexicographic import lexicographic_max_margin
from .maxmargin import MaxMarginProblem, WorkingSetOptions, max_margin
from .modeling.model import Block, Model, Params
from .paths import constrained_path, margin_path, regularization_path

__version__ = "0.1.0"

__all__ = [
    "ops", "Dataset", "as_dataset", "Block", "Model", "Params", "load_model", "check_homogeneity",
    "max_margin", "MaxMarginProblem", "WorkingSetOptions", "margin_path", "constrained_path",
    "regularization_path", "lexicographic_max_margin", "depth_sensitive", "depth_gamma_path", "svm_with_bias",
    "LexmarginError", "DataError", "ModelError", "HomogeneityError", "NotSeparableError", "SolverError",
]
