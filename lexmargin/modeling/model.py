"""Symbolic model declaration, traced once into CasADi, SymPy and numpy.

A model is a per-sample prediction over named parameter blocks.  Declare it with one of

* ``output(p, x)``: the raw score g(theta; x); the margin is f_n = y_n * g(theta; x_n);
* ``summands={block: g_k}``: g = sum_k g_k(theta_k; x), each g_k homogeneous in its own block
  (sums of sub-models of different degrees, Theorem 1 of Nacson et al. 2019);
* ``margin(p, x, y)``: the margin f(theta; x, y) directly (e.g. log predictors).

A model with K outputs (``outputs=K``: ``output`` returns K scores g(theta; x) in R^K) classifies K classes with
integer labels 0..K-1; its margins are the rows f_{n,j} = g_{y_n}(theta; x_n) - g_j(theta; x_n), j != y_n
(``lexmargin.modeling.multiclass``).  Internally a row's "label" is its contrast c = e_{y_n} - e_j in R^K and
f = c . g, the binary y g when K = 1.

``p`` maps array names to arrays, ``x`` is one sample.  Use ``lexmargin.ops`` for non-polynomial
functions so the same code runs on numpy, CasADi and SymPy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property

import casadi as ca
import numpy as np

from .._lazy import lazy_module
from .data import Dataset
from ..errors import DataError, ModelError
from .usercode import call_user

sp = lazy_module("sympy")   # formulas and symbolic proofs only


def _as_shape(shape) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(s) for s in shape)


@dataclass(frozen=True)
class Block:
    """A named group of parameter arrays with a positive-homogeneity degree (None: not homogeneous)."""

    name: str
    shapes: Mapping[str, tuple[int, ...]]
    degree: float | None = None

    def __post_init__(self):
        shapes = {str(k): _as_shape(v) for k, v in dict(self.shapes).items()}
        if not shapes:
            raise ModelError(f"block {self.name!r} has no parameter arrays")
        for key, shape in shapes.items():
            if any(s <= 0 for s in shape):
                raise ModelError(f"array {key!r} of block {self.name!r} has a non-positive dimension {shape}")
        if self.degree is not None and not (math.isfinite(self.degree) and self.degree > 0):
            raise ModelError(f"degree of block {self.name!r} must be positive, got {self.degree}")
        object.__setattr__(self, "shapes", shapes)

    @classmethod
    def array(cls, name: str, shape, degree: float | None = None) -> "Block":
        """A block holding a single array of the same name.

        Args:
            name: the block's and the array's name.
            shape: the array's shape (an int or a tuple).
            degree: the block's homogeneity degree (None: not homogeneous).

        Returns:
            The Block.
        """
        return cls(name, {name: _as_shape(shape)}, degree)

    @property
    def size(self) -> int:
        """Number of parameters in the block (all its arrays)."""
        return sum(int(np.prod(s)) for s in self.shapes.values())


class Params(dict):
    """Parameter arrays by name; also readable as attributes (``p.w``)."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


def _obj_array(scalars, shape):
    out = np.empty(len(scalars), dtype=object)
    out[:] = list(scalars)
    return out.reshape(shape)


def _object_scalar(value) -> np.ndarray:
    """Wrap a CasADi scalar as a 0-d object array so ``y * x`` stays elementwise (SX * array -> SX matrix)."""
    out = np.empty((), dtype=object)
    out[()] = value
    return out


def _as_casadi_scalar(value) -> ca.SX:
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise ModelError(f"the model must return a scalar per sample; got shape {value.shape}")
        value = value.reshape(-1)[0]
    expr = ca.SX(value)
    if expr.shape != (1, 1):
        raise ModelError(f"the model must return a scalar per sample; got shape {expr.shape}")
    return expr


def _as_sympy_scalar(value):
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise ModelError(f"the model must return a scalar per sample; got shape {value.shape}")
        value = value.reshape(-1)[0]
    return sp.sympify(value)


@dataclass(frozen=True)
class _Layout:
    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    offsets: tuple[int, ...]

    def split(self, flat) -> Params:
        out = Params()
        for name, shape, start in zip(self.names, self.shapes, self.offsets):
            size = int(np.prod(shape))
            part = flat[start:start + size]
            out[name] = part.reshape(shape) if isinstance(part, np.ndarray) else part
        return out


