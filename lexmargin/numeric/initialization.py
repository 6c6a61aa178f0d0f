"""Balanced and unbalanced initializations of layered nets: node rescalings that leave the function unchanged.

For a hidden unit u of layer l (l = 1..k) with incoming weights W_l[u, :] (and b_1[u] when l = 1) and outgoing
weights W_{l+1}[:, u] (the output layer A[:, u] when l = k), and c > 0,

    W_l[u, :] <- c W_l[u, :],   b_1[u] <- c b_1[u],   W_{l+1}[:, u] <- W_{l+1}[:, u] / c

leaves the net unchanged, because s(c z) = c s(z) for the positively homogeneous activations (relu, leaky_relu,
linear).  Gradient descent is not invariant to these rescalings (the gradient on the incoming weights scales by
1/c, on the outgoing by c); Path-SGD (p = 2) is: kappa_e scales like w_e^2, so the step on w_e scales like w_e.

* ``rescale_units(kernel, theta, scales)``: apply the rescaling with one positive factor per hidden unit.
* ``he_init(kernel, seeds)``: Gaussian layers, std sqrt(2 / fan_in) (the output layer sqrt(1 / fan_in)), b_1 = 0.
* ``balance(kernel, theta)``: the equivalent net in which every hidden unit has ||in_u|| = ||out_u|| (sweeps of the
  exact per-unit balancing factor c_u = sqrt(||out_u|| / ||in_u||) until the largest log-imbalance is below tol).
* ``unbalance(kernel, theta, seed, fraction, factor)``: the equivalent net with a random ``fraction`` of the units
  of every hidden layer rescaled by ``factor`` (incoming times factor, outgoing divided by it): the unbalanced
  initialization of the Path-SGD experiments (Neyshabur, Salakhutdinov & Srebro 2015).

All act on R runs at once (theta (R, P)) and work for the binary ``LayeredNetKernel`` and the K-output
``MulticlassLayeredNetKernel`` alike.
"""

from __future__ import annotations

import numpy as np

from .kernels import LayeredNetKernel


def _check(kernel) -> None:
    if not isinstance(kernel, LayeredNetKernel) or not kernel.hidden:
        raise ValueError(f"node rescalings need a layered-net kernel with a hidden layer; got {kernel.name!r}")
    if kernel.activation not in ("relu", "leaky_relu", "linear"):
        raise ValueError(f"node rescalings leave the net unchanged only for degree-1 activations (relu, leaky_relu, "
                         f"linear); got {kernel.activation!r}")


def rescale_units(kernel, theta, scales) -> np.ndarray:
    """The parameters of the same net with hidden unit u of layer l rescaled by scales[l][r, u] (a copy).

    Args:
        kernel: a ``LayeredNetKernel`` or ``MulticlassLayeredNetKernel`` (relu, leaky_relu or linear).
        theta: the parameters (R, P) or (P,).
        scales: one positive array per hidden layer, broadcastable to (R, h_l).

    Returns:
        theta' (same shape as ``theta``) with W_l[u, :] * c, b_1[u] * c and W_{l+1}[:, u] / c for c = scales[l][u].
    """
    _check(kernel)
    single = np.ndim(theta) == 1
    out = np.array(np.atleast_2d(theta), dtype=kernel.dtype, copy=True)
    R = out.shape[0]
    if len(scales) != len(kernel.hidden):
        raise ValueError(f"need one array of scales per hidden layer ({len(kernel.hidden)}); got {len(scales)}")
    Ws = kernel.weights(out)                          # views into out
    bias = kernel.bias(out)
    for layer, (h, c) in enumerate(zip(kernel.hidden, scales)):
        c = np.broadcast_to(np.asarray(c, dtype=kernel.dtype), (R, h))
        if not np.all(np.isfinite(c)) or not np.all(c > 0):
            raise ValueError("rescaling factors must be positive and finite")
        Ws[layer] *= c[:, :, None]
        if layer == 0 and bias is not None:
            bias *= c
        Ws[layer + 1] /= c[:, None, :]
    return out[0] if single else out


