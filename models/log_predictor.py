"""Log predictors: the non-homogeneous examples of section 3.1 of Nacson et al. (2019).

With z_n = y_n x_n and s_n = log(<w, z_n>) (defined where <w, z_n> > 0):

* ``eps = 0`` (default), the log predictor::

      f_n(w) = s_n = log(<w, z_n>),   so   exp(-f_n) = 1 / <w, z_n>

  and the exponential loss becomes the polynomially tailed loss sum_n 1/<w, z_n>;

* ``eps > 0``, the (1 + eps)-log predictor::

      f_n(w) = s_n |s_n|^eps = sign(s_n) |log(<w, z_n>)|^(1 + eps),

  a smooth (C^1 at s_n = 0) odd extension of log(<w, z_n>)^(1 + eps); the loss
  exp(-f_n) = exp(-log(<w, z_n>)^(1 + eps)) decays faster than any polynomial but slower than an
  exponential in ||w||.

The margin is declared directly (``margin=``) with one block ``w`` and no homogeneity degree.
Outside the cone <w, z_n> > 0 the margin is undefined (NaN).
"""

import math

from lexmargin import Block, Model, ops
from lexmargin.errors import ModelError


def build(input_dim: int, *, eps: float = 0.0) -> Model:
    """Log predictor f = log(w . z) (eps = 0) or (1+eps)-log predictor f = s |s|^eps, s = log(w . z).

    Options:
        eps: exponent offset, a finite number >= 0 (default 0: the plain log predictor).
    """
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0:
        raise ModelError(f"log_predictor: eps must be a finite number >= 0; got {eps!r}")
    eps = float(eps)

    def log_margin(p, x, y):
        return ops.log(ops.dot(p["w"], y * x))

    def power_log_margin(p, x, y):
        s = log_margin(p, x, y)
        return s * ops.power(ops.abs(s), eps)

    if eps == 0:
        model = Model("log_predictor", [Block.array("w", input_dim)], input_dim=input_dim, margin=log_margin,
                      description="f = log(<w, y x>)")
    else:
        model = Model(f"log_predictor_eps{eps:g}", [Block.array("w", input_dim)], input_dim=input_dim,
                      margin=power_log_margin, description=f"f = s |s|^{eps:g}, s = log(<w, y x>)")
    # the kernel family (lexmargin.numeric.registry): no batched kernel (not homogeneous); CasADi by declaration
    model.numeric_structure = {"family": "casadi"}
    return model
