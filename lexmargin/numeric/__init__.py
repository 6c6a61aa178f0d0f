"""Batched numpy gradient methods for the implicit bias of training (no PyTorch).

Small pure pieces, composed by ``train``:

* kernels (``kernels``): batched margins f (R, N) and vector-Jacobian products for R runs at once;
  ``LinearKernel``, ``SVMBiasKernel``, ``LayeredNetKernel``/``DeepLinearKernel``, ``SumKernel``,
  ``CasadiKernel`` (any declared Model), and ``kernel_for(model, data)`` building the kernel a model's family
  declares (``registry``: ``register_kernel``; a fallback to CasADi warns, ``KernelFallbackWarning``);
* backends (``backend``): the generic path computes in the namespace of theta -- numpy by default, torch, CuPy or
  any array-API library on the same code (``BackendMismatchError`` for mixed libraries; docs/backends.md);
* losses in log space (``ExponentialLoss``, ``LogisticLoss``);
* step rules (``steps``: optax-style ``init`` / ``update(direction, state, log_loss, params) -> (delta, state)``;
  ``Constant``, ``Normalized``, ``Adaptive``, ``AdaGrad``, ``Momentum``; a new one subclasses ``StepRule`` and is
  registered by ``register_rule`` for exact resume), minibatch SGD and Path-SGD (p = 2);
* geometries (``geometry``): ``Steepest(geometry, rule)`` runs a step rule as steepest descent in l1 (greedy
  coordinate descent, O(N) margin updates on a linear kernel), linf (sign descent) or lp, or as mirror
  descent (``MirrorLp``, ``Hypentropy``: exponentiated gradient +-), checkpointed and resumed like the others;
* ``train``/``Trainer`` recording a ``History`` at log-spaced checkpoints, with exact resume (atomic,
  single-writer checkpoints that record hashes of the data and model: ``CheckpointMismatchError``);
  full-batch exponential-loss GD on a ``LinearKernel`` takes the fused path (``fused``), run by a
  compiled kernel where one is there: the optional AVX-512 C extension, or numba (``lexmargin[fast]``),
  whichever is faster for the size (``workers`` lanes, ``threads`` per lane of the C kernel);
* comparisons with solver certificates on plain arrays (``angle``, ``margin_ratio``,
  ``nnls_multipliers``, ``Reference``).

Example: 8 runs (seeds 0..7, initial scales 0.1..10) of normalized GD on a declared model, tracked
against its max-margin certificate and checkpointed to disk (rerunning resumes where it stopped)::

    from lexmargin import load_model
    from lexmargin.problems.maxmargin import max_margin
    from lexmargin.numeric import Normalized, Reference, kernel_for, train

    model = load_model("two_layer", input_dim=data.n_features, activation="relu", width=4)
    kernel = kernel_for(model, data)                       # numpy kernel, verified against CasADi
    theta0 = kernel.random_theta(range(8), scales=np.logspace(-1, 1, 8))
    ref = Reference.from_certificate(max_margin(model, data))
    hist = train(kernel, theta0, rule=Normalized(0.1), n_steps=10**6, reference=ref,
                 checkpoint_path="run.npz")
    hist.angle[-1], hist.margin_ratio[-1]                  # per run, at the last checkpoint
"""

from .backend import BackendMismatchError
from .compare import Multipliers, Reference, angle, margin_ratio, nnls_multipliers, unit
from .geometry import Hypentropy, MirrorLp, Steepest, get_geometry
from .history import History, log_checkpoints
from .initialization import balance, he_init, rescale_units, unbalance, unit_norms
from .kernels import (
                      ACTIVATIONS,
                      CasadiKernel,
                      DeepLinearKernel,
                      Kernel,
                      LayeredNetKernel,
                      LinearKernel,
                      SumKernel,
                      SVMBiasKernel,
                      check_kernel_against_model,
                      kernel_for,
                      layered_degree,
)
from .losses import ExponentialLoss, LogisticLoss, get_loss, logsumexp
from .multiclass import (
                      CrossEntropyLoss,
                      MulticlassCasadiKernel,
                      MulticlassLayeredNetKernel,
                      MulticlassLinearKernel,
                      multiclass_kernel,
)
from .pathsgd import path_norm_squared, path_scales, path_scales_bruteforce, path_sgd_direction
from .registry import KernelFallbackWarning, register_kernel
from .steps import AdaGrad, Adaptive, Constant, Momentum, Normalized, StepRule, register_rule
from .trainer import CheckpointMismatchError, DivergenceError, Trainer, train

__all__ = [
                      "ACTIVATIONS",
                      "AdaGrad",
                      "Adaptive",
                      "CasadiKernel",
                      "CheckpointMismatchError",
                      "Constant",
                      "DeepLinearKernel",
                      "DivergenceError",
                      "ExponentialLoss",
                      "History",
                      "Hypentropy",
                      "Kernel",
                      "LayeredNetKernel",
                      "LinearKernel",
                      "LogisticLoss",
                      "MirrorLp",
                      "Multipliers",
                      "Normalized",
                      "Reference",
                      "SVMBiasKernel",
                      "Steepest",
                      "SumKernel",
                      "Trainer",
                      "angle",
                      "check_kernel_against_model",
                      "get_geometry",
                      "get_loss",
                      "kernel_for",
                      "layered_degree",
                      "log_checkpoints",
                      "logsumexp",
                      "margin_ratio",
                      "nnls_multipliers",
                      "path_norm_squared",
                      "path_scales",
                      "path_scales_bruteforce",
                      "path_sgd_direction",
                      "train",
                      "unit",
]

# multi-class (K-output models: margin rows f_nj = g_y - g_j; numeric/multiclass.py)
__all__ += ["CrossEntropyLoss", "MulticlassCasadiKernel", "MulticlassLayeredNetKernel", "MulticlassLinearKernel",
            "multiclass_kernel"]

# array backends and the kernel registry (numeric/backend.py, numeric/registry.py; docs/backends.md)
__all__ += ["BackendMismatchError", "KernelFallbackWarning", "register_kernel"]

# the step-rule protocol (numeric/steps.py; docs/numeric_geometry.md)
__all__ += ["Momentum", "StepRule", "register_rule"]

# node rescalings of layered nets: balanced / unbalanced starts of the same function (numeric/initialization.py)
__all__ += ["balance", "he_init", "rescale_units", "unbalance", "unit_norms"]
