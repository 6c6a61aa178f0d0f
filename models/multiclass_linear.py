"""Linear multi-class classifier (hard-margin Crammer-Singer without bias at the max margin).

    g(theta; x) = W x in R^K,        f_{n,j}(theta) = (W_{y_n} - W_j) . x_n   (j != y_n),

theta = W in R^{K x D} (C order: row k is class k's weights), one block ``W`` of degree 1.  Labels are the
integers 0..K-1 (``Dataset(X, y, n_classes=K)``).  The max-margin problem min ||W||_F^2 s.t. f_{n,j} >= 1 is the
hard-margin multi-class SVM of Crammer and Singer (2001) without bias; gradient descent on the multi-class
exponential or cross-entropy loss converges in direction to it (Soudry et al. 2018, section 4).
"""

from lexmargin import Block, Model
from lexmargin.errors import ModelError


def build(input_dim: int, n_classes: int = 3, **options) -> Model:
    """Linear multi-class model g = W x with K = ``n_classes`` outputs.

    Options: ``n_classes`` (K >= 2, default 3); any other option raises ModelError.
    """
    if options:
        raise ModelError(f"the multiclass_linear model takes only n_classes; got {sorted(options)}")
    if isinstance(n_classes, bool) or int(n_classes) != n_classes or n_classes < 2:
        raise ModelError(f"n_classes must be an integer >= 2; got {n_classes!r}")
    K = int(n_classes)

    def output(p, x):
        return p["W"] @ x

    model = Model("multiclass_linear", [Block.array("W", (K, input_dim), degree=1)], input_dim=input_dim,
                  output=output, outputs=K, description=f"g = W x, K = {K} classes; f_nj = (W_y - W_j) x")
    # the kernel family (lexmargin.numeric.registry): kernel_for builds its batched kernel from this declaration
    model.numeric_structure = {"family": "multiclass_linear"}
    return model
