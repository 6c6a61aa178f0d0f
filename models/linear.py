"""Linear classifier.

    f_n(theta) = y_n * <w, x_n>,        theta = w in R^D,

one block ``w`` of degree 1.  The max-margin problem is the hard-margin SVM without bias
(Soudry et al. 2018: gradient descent on the exponential loss converges in direction to it).
"""

from lexmargin import Block, Model, ops
from lexmargin.errors import ModelError


def build(input_dim: int, **options) -> Model:
    """Linear model y * w.x.

    Options: none (any option raises ModelError).
    """
    if options:
        raise ModelError(f"the linear model takes no options; got {sorted(options)}")

    def output(p, x):
        return ops.dot(p["w"], x)

    model = Model("linear", [Block.array("w", input_dim, degree=1)], input_dim=input_dim, output=output,
                  description="f = y <w, x>")
    # the kernel family (lexmargin.numeric.registry): kernel_for builds its batched kernel from this declaration
    model.numeric_structure = {"family": "linear"}
    return model
