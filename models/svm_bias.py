"""Linear classifier with an unregularized bias, written as a sum of homogeneous blocks.

``sign="positive"`` (default)::

    f_n(theta) = y_n * (<w, x_n> + b^2),                 blocks: w (degree 1), b (degree 2)

``sign="both"``::

    f_n(theta) = y_n * (<w, x_n> + b1^2 - b2^2),         blocks: w (degree 1), b = (b1, b2) (degree 2)

The bias block is homogeneous of degree 2 and the weights of degree 1, so the model is a sum of
sub-models of different degrees (Theorem 1 of Nacson et al. 2019): the limit direction maximizes
the margin of the lower-degree block w first, i.e. it gives the SVM *with an unregularized bias*
(for "positive", only biases b >= 0 are reachable).
"""

from lexmargin import Block, Model, ops
from lexmargin.errors import ModelError

SIGNS = ("positive", "both")


def build(input_dim: int, *, sign: str = "positive") -> Model:
    """Linear model with a squared bias.

    Options:
        sign: "positive" for f = y (w.x + b^2) (block b = array b of shape (1,)), or "both" for
            f = y (w.x + b1^2 - b2^2) (block b = arrays b1, b2 of shape (1,)).
    """
    if sign not in SIGNS:
        raise ModelError(f"svm_bias: sign must be one of {SIGNS}; got {sign!r}")

    def weights(p, x):
        return ops.dot(p["w"], x)

    if sign == "positive":
        bias_block = Block.array("b", 1, degree=2)

        def bias(p, x):
            return p["b"][0] ** 2
    else:
        bias_block = Block("b", {"b1": (1,), "b2": (1,)}, degree=2)

        def bias(p, x):
            return p["b1"][0] ** 2 - p["b2"][0] ** 2

    description = "f = y (<w, x> + b^2)" if sign == "positive" else "f = y (<w, x> + b1^2 - b2^2)"
    model = Model(f"svm_bias_{sign}", [Block.array("w", input_dim, degree=1), bias_block], input_dim=input_dim,
                  summands={"w": weights, "b": bias}, description=description)
    # the kernel family (lexmargin.numeric.registry): kernel_for builds its batched kernel from this declaration
    model.numeric_structure = {"family": "svm_bias", "bias": "square" if sign == "positive" else "squares_difference"}
    return model
