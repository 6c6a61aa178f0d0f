"""Deep linear network of depth L.

    f_n(theta) = y_n * w_L^T W_{L-1} ... W_1 x_n,

with W_1 in R^{H x D}, W_l in R^{H x H} (1 < l < L), w_L in R^H (for L = 1: f = y w_1^T x).
Each layer is its own block of degree 1 (``layer1`` ... ``layerL``, arrays ``W1`` ... ``WL``); the
model is a product form, jointly homogeneous of degree L.
"""

from lexmargin import Block, Model, ops
from lexmargin.errors import ModelError


def _positive_int(name, value):
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ModelError(f"deep_linear: {name} must be a positive integer; got {value!r}")
    return int(value)


def layer_shapes(input_dim: int, depth: int, width: int) -> list[tuple[int, ...]]:
    """Shapes of W1 ... WL (the last one a vector)."""
    if depth == 1:
        return [(input_dim,)]
    return [(width, input_dim)] + [(width, width)] * (depth - 2) + [(width,)]


def build(input_dim: int, *, depth: int = 2, width: int | None = None) -> Model:
    """Deep linear network.

    Options:
        depth: number of layers L >= 1 (default 2); the joint degree is L.
        width: hidden width H >= 1 (default: input_dim); unused when depth = 1.
    """
    depth = _positive_int("depth", depth)
    width = _positive_int("width", input_dim if width is None else width)
    shapes = layer_shapes(input_dim, depth, width)
    blocks = [Block(f"layer{i}", {f"W{i}": shape}, degree=1) for i, shape in enumerate(shapes, start=1)]

    def output(p, x):
        h = x
        for i in range(1, depth):
            h = ops.matmul(p[f"W{i}"], h)
        return ops.dot(p[f"W{depth}"], h)

    model = Model(f"deep_linear_L{depth}", blocks, input_dim=input_dim, output=output,
                  description=f"f = y {_product(depth)} x (depth {depth}, width {width})")
    # the kernel family (lexmargin.numeric.registry): kernel_for builds its batched kernel from this declaration
    model.numeric_structure = ({"family": "linear"} if depth == 1 else
                               {"family": "layered_net", "hidden": (width,) * (depth - 1), "activation": "linear"})
    return model


def _product(depth: int) -> str:
    """w_L^T W_{L-1} ... W_1 written out for short depths (w_2^T W_1, w_3^T W_2 W_1, ...)."""
    if depth == 1:
        return "w_1^T"
    inner = [f"W_{k}" for k in range(depth - 1, 0, -1)]
    if len(inner) > 3:
        inner = [inner[0], "...", inner[-1]]
    return " ".join([f"w_{depth}^T", *inner])