def unit_norms(kernel, theta):
    """(incoming, outgoing) l2 norms of every hidden unit: two lists of (R, h_l) arrays (b_1 counts as incoming).

    Args:
        kernel: a layered-net kernel.
        theta: the parameters (R, P).

    Returns:
        ``(norms_in, norms_out)``, one (R, h_l) array per hidden layer in each.
    """
    _check(kernel)
    theta = np.atleast_2d(np.asarray(theta, dtype=kernel.dtype))
    Ws, bias = kernel.weights(theta), kernel.bias(theta)
    norms_in, norms_out = [], []
    for layer in range(len(kernel.hidden)):
        sq = np.square(Ws[layer]).sum(axis=2)
        if layer == 0 and bias is not None:
            sq = sq + np.square(bias)
        norms_in.append(np.sqrt(sq))
        norms_out.append(np.sqrt(np.square(Ws[layer + 1]).sum(axis=1)))
    return norms_in, norms_out


def balance(kernel, theta, tol: float = 1e-12, max_sweeps: int = 10_000) -> np.ndarray:
    """The equivalent net with ||in_u|| = ||out_u|| at every hidden unit (the balanced representative).

    One sweep rescales each layer in turn by c_u = sqrt(||out_u|| / ||in_u||), which balances that layer exactly but
    changes the outgoing norms of the layer before; sweeps repeat until max |log(||in_u|| / ||out_u||)| <= tol.

    Args:
        kernel: a layered-net kernel.
        theta: the parameters (R, P) or (P,); no hidden unit may have zero incoming or outgoing weights.
        tol: the largest log-imbalance accepted.
        max_sweeps: give up (RuntimeError) after this many sweeps.

    Returns:
        The balanced parameters (same function, same shape).
    """
    _check(kernel)
    single = np.ndim(theta) == 1
    out = np.atleast_2d(np.asarray(theta, dtype=kernel.dtype))
    k = len(kernel.hidden)
    for _ in range(max_sweeps):
        worst = 0.0
        for layer in range(k):
            n_in, n_out = unit_norms(kernel, out)
            if not (np.all(n_in[layer] > 0) and np.all(n_out[layer] > 0)):
                raise ValueError("a hidden unit with zero incoming or outgoing weights cannot be balanced")
            gap = np.log(n_out[layer] / n_in[layer])
            worst = max(worst, float(np.max(np.abs(gap))))
            scales = [np.ones((out.shape[0], h)) for h in kernel.hidden]
            scales[layer] = np.exp(gap / 2)
            out = rescale_units(kernel, out, scales)
        if worst <= tol:
            return out[0] if single else out
    raise RuntimeError(f"balance: log-imbalance still {worst:.3g} after {max_sweeps} sweeps")


def unbalance(kernel, theta, seed: int = 0, fraction: float = 0.1, factor: float = 10.0) -> np.ndarray:
    """The equivalent net with a random ``fraction`` of every hidden layer's units rescaled by ``factor``.

    Args:
        kernel: a layered-net kernel.
        theta: the parameters (R, P) or (P,).
        seed: seed of the choice of units (independent per run and layer).
        fraction: the share of units rescaled in each hidden layer (at least one unit).
        factor: c > 0: the chosen units' incoming weights times c, outgoing divided by c.

    Returns:
        The rescaled parameters (same function, same shape).
    """
    _check(kernel)
    if not 0 < fraction <= 1 or not factor > 0:
        raise ValueError(f"fraction must lie in (0, 1] and factor be positive; got {fraction}, {factor}")
    rng = np.random.default_rng(seed)
    R = np.atleast_2d(theta).shape[0]
    scales = []
    for h in kernel.hidden:
        m = max(1, round(fraction * h))
        c = np.ones((R, h))
        for r in range(R):
            c[r, rng.choice(h, size=m, replace=False)] = factor
        scales.append(c)
    return rescale_units(kernel, theta, scales)


def he_init(kernel, seeds) -> np.ndarray:
    """Gaussian initialization: W_l with std sqrt(2 / fan_in), the output layer sqrt(1 / fan_in), b_1 = 0.

    Args:
        kernel: a layered-net kernel.
        seeds: one seed per run (R of them).

    Returns:
        theta (R, P).
    """
    _check(kernel)
    seeds = [int(s) for s in np.atleast_1d(seeds)]
    theta = np.zeros((len(seeds), kernel.n_params), dtype=kernel.dtype)
    for r, seed in enumerate(seeds):
        rng = np.random.default_rng(seed)
        Ws = kernel.weights(theta[r:r + 1])
        for i, W in enumerate(Ws):
            gain = 2.0 if i < len(Ws) - 1 else 1.0
            W[...] = rng.standard_normal(W.shape) * np.sqrt(gain / W.shape[2])
    return theta


__all__ = ["balance", "he_init", "rescale_units", "unbalance", "unit_norms"]
