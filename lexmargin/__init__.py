"""lexmargin: the implicit bias of training, solved exactly and simulated fast.

Declare a model once (``Model``/``Block`` with ``lexmargin.ops``), then solve the max-margin,
path, lexicographic and depth-sensitive problems with IPOPT (through CasADi) and get certificates
whose numbers are recomputed independently of the solver (``Certificate``, docs/certificates.md),
run batched gradient methods in numpy (``lexmargin.numeric``) and write stationarity reports
(``lexmargin.report``).

Layers (imports point down only): ``problems`` (max-margin, paths, lexicographic, depth) and
``interop`` (Pyomo; PyTorch MLPs as models: ``from_torch``) build NLPs on ``nlp`` (NLP form, IPOPT, exact finish, certify, norms, options,
statuses), which builds on ``modeling`` (ops, Model, Dataset, homogeneity, activation regions).
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING

from .errors import (
    ClassCountError,
    DataError,
    FileInUseError,
    HomogeneityError,
    LabelError,
    LexmarginError,
    ModelError,
    NoSeparatingPointError,
    NotSeparableError,
    SolverError,
)

__version__ = "0.1.0"

# Library code logs to loggers under "lexmargin" (lexmargin.progress) and never prints; nothing shows
# unless the application configures logging or a call passes verbose=.
logging.getLogger(__name__).addHandler(logging.NullHandler())

# Public names and the module that defines each.  They are imported on first use (PEP 562), so
# ``import lexmargin`` stays cheap: CasADi, SciPy and SymPy load only when a solve or a formula needs them.
_LAZY = {
    "ops": ".modeling.ops",
    "Dataset": ".modeling.data", "as_dataset": ".modeling.data",
    "check_homogeneity": ".modeling.homogeneity",
    "load_model": ".modeling.loading",
    "Block": ".modeling.model", "Model": ".modeling.model", "Params": ".modeling.model",
    "MarginRows": ".modeling.multiclass", "multiplier_matrix": ".modeling.multiclass",
    "NORMS": ".nlp", "Certificate": ".nlp", "SolveOptions": ".nlp", "Status": ".nlp", "Tolerances": ".nlp",
    "get_norm": ".nlp",
    "depth_gamma_path": ".problems.depth", "depth_sensitive": ".problems.depth", "svm_with_bias": ".problems.depth",
    "lexicographic_max_margin": ".problems.lexicographic",
    "MaxMarginProblem": ".problems.maxmargin", "WorkingSetOptions": ".problems.maxmargin",
    "max_margin": ".problems.maxmargin",
    "constrained_path": ".problems.paths", "margin_path": ".problems.paths",
    "regularization_path": ".problems.paths",
    "certify_pyomo": ".interop.pyomo",
    "from_arrays": ".interop.torch", "from_torch": ".interop.torch", "to_state_dict": ".interop.torch",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lexmargin' has no attribute {name!r}")
    loaded = importlib.import_module(module, __name__)
    value = loaded if name == "ops" else getattr(loaded, name)
    globals()[name] = value          # later lookups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


# SolverFactory('lexmargin') for Pyomo: registered now if Pyomo is imported, else by a small import hook when it
# is (interop/pyomo_plugin.py; neither imports Pyomo)
from .interop.pyomo_plugin import install as _install_pyomo_plugin

_install_pyomo_plugin()


if TYPE_CHECKING:  # what static analysis sees: the same names, imported eagerly
    from .interop.pyomo import certify_pyomo
    from .interop.torch import from_arrays, from_torch, to_state_dict
    from .modeling import ops
    from .modeling.data import Dataset, as_dataset
    from .modeling.homogeneity import check_homogeneity
    from .modeling.loading import load_model
    from .modeling.model import Block, Model, Params
    from .modeling.multiclass import MarginRows, multiplier_matrix
    from .nlp import NORMS, Certificate, SolveOptions, Status, Tolerances, get_norm
    from .problems.depth import depth_gamma_path, depth_sensitive, svm_with_bias
    from .problems.lexicographic import lexicographic_max_margin
    from .problems.maxmargin import MaxMarginProblem, WorkingSetOptions, max_margin
    from .problems.paths import constrained_path, margin_path, regularization_path

__all__ = [
                     "NORMS",
                     "Block",
                     "Certificate",
                     "ClassCountError",
                     "DataError",
                     "Dataset",
                     "FileInUseError",
                     "HomogeneityError",
                     "LabelError",
                     "LexmarginError",
                     "MarginRows",
                     "MaxMarginProblem",
                     "Model",
                     "ModelError",
                     "NoSeparatingPointError",
                     "NotSeparableError",
                     "Params",
                     "SolveOptions",
                     "SolverError",
                     "Status",
                     "Tolerances",
                     "WorkingSetOptions",
                     "as_dataset",
                     "certify_pyomo",
                     "check_homogeneity",
                     "constrained_path",
                     "depth_gamma_path",
                     "depth_sensitive",
                     "from_arrays",
                     "from_torch",
                     "get_norm",
                     "lexicographic_max_margin",
                     "load_model",
                     "margin_path",
                     "max_margin",
                     "multiplier_matrix",
                     "ops",
                     "regularization_path",
                     "svm_with_bias",
                     "to_state_dict",
]
