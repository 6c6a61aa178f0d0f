"""Batched numpy gradient methods for the implicit bias of training (no PyTorch).

Small pure pieces, composed by ``train``:

* kernels (``kernels``): batched margins f (R, N) and vector-Jacobian products for R runs at once;
  ``LinearKernel``, ``SVMBiasKernel``, ``LayeredNetKernel``/``DeepLinearKernel``, ``SumKernel``,
  ``CasadiKernel`` (any declared Model), and ``kernel_for(model, data)`` choosing among them;
* losses in log space (``ExponentialLoss``, ``LogisticLoss``);
* step rules (``Constant``, ``Normalized``, ``Adaptive``), minibatch SGD and Path-SGD (p = 2);
* ``train``/``Trainer`` recording a ``History`` at log-spaced checkpoints, with exact resume;
* comparisons with solver certificates on plain arrays (``angle``, ``margin_ratio``,
  ``nnls_multipliers``, ``Reference``).
"""

from .compare import Multipliers, Reference, angle, margin_ratio, nnls_multipliers, unit
from .history import History, log_checkpoints
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
from .pathsgd import path_norm_squared, path_scales, path_scales_bruteforce, path_sgd_direction
from .steps import Adaptive, Constant, Normalized
from .trainer import DivergenceError, Trainer, train

__all__ = [
                      "ACTIVATIONS",
                      "Adaptive",
                      "CasadiKernel",
                      "Constant",
                      "DeepLinearKernel",
                      "DivergenceError",
                      "ExponentialLoss",
                      "History",
                      "Kernel",
                      "LayeredNetKernel",
                      "LinearKernel",
                      "LogisticLoss",
                      "Multipliers",
                      "Normalized",
                      "Reference",
                      "SVMBiasKernel",
                      "SumKernel",
                      "Trainer",
                      "angle",
                      "check_kernel_against_model",
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