class Model:
    """A declared per-sample prediction over named parameter blocks."""

    def __init__(self, name: str, blocks, *, input_dim: int, output: Callable | None = None,
                 margin: Callable | None = None, summands: Mapping[str, Callable] | None = None,
                 description: str = "", verify: bool = True, outputs: int = 1):
        self.name = name
        if isinstance(outputs, bool) or not isinstance(outputs, (int, np.integer)) or outputs < 1:
            raise ModelError(f"outputs must be a positive integer; got {outputs!r}")
        self.n_outputs = int(outputs)
        if self.n_outputs > 1 and margin is not None:
            raise ModelError("a model with several outputs declares output= (or summands=), not margin=: its margins "
                             "are the differences g_y - g_j of its outputs")
        self.blocks = tuple(blocks)
        self.input_dim = int(input_dim)
        self.description = description
        given = [k for k, v in (("output", output), ("margin", margin), ("summands", summands)) if v]
        if len(given) != 1:
            raise ModelError(f"declare exactly one of output=, margin=, summands= (got {given or 'none'})")
        self._output, self._margin = output, margin
        self._summands = dict(summands) if summands else None
        self._check_declaration()
        if verify:
            from .homogeneity import check_homogeneity
            check_homogeneity(self, symbolic=False, raise_on_failure=True)

    # ---- structure ------------------------------------------------------------------------------
    def _check_declaration(self):
        if not self.blocks:
            raise ModelError("a model needs at least one parameter block")
        if self.input_dim <= 0:
            raise ModelError(f"input_dim must be positive, got {self.input_dim}")
        names = [b.name for b in self.blocks]
        arrays = [a for b in self.blocks for a in b.shapes]
        for label, items in (("block", names), ("array", arrays)):
            dup = {n for n in items if items.count(n) > 1}
            if dup:
                raise ModelError(f"duplicate {label} names: {sorted(dup)}")
        if self._summands is not None and set(self._summands) != set(names):
            raise ModelError(f"summands must give one function per block {names}; got {list(self._summands)}")

    @cached_property
    def layout(self) -> _Layout:
        names, shapes, offsets, start = [], [], [], 0
        for block in self.blocks:
            for key, shape in block.shapes.items():
                names.append(key)
                shapes.append(shape)
                offsets.append(start)
                start += int(np.prod(shape))
        return _Layout(tuple(names), tuple(shapes), tuple(offsets))

    @property
    def n_params(self) -> int:
        """Number of parameters P (the length of the flat theta)."""
        return sum(b.size for b in self.blocks)

    @property
    def is_sum_of_blocks(self) -> bool:
        """True when the model is declared as a sum of per-block summands (``summands=``)."""
        return self._summands is not None

    def block(self, name: str) -> Block:
        """The block called ``name``.

        Args:
            name: a block name.

        Returns:
            The Block (``ModelError`` when there is none).
        """
        for b in self.blocks:
            if b.name == name:
                return b
        raise ModelError(f"model {self.name!r} has no block {name!r}; blocks: {[b.name for b in self.blocks]}")

    def block_slice(self, name: str) -> slice:
        """Where a block's parameters lie in the flat theta.

        Args:
            name: a block name.

        Returns:
            The slice of theta holding the block's arrays (C order, array by array).
        """
        start = 0
        for b in self.blocks:
            if b.name == name:
                return slice(start, start + b.size)
            start += b.size
        raise ModelError(f"model {self.name!r} has no block {name!r}")

    @property
    def degree(self) -> float | None:
        """Joint homogeneity degree of f in theta (None when f is not homogeneous)."""
        degrees = [b.degree for b in self.blocks]
        if any(d is None for d in degrees):
            return None
        if self.is_sum_of_blocks:
            return degrees[0] if all(d == degrees[0] for d in degrees) else None
        return float(sum(degrees))

    @property
    def is_homogeneous(self) -> bool:
        """True when the model has a joint homogeneity degree."""
        return self.degree is not None

    # ---- parameters -----------------------------------------------------------------------------
    def unflatten(self, theta) -> Params:
        """Split a flat theta into its named arrays.

        Args:
            theta: the flat parameter vector (P,).

        Returns:
            Params: array name -> array of its declared shape (attribute access too: ``p.W``).
        """
        theta = np.asarray(theta, dtype=float)
        if theta.shape != (self.n_params,):
            raise ModelError(f"theta must have shape ({self.n_params},) for model {self.name!r}; got {theta.shape}")
        return self.layout.split(theta)

    def flatten(self, params: Mapping[str, np.ndarray]) -> np.ndarray:
        """Concatenate named arrays into a flat theta (the inverse of ``unflatten``).

        Args:
            params: array name -> array, one entry per declared array.

        Returns:
            The flat parameter vector (P,).
        """
        missing = set(self.layout.names) - set(params)
        if missing:
            raise ModelError(f"missing parameter arrays {sorted(missing)}")
        parts = []
        for name, shape in zip(self.layout.names, self.layout.shapes):
            arr = np.asarray(params[name], dtype=float)
            if arr.shape != shape:
                raise ModelError(f"array {name!r} must have shape {shape}; got {arr.shape}")
            parts.append(arr.ravel())
        return np.concatenate(parts)

    def random_params(self, seed=None, scale: float = 1.0) -> np.ndarray:
        """A random flat theta: standard normal entries scaled by ``scale / sqrt(P)``.

        Args:
            seed: seed of numpy's generator.
            scale: the scale of the draw.

        Returns:
            The flat parameter vector (P,).
        """
        rng = np.random.default_rng(seed)
        return scale * rng.standard_normal(self.n_params) / np.sqrt(max(self.n_params, 1))

    def scale_block(self, theta, block: str, rho: float) -> np.ndarray:
        """theta with one block multiplied by ``rho`` (a copy).

        Args:
            theta: the flat parameter vector (P,).
            block: the block's name.
            rho: the factor.

        Returns:
            The scaled copy (P,).
        """
        out = np.array(theta, dtype=float, copy=True)
        out[self.block_slice(block)] *= rho
        return out

    # ---- the declared function on any backend ---------------------------------------------------
    def margin_of(self, params: Mapping, x, y):
        """f(theta; x, y) on whichever backend ``params``/``x`` come from.

        Args:
            params: the named arrays (numpy, CasADi or SymPy).
            x: one input (d,).
            y: its label.

        Returns:
            The margin, a scalar of the same backend.
        """
        if self._margin is not None:
            return call_user(self._margin, "margin(p, x, y)", self.name, params, x, y)
        if self.n_outputs > 1:
            g = self._vector_output(self.output_of(params, x))
            if np.size(y) == 1:      # a scalar "label": a structure probe (activation patterns, kinks), y * sum_k g_k
                return _contrast(np.full(g.size, np.asarray(y).reshape(-1)[0], dtype=object), g)
            return _contrast(y, g)
        return y * self.output_of(params, x)

    def _vector_output(self, g):
        """A K-output model's output as a flat array of K entries (``ModelError`` for another size)."""
        g = np.asarray(g, dtype=object if not isinstance(g, np.ndarray) else g.dtype).reshape(-1)
        if g.size != self.n_outputs:
            raise ModelError(f"model {self.name!r} declares {self.n_outputs} outputs; its output has {g.size} entries")
        return g

    def output_of(self, params: Mapping, x):
        """The raw output g(theta; x) on whichever backend ``params``/``x`` come from.

        Args:
            params: the named arrays (numpy, CasADi or SymPy).
            x: one input (d,).

        Returns:
            g(theta; x) (``ModelError`` for a model that declares its margin directly).
        """
        if self._output is not None:
            return call_user(self._output, "output(p, x)", self.name, params, x)
        if self._summands is None:
            raise ModelError(f"model {self.name!r} declares its margin directly and has no raw output")
        return sum(call_user(fn, f"summand {block!r}", self.name, params, x)
                   for block, fn in self._summands.items())

    def summand_of(self, block: str, params: Mapping, x, y):
        """y * g_k(theta_k; x) for sum-of-blocks models.

        Args:
            block: the block's name.
            params: the named arrays.
            x: one input (d,).
            y: its label.

        Returns:
            The block's term of the margin.
        """
        if self._summands is None:
            raise ModelError(f"model {self.name!r} is not declared as a sum of blocks")
        g = call_user(self._summands[block], f"summand {block!r}", self.name, params, x)
        return _contrast(y, self._vector_output(g)) if self.n_outputs > 1 else y * g

    @property
    def has_output(self) -> bool:
        """True when the model has a raw output g(theta; x) (declared with ``output=`` or ``summands=``)."""
        return self._margin is None

    # ---- CasADi tracing -------------------------------------------------------------------------
    @cached_property
    def _symbols(self):
        theta = ca.SX.sym("theta", self.n_params)
        x = ca.SX.sym("x", self.input_dim)
        y = ca.SX.sym("y", self.n_outputs)
        p = self.layout.split(_obj_array([theta[i] for i in range(self.n_params)], (self.n_params,)))
        xs = _obj_array([x[i] for i in range(self.input_dim)], (self.input_dim,))
        return theta, x, y, p, xs

    def _label(self, y):
        """The label symbol as the model function sees it: a 0-d object array (binary), or the contrast's K
        entries (a K-output model)."""
        if self.n_outputs > 1:
            return _obj_array([y[i] for i in range(self.n_outputs)], (self.n_outputs,))
        return _object_scalar(y)

    @cached_property
    def casadi_margin(self) -> ca.Function:
        """CasADi Function f(theta, x, y) -> margin of one sample."""
        theta, x, y, p, xs = self._symbols
        expr = _as_casadi_scalar(self.margin_of(p, xs, self._label(y)))
        return ca.Function("margin", [theta, x, y], [ca.densify(expr)], ["theta", "x", "y"], ["f"])

    @cached_property
    def casadi_gradient(self) -> ca.Function:
        theta, x, y = self.casadi_margin.sx_in()
        f = self.casadi_margin(theta, x, y)
        grad = ca.densify(ca.gradient(f, theta))
        return ca.Function("margin_gradient", [theta, x, y], [grad], ["theta", "x", "y"], ["g"])

    @cached_property
    def casadi_hessian(self) -> ca.Function:
        theta, x, y = self.casadi_margin.sx_in()
        f = self.casadi_margin(theta, x, y)
        H, _ = ca.hessian(f, theta)
        return ca.Function("margin_hessian", [theta, x, y], [ca.densify(H)], ["theta", "x", "y"], ["H"])

    def casadi_summand(self, block: str) -> ca.Function:
        """CasADi Function of one block's term of the margin, y g_k(theta; x).

        Args:
            block: the block's name.

        Returns:
            ``ca.Function`` (theta, x, y) -> y g_k(theta; x).
        """
        theta, x, y, p, xs = self._symbols
        expr = _as_casadi_scalar(self.summand_of(block, p, xs, self._label(y)))
        return ca.Function(f"summand_{block}", [theta, x, y], [ca.densify(expr)])

    @cached_property
    def is_linear_in_params(self) -> bool:
        """True when f is affine in theta (then the margin constraints are linear)."""
        theta, x, y = self.casadi_margin.sx_in()
        f = self.casadi_margin(theta, x, y)
        return not ca.depends_on(ca.gradient(f, theta), theta)

    def _mapped(self, fn: ca.Function, n: int) -> ca.Function:
        """fn mapped over n samples with theta shared (not repeated) across them."""
        cache = self.__dict__.setdefault("_map_cache", {})
        key = (fn.name(), n)
        if key not in cache:
            cache[key] = fn.map(f"{fn.name()}_map", "serial", n, [0], [])
        return cache[key]

    def _check_data(self, data: Dataset) -> Dataset:
        """The data margins are evaluated over: the Dataset itself, or for a K-output model its margin rows
        (``multiclass.MarginRows``, one row per (n, j), j != y_n)."""
        from .multiclass import MarginRows, rows_for

        if not isinstance(data, (Dataset, MarginRows)):
            raise DataError(f"expected a lexmargin Dataset, got {type(data).__name__}")
        if data.n_features != self.input_dim:
            raise DataError(f"model {self.name!r} expects {self.input_dim} features; data has {data.n_features}")
        if self.n_outputs == 1 and type(data) is Dataset and data.n_classes is None:
            return data
        return rows_for(self, data)

    def _eval_mapped(self, fn: ca.Function, theta, data: Dataset) -> np.ndarray:
        """Evaluate fn(theta, x_n, y_n) for all samples; returns (N, size of one output) in column order.

        Uses CasADi's zero-copy function buffers: numpy <-> DM conversion would dominate otherwise.
        """
        data = self._check_data(data)
        theta = np.ascontiguousarray(theta, dtype=float).reshape(-1)
        if theta.shape != (self.n_params,):
            raise ModelError(f"theta must have {self.n_params} entries; got {theta.shape}")
        mapped = self._mapped(fn, data.n_samples)
        X = np.ascontiguousarray(data.X)
        y = np.ascontiguousarray(data.y)
        out = np.empty((data.n_samples, fn.nnz_out(0)))
        buffer, evaluate = mapped.buffer()
        for i, arg in enumerate((theta, X, y)):
            buffer.set_arg(i, memoryview(arg))
        buffer.set_res(0, memoryview(out))
        evaluate()
        return out

    def margin_expressions(self, theta, data: Dataset):
        """Column (N x 1) of symbolic CasADi margins f_n(theta) for a symbolic theta (SX or MX).

        Args:
            theta: a CasADi symbol (P x 1).
            data: the Dataset.

        Returns:
            The N x 1 CasADi expression.
        """
        data = self._check_data(data)
        mapped = self.casadi_margin.map(data.n_samples, "serial")
        labels = data.y.T if data.y.ndim == 2 else data.y[None, :]
        return mapped(theta, ca.DM(data.X.T), ca.DM(labels)).T

    def margins(self, theta, data: Dataset) -> np.ndarray:
        """f_n(theta) for every sample (N,).

        Args:
            theta: the flat parameter vector (P,).
            data: the Dataset.

        Returns:
            The margins (N,).
        """
        return self._eval_mapped(self.casadi_margin, theta, data).reshape(-1)

    def margin_jacobian(self, theta, data: Dataset) -> np.ndarray:
        """d f_n / d theta for every sample (N x P).

        Args:
            theta: the flat parameter vector (P,).
            data: the Dataset.

        Returns:
            The Jacobian (N, P).
        """
        return self._eval_mapped(self.casadi_gradient, theta, data)

    def weighted_hessian(self, theta, data: Dataset, weights) -> np.ndarray:
        """sum_n w_n * Hessian of f_n at theta (P x P).

        Args:
            theta: the flat parameter vector (P,).
            data: the Dataset.
            weights: one weight per sample (N,).

        Returns:
            The weighted Hessian (P, P).
        """
        P = self.n_params
        data = self._check_data(data)
        H = self._eval_mapped(self.casadi_hessian, theta, data).reshape(data.n_samples, P, P)
        return np.einsum("nji,n->ij", H, np.asarray(weights, dtype=float))

    def normalized_margin(self, theta, data: Dataset) -> float:
        """min_n f_n(theta) / ||theta||^degree (homogeneous models only).

        Args:
            theta: the flat parameter vector (P,).
            data: the Dataset.

        Returns:
            The normalized margin (``ModelError`` for a model that is not homogeneous).
        """
        if self.degree is None:
            raise ModelError(f"model {self.name!r} is not homogeneous: normalized margin undefined")
        norm = float(np.linalg.norm(theta))
        if norm == 0:
            raise ModelError("normalized margin is undefined at theta = 0")
        return float(np.min(self.margins(theta, data))) / norm ** self.degree

    def decision_function(self, theta, X) -> np.ndarray:
        """Raw output g(theta; x) for each row of X (models declared with output/summands).

        Args:
            theta: the flat parameter vector (P,).
            X: inputs (N, d), or one input (d,).

        Returns:
            g(theta; x_n) for every row (N,), or (N, K) for a model with K outputs.
        """
        if not self.has_output:
            raise ModelError(f"model {self.name!r} declares its margin directly; it has no raw output")
        X = np.atleast_2d(np.asarray(X, dtype=float))
        if self.n_outputs > 1:
            if X.shape[1] != self.input_dim:
                raise DataError(f"model {self.name!r} expects {self.input_dim} features; got {X.shape[1]}")
            theta = np.asarray(theta, dtype=float).reshape(-1)
            if theta.shape != (self.n_params,):
                raise ModelError(f"theta must have {self.n_params} entries; got {theta.shape}")
            out = self.casadi_output.map(X.shape[0], "serial")(theta, ca.DM(X.T))
            return np.array(out).T.reshape(X.shape[0], self.n_outputs)
        ones = Dataset(X, np.ones(X.shape[0])) if X.shape[1] == self.input_dim else None
        if ones is None:
            raise DataError(f"model {self.name!r} expects {self.input_dim} features; got {X.shape[1]}")
        return self.margins(theta, ones)

    def predict(self, theta, X) -> np.ndarray:
        """Labels sign(g(theta; x)) (+1 at 0) for each row of X.

        Args:
            theta: the flat parameter vector (P,).
            X: inputs (N, d), or one input (d,).

        Returns:
            The labels (N,), +-1; for a model with K outputs the class argmax_k g_k (0..K-1, the first on ties).
        """
        if self.n_outputs > 1:
            return np.argmax(self.decision_function(theta, X), axis=1).astype(np.int64)
        return np.where(self.decision_function(theta, X) >= 0, 1.0, -1.0)

    @cached_property
    def casadi_output(self) -> ca.Function:
        """CasADi Function g(theta, x) -> the K outputs of one sample (models with an output)."""
        theta, x, _, p, xs = self._symbols
        g = self.output_of(p, xs)
        g = self._vector_output(g) if self.n_outputs > 1 else np.asarray(g, dtype=object).reshape(-1)
        expr = ca.vertcat(*[ca.SX(v) for v in g])
        return ca.Function("output", [theta, x], [ca.densify(expr)], ["theta", "x"], ["g"])

    # ---- numpy and SymPy evaluation -------------------------------------------------------------
    def margin_numpy(self, theta, x, y: float) -> float:
        """f(theta; x, y) for one sample evaluated directly in numpy (independent of CasADi).

        Args:
            theta: the flat parameter vector (P,).
            x: one input (d,).
            y: its label; for a model with K outputs the row's contrast e_{y_n} - e_j (K,).

        Returns:
            The margin.
        """
        p = self.unflatten(theta)
        label = np.asarray(y, dtype=float).reshape(-1) if self.n_outputs > 1 else float(y)
        return float(np.asarray(self.margin_of(p, np.asarray(x, dtype=float), label)))

    def sympy_symbols(self):
        """SymPy parameter arrays (named after the arrays) and an input vector x.

        Returns:
            ``(params, x, y)``: Params of SymPy symbol arrays, the input symbols (d,) and the label symbol (for a
            model with K outputs the contrast's K symbols c_0, ..., c_{K-1}).
        """
        p = Params()
        for name, shape in zip(self.layout.names, self.layout.shapes):
            p[name] = _symbol_array(name, shape)
        label = _symbol_array("c", (self.n_outputs,)) if self.n_outputs > 1 else sp.Symbol("y")
        return p, _symbol_array("x", (self.input_dim,)), label

    def sympy_margin(self, params=None, x=None, y=None):
        """The margin as a SymPy expression, at symbols or at the given values.

        Args:
            params: named arrays (default: the model's symbols).
            x: an input (default: symbols).
            y: a label (default: a symbol).

        Returns:
            The SymPy expression of f(theta; x, y).
        """
        sym_p, sym_x, sym_y = self.sympy_symbols()
        p = sym_p if params is None else params
        return _as_sympy_scalar(self.margin_of(p, sym_x if x is None else x, sym_y if y is None else y))

    def formula(self):
        """The margin f(theta; x, y) as a SymPy expression.

        Returns:
            The SymPy expression, in the symbols of ``sympy_symbols``.
        """
        return self.sympy_margin()

    def latex(self) -> str:
        """The margin's formula in LaTeX.

        Returns:
            ``sympy.latex`` of ``formula()``.
        """
        return sp.latex(self.formula())

    def describe(self) -> dict:
        """A summary of the model for reports.

        Returns:
            A JSON-ready dict: name, description, input dimension, blocks with shapes and degrees, joint degree.
        """
        return {
            "name": self.name,
            "description": self.description,
            "input_dim": self.input_dim,
            "n_params": self.n_params,
            "degree": self.degree,
            "form": "sum" if self.is_sum_of_blocks else ("margin" if self._margin else "output"),
            "blocks": [{"name": b.name, "degree": b.degree, "arrays": {k: list(v) for k, v in b.shapes.items()}}
                       for b in self.blocks],
        } | ({"outputs": self.n_outputs} if self.n_outputs > 1 else {})

    def __repr__(self):
        blocks = ", ".join(f"{b.name}(deg={b.degree})" for b in self.blocks)
        return f"Model({self.name!r}, input_dim={self.input_dim}, blocks=[{blocks}])"


def _contrast(c, g):
    """c . g = sum_k c_k g_k on any backend (c: a contrast's K entries, g: the K outputs)."""
    c = np.asarray(c, dtype=object if not isinstance(c, np.ndarray) else c.dtype).reshape(-1)
    if c.size != g.size:
        raise ModelError(f"a margin row's contrast has {c.size} entries for {g.size} outputs")
    terms = [c[k] * g[k] for k in range(g.size)]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def _symbol_array(name: str, shape) -> np.ndarray:
    if len(shape) == 0:
        return np.array(sp.Symbol(name), dtype=object)
    flat = [sp.Symbol(f"{name}_{'_'.join(map(str, idx))}", real=True) for idx in np.ndindex(*shape)]
    return _obj_array(flat, shape)


__all__ = ["Block", "Model", "Params"]
