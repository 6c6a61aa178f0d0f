"""lexmargin: the implicit bias of training, solved exactly and simulated fast.

Declare a model once (``Model``/``Block`` with ``lexmargin.ops``), then solve the max-margin,
path, lexicographic and depth-sensitive problems with IPOPT (through CasADi) and get
independently-checked certificates, or run batched gradient methods in numpy.
"""

from . import ops
from .data import Dataset, as_dataset
from .errors import (DataError, HomogeneityError, LexmarginError, ModelError, NotSeparableError,
                     SolverError)
from .homogeneity import check_homogeneity
from .loading import load_model
from .maxmargin import MaxMarginProblem, WorkingSetOptions, max_margin
from .model import Block, Model, Params

__version__ = "0.1.0"

__all__ = [
    "ops", "Dataset", "as_dataset", "Block", "Model", "Params", "load_model", "check_homogeneity",
    "max_margin", "MaxMarginProblem", "WorkingSetOptions",
    "LexmarginError", "DataError", "ModelError", "HomogeneityError", "NotSeparableError", "SolverError",
]
