"""The fused exponential-loss GD kernel of ``numeric.fused`` in numba: the portable compiled path.

The same arithmetic as the C kernel (``_fused.c``) and the numpy lane, for every CPU that numba
supports (it needs no C compiler at install; ``pip install lexmargin[fast]``)::

    weight_sums:  GT = B exp(max(P^T B, floor))^T      (GT = [G; s], P = [-theta^T; c], B = [A; 1])
    run_steps:    whole chunks of steps (GD's or a geometry's update, weight_sums, the shift check, log L)
                  without returning to Python, like ``_fused.run_steps``

``weight_sums`` has two layouts, chosen once per lane by ``fused.numba_layout`` from the sizes:

* ``LOOPS`` (one run, or tiny problems): per run, the margins of all samples as one vector (four rows
  of B per pass), floor and exp in one pass over all of them, then K dot products per run;
* ``BLAS`` (the rest): the two matrix products by BLAS from inside numba (scipy's BLAS, no Python in
  between), floor and exp in one pass over X = P^T B in between.

Loops with the runs as the vector dimension (the C kernel's layout) were tried and dropped: without
register tiling (numba has no way to ask for it) they lost to BLAS at every size measured.

The exponential is a polynomial (Cody-Waite reduction, degree 13 in float64 and 8 in float32, 2^n built
from bits), so the compiler vectorizes it; it is exact to about 1 ulp, like the C kernel's.  Everything
is deterministic: the results depend only on the inputs, the layout and the machine code numba made for
this CPU (and, on the BLAS layout, on the BLAS library), so a resumed run repeats the original bit for
bit.  Functions are compiled on first use for float64 or float32 and cached on disk (``cache=True``).

Importing this module imports numba (and scipy's BLAS); ``numeric.fused`` does it only when the numba
path is used.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg.cython_blas  # noqa: F401  numba's np.dot calls it; loaded now so threadpoolctl sees it
from llvmlite import ir
from numba import njit, types
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload

_JIT = dict(nogil=True, cache=True, error_model="numpy", fastmath={"contract"})
# the dot products of LOOPS may be reassociated (vectorized; still deterministic for the compiled code);
# nothing else may: the exponential's rounding trick needs the operations as written
_JIT_REDUCE = dict(_JIT, fastmath={"contract", "reassoc"})

LOOPS, BLAS = 0, 1                       # layouts of weight_sums
DONE, UNSAFE, DIVERGED = 0, 1, 2         # statuses of run_steps (as in _fused.c)


# ---- bit casts (for 2^n) ------------------------------------------------------------------------------
@intrinsic
def _float_from_bits(typingctx, bits):
    """The float whose bits are ``bits`` (int64 -> float64, int32 -> float32)."""
    if bits == types.int64:
        return types.float64(bits), lambda context, builder, sig, args: builder.bitcast(args[0], ir.DoubleType())
    if bits == types.int32:
        return types.float32(bits), lambda context, builder, sig, args: builder.bitcast(args[0], ir.FloatType())
    raise TypingError(f"_float_from_bits: int64 or int32 expected, got {bits}")


@intrinsic
def _bits_of_float(typingctx, x):
    """The bits of ``x`` as an integer of the same width."""
    if x == types.float64:
        return types.int64(x), lambda context, builder, sig, args: builder.bitcast(args[0], ir.IntType(64))
    if x == types.float32:
        return types.int32(x), lambda context, builder, sig, args: builder.bitcast(args[0], ir.IntType(32))
    raise TypingError(f"_bits_of_float: float64 or float32 expected, got {x}")


# ---- exp(max(x, floor)) -------------------------------------------------------------------------------
# x + 1.5 * 2^52 (2^23) rounds x to an integer held in the low bits of the sum (|x| < 2^51 (2^22))
_MAGIC64, _MAGIC64_BITS = 6755399441055744.0, 0x4338000000000000
_MAGIC32, _MAGIC32_BITS = np.float32(12582912.0), np.int32(0x4B400000)
_C64 = (1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0,
        1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0)
_C32 = tuple(np.float32(c) for c in (1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0,
                                     0.5, 1.0, 1.0))
_LOG2E32, _LN2HI32, _LN2LO32 = np.float32(1.44269504), np.float32(0.693359375), np.float32(-2.12194440e-4)
_TOP32 = np.float32(89.0)


def floored_exp(x, floor):
    """exp(max(x, floor)) for x of the floor's type (NaN stays NaN; large x gives inf)."""
    return math.exp(max(x, floor))


@overload(floored_exp, inline="always", jit_options=_JIT)
def _floored_exp(x, floor):
    if x == types.float64 and floor == types.float64:
        c = _C64

        def exp64(x, floor):
            x = min(max(x, floor), 710.0)       # NaN stays NaN; exp overflows from 709.8 (inf below)
            t = x * 1.4426950408889634 + _MAGIC64              # n = round(x / ln 2) in the low bits of t
            n = t - _MAGIC64
            r = x - n * 6.93147180369123816490e-01             # |r| <= ln2 / 2 (Cody-Waite, two parts)
            r = r - n * 1.90821492927058770002e-10
            p = c[0]
            p = p * r + c[1]
            p = p * r + c[2]
            p = p * r + c[3]
            p = p * r + c[4]
            p = p * r + c[5]
            p = p * r + c[6]
            p = p * r + c[7]
            p = p * r + c[8]
            p = p * r + c[9]
            p = p * r + c[10]
            p = p * r + c[11]
            p = p * r + c[12]
            p = p * r + c[13]
            # 2^(n - 2), normal for n in [-1020, 1025] (x in [-700, 710]); times 4: 2^n, or inf for n = 1025
            scale = _float_from_bits((_bits_of_float(t) - _MAGIC64_BITS + 1021) << 52)
            return p * scale * 4.0
        return exp64
    if x == types.float32 and floor == types.float32:
        c = _C32

        def exp32(x, floor):
            x = min(max(x, floor), _TOP32)      # exp overflows from 88.7
            t = x * _LOG2E32 + _MAGIC32
            n = t - _MAGIC32
            r = x - n * _LN2HI32
            r = r - n * _LN2LO32
            p = c[0]
            p = p * r + c[1]
            p = p * r + c[2]
            p = p * r + c[3]
            p = p * r + c[4]
            p = p * r + c[5]
            p = p * r + c[6]
            p = p * r + c[7]
            p = p * r + c[8]
            # 2^n for n in [-126, 128] (x in [-87, 89]); n = 128 gives the bits of inf
            # (integer arithmetic widens to int64 in numba: back to int32 before the cast)
            return p * _float_from_bits(np.int32((_bits_of_float(t) - _MAGIC32_BITS + 127) << 23))
        return exp32
    raise TypingError(f"floored_exp: x and floor of one float type expected, got {x}, {floor}")


# ---- weight_sums, two layouts ----------------------------------------------------------------------------
@njit(**_JIT_REDUCE)
def _dots(B, X, GT, zero):
    """GT[k, r] = B[k] . X[r] for every k and r (reassociated: vectorized, still deterministic)."""
    K, N = B.shape
    R = X.shape[0]
    for r in range(R):
        for k0 in range(0, K, 4):
            k1, k2, k3 = min(k0 + 1, K - 1), min(k0 + 2, K - 1), min(k0 + 3, K - 1)   # repeats past the end
            a0 = a1 = a2 = a3 = zero
            for i in range(N):
                xi = X[r, i]
                a0 += B[k0, i] * xi
                a1 += B[k1, i] * xi
                a2 += B[k2, i] * xi
                a3 += B[k3, i] * xi
            GT[k3, r] = a3
            GT[k2, r] = a2
            GT[k1, r] = a1
            GT[k0, r] = a0


@njit(**_JIT)
def _sums_loops(P, B, GT, X, floor):
    """LOOPS: per run r, X[r] = P[:, r]^T B (rows of B four at a time); X = exp(max(X, floor)) in one pass;
    GT[:, r] = B X[r]^T (K dot products per run)."""
    K, R = P.shape
    N = B.shape[1]
    zero = floor - floor
    for r in range(R):
        for i in range(N):
            X[r, i] = zero
        for k0 in range(0, K, 4):
            # rows past the end count with weight 0 (exact: x + 0 * b = x for finite b)
            k1, k2, k3 = min(k0 + 1, K - 1), min(k0 + 2, K - 1), min(k0 + 3, K - 1)
            p0 = P[k0, r]
            p1 = P[k1, r] if k0 + 1 < K else zero
            p2 = P[k2, r] if k0 + 2 < K else zero
            p3 = P[k3, r] if k0 + 3 < K else zero
            for i in range(N):
                X[r, i] = X[r, i] + p0 * B[k0, i] + p1 * B[k1, i] + p2 * B[k2, i] + p3 * B[k3, i]
    _floored_exp_all(X, floor)
    _dots(B, X, GT, zero)


@njit(**_JIT)
def _floored_exp_all(X, floor):
    """X = exp(max(X, floor)) in place, in one pass (X C-ordered)."""
    x = X.reshape(X.size)
    for i in range(x.size):
        x[i] = floored_exp(x[i], floor)


@njit(**_JIT)
def _sums_blas(P, B, GT, X, floor):
    """BLAS: X = P^T B (one product), X = exp(max(X, floor)) in one pass, GT = B X^T (one product)."""
    np.dot(P.T, B, X)
    _floored_exp_all(X, floor)
    np.dot(B, X.T, GT)


@njit(**_JIT)
def _weight_sums(P, B, GT, work, floor, layout):
    if layout == BLAS:
        _sums_blas(P, B, GT, work, floor)
    else:
        _sums_loops(P, B, GT, work, floor)


def workspace_shape(layout: int, runs: int, samples: int) -> tuple[int, int]:
    """Shape of the workspace that ``weight_sums`` needs (a C-ordered matrix of the dtype): X (R, N)."""
    return (runs, samples)


def weight_sums(P, B, GT, work, floor, layout) -> None:
    """GT = B exp(max(P^T B, floor))^T in place (P (K, R), B (K, N), GT (K, R) C-ordered, one dtype;
    ``work``: a matrix of ``workspace_shape``; ``floor`` of the dtype)."""
    _weight_sums(P, B, GT, work, floor, layout)


# ---- the GD loop -----------------------------------------------------------------------------------------
@njit(**_JIT)
def _log_loss(P, GT, out):
    """out = log s - c, in float64."""
    K, R = P.shape
    for r in range(R):
        out[r] = math.log(np.float64(GT[K - 1, r])) - np.float64(P[K - 1, r])


def log_loss(P, GT, out) -> None:
    _log_loss(P, GT, out)


@njit(**_JIT)
def _gd_update(P, GT, m, log_loss):
    """The GD update, as in _fused.c:  P[:-1] -= (m / s) G;  P[-1] = m |G|^2 / s^2 - log L  (the predicted shift)."""
    K, R = P.shape
    for r in range(R):
        m[r] /= np.float64(GT[K - 1, r])
        P[K - 1, r] = 0
    for k in range(K - 1):
        for r in range(R):
            g = GT[k, r]
            P[K - 1, r] += g * g
            P[k, r] -= m[r] * g
    for r in range(R):
        P[K - 1, r] = m[r] * (np.float64(P[K - 1, r]) / np.float64(GT[K - 1, r])) - log_loss[r]


@njit(**_JIT)
def _sign(x):
    return 1.0 if x > 0 else -1.0 if x < 0 else 0.0


@njit(**_JIT)
def _geo_pow(x, e):
    """x^e (x >= 0), through sqrt and products where they exist."""
    if e == 0.5:
        return math.sqrt(x)
    if e == 1.0:
        return x
    if e == 2.0:
        return x * x
    if e == 1.5:
        return x * math.sqrt(x)
    if e == 3.0:
        return x * x * x
    return x ** e


@njit(**_JIT)
def _geo_l1(P, GT, m, log_loss, unit, at, best, dbest):
    """Greedy coordinate descent, in the dtype of P like numpy (the same coordinate, first on ties)."""
    K, R = P.shape
    for r in range(R):
        best[r], dbest[r], at[r] = -1.0, 0.0, 0
    for k in range(K - 1):
        for r in range(R):
            d = GT[k, r] / GT[K - 1, r]
            a = abs(np.float64(d))
            if a > best[r] or (math.isnan(a) and not math.isnan(best[r])):     # numpy's argmax: the first NaN
                best[r], dbest[r], at[r] = a, d, k
    for r in range(R):
        di = P.dtype.type(dbest[r])
        step = P.dtype.type(m[r]) * (P.dtype.type(_sign(di)) if unit else di)
        P[at[r], r] -= step
        P[K - 1, r] = np.float64(di * step) - log_loss[r]


@njit(**_JIT)
def _powers(GT, f, h, total, e):
    """h = a^e and total = sum_k a^(e+1) per run, a = |d| f (f = 1 / max |d|); a square root's loop on its own."""
    K1, R = h.shape
    if e == 0.5:
        for k in range(K1):
            for r in range(R):
                a = abs(np.float64(GT[k, r]) / np.float64(GT[K1, r])) * f[r]
                h[k, r] = math.sqrt(a)
                total[r] += h[k, r] * a
        return
    for k in range(K1):
        for r in range(R):
            a = abs(np.float64(GT[k, r]) / np.float64(GT[K1, r])) * f[r]
            h[k, r] = _geo_pow(a, e)
            total[r] += h[k, r] * a


@njit(**_JIT)
def _geo_steepest(P, GT, m, code, unit, param, top, total, f, pred, h):
    """l2 ("unit"), linf, l_p: Delta = f_r sign(d) (|d| / max |d|)^(q-1), f_r from per-run sums (_fused_kernel.h);
    h: (K - 1, R) scratch for the powers."""
    K, R = P.shape
    q = param / (param - 1.0) if code == 3 else 2.0 if code == 0 else 1.0
    e = q - 1.0
    for r in range(R):
        top[r], total[r], pred[r] = 0.0, 0.0, 0.0
    for k in range(K - 1):
        for r in range(R):
            a = abs(np.float64(GT[k, r]) / np.float64(GT[K - 1, r]))
            top[r] = max(a, top[r])
            total[r] += a
    if code != 2:
        for r in range(R):
            total[r] = 0.0
            f[r] = 1.0 / top[r] if top[r] > 0 else 0.0
        _powers(GT, f, h, total, e)
    for r in range(R):                     # ||a||_q^(2-q) = (sum a^q)^((2-q)/q)
        if code == 2:
            f[r] = m[r] * (1.0 if unit else total[r])
        elif not top[r] > 0:
            f[r] = 0.0
        else:
            f[r] = m[r] * (total[r] ** ((1.0 - q) / q) if unit else total[r] ** ((2.0 - q) / q) * top[r])
    for k in range(K - 1):
        for r in range(R):
            d = np.float64(GT[k, r]) / np.float64(GT[K - 1, r])
            hk = 1.0 if code == 2 else h[k, r]
            delta = P.dtype.type(f[r] * (hk if d > 0 else -hk if d < 0 else 0.0))
            P[k, r] -= delta
            pred[r] += d * np.float64(delta)


@njit(**_JIT)
def _mirror_loop(P, GT, m, e1, e2, pred):
    """P[:-1] -= theta' - theta, theta' = sign(z) |z|^e2, z = sign(theta) |theta|^e1 + m d."""
    K, R = P.shape
    for k in range(K - 1):
        for r in range(R):
            d = np.float64(GT[k, r]) / np.float64(GT[K - 1, r])
            theta = -np.float64(P[k, r])
            z = _sign(theta) * _geo_pow(abs(theta), e1) + m[r] * d
            dt = P.dtype.type(_sign(z) * _geo_pow(abs(z), e2) - theta)
            P[k, r] -= dt
            pred[r] += d * np.float64(dt)


@njit(**_JIT)
def _geo_mirror(P, GT, m, p, pred):
    """Mirror descent with psi = |theta|_p^p / p (p = 3 and 3/2 in loops of their own: products and sqrt)."""
    e1, e2 = p - 1.0, 1.0 / (p - 1.0)
    pred[:] = 0.0
    if e1 == 2.0 and e2 == 0.5:
        _mirror_loop(P, GT, m, 2.0, 0.5, pred)
    elif e1 == 0.5 and e2 == 2.0:
        _mirror_loop(P, GT, m, 0.5, 2.0, pred)
    else:
        _mirror_loop(P, GT, m, e1, e2, pred)


@njit(**_JIT)
def _geo_hypentropy(P, GT, m, beta, top, pred):
    """theta' = 2 beta sinh(asinh(theta / 2 beta) + x), x = m d, as in _fused_kernel.h: the EG+- form
    u e^x - v e^-x (u v = beta^2, the larger of u, v = (sqrt(theta^2 + 4 beta^2) + |theta|) / 2; polynomial
    exps, branch-free) for runs with m max |d| <= 700, the formula itself for the others (so that a step
    overflows where numpy's does)."""
    K, R = P.shape
    b2, low = 2.0 * beta, -710.0
    for r in range(R):
        top[r], pred[r] = 0.0, 0.0
    for k in range(K - 1):
        for r in range(R):
            top[r] = max(top[r], abs(np.float64(GT[k, r]) / np.float64(GT[K - 1, r])))
    for r in range(R):
        top[r] = 1.0 if m[r] * top[r] <= 700.0 else 0.0          # 1: the EG+- form
    for k in range(K - 1):
        for r in range(R):
            d = np.float64(GT[k, r]) / np.float64(GT[K - 1, r])
            theta = -np.float64(P[k, r])
            x = m[r] * d * top[r]
            at = abs(theta)
            big = max(at, b2)
            sc = 1.0 if big < 1e150 else 1e-200
            w = 0.5 * (math.sqrt((at * sc) ** 2 + (b2 * sc) ** 2) / sc + at)
            w2 = beta * beta / w
            E, Em = floored_exp(x, low), floored_exp(-x, low)
            nxt = w * E - w2 * Em if theta >= 0 else w2 * E - w * Em
            dt = P.dtype.type((nxt - theta) * top[r])
            P[k, r] -= dt
            pred[r] += d * np.float64(dt)
    for r in range(R):
        if top[r] == 0.0:
            for k in range(K - 1):
                d = np.float64(GT[k, r]) / np.float64(GT[K - 1, r])
                theta = -np.float64(P[k, r])
                dt = P.dtype.type(b2 * math.sinh(math.asinh(theta / b2) + m[r] * d) - theta)
                P[k, r] -= dt
                pred[r] += d * np.float64(dt)


@njit(**_JIT)
def _geo_update(P, GT, m, log_loss, code, param, acc, at):
    """One step of the geometry ``code`` (GEO_* of numeric.geometry, | 8 for "unit"), as geo_update_ in C."""
    K, R = P.shape
    unit = (code & 8) != 0
    code = code & 7
    if code == 0 and not unit:
        _gd_update(P, GT, m, log_loss)
        return
    if code == 1:
        _geo_l1(P, GT, m, log_loss, unit, at, acc[0], acc[1])
        return
    if code == 4:
        _geo_mirror(P, GT, m, param, acc[3])
    elif code == 5:
        _geo_hypentropy(P, GT, m, param, acc[0], acc[3])
    else:
        _geo_steepest(P, GT, m, code, unit, param, acc[0], acc[1], acc[2], acc[3], acc[4:-1])
    for r in range(R):
        P[K - 1, r] = acc[3, r] - log_loss[r]


@njit(**_JIT)
def _run_steps(P, B, GT, work, layout, m, eta, constant, log_loss, n, floor, s_lo, s_hi, check, code, param, acc,
               at):
    K, R = P.shape
    for t in range(n):
        for r in range(R):
            if check and not math.isfinite(log_loss[r]):
                return t, DIVERGED
            m[r] = eta[r] * math.exp(log_loss[r]) if constant else eta[r]
        _geo_update(P, GT, m, log_loss, code, param, acc, at)
        _weight_sums(P, B, GT, work, floor, layout)
        for r in range(R):
            s = np.float64(GT[K - 1, r])
            if not (s >= s_lo and s <= s_hi):
                return t + 1, UNSAFE
        _log_loss(P, GT, log_loss)
    return n, DONE


def run_steps(P, B, GT, work, layout, eta, constant, log_loss, n, floor, s_lo, s_hi,
              check: bool = True, code: int = 0, param: float = 0.0) -> tuple[int, int]:
    """Up to n steps with multiplier eta_r (normalized) or eta_r L_r (constant), as ``_fused.run_steps``:
    GD, or the step of the geometry ``code`` with ``param`` (``geometry.compiled_geometry``).  Returns
    (steps done, status): DONE; UNSAFE after a step whose shift was unsafe (the caller redoes its weights
    with the exact shift); DIVERGED before a step from a non-finite log L (not checked if ``check`` is
    False).  ``log_loss`` (float64, R) holds log L at P on entry and is kept up to date."""
    R = P.shape[1]
    m, acc, at = np.empty(R, np.float64), np.empty((4 + P.shape[0], R), np.float64), np.empty(R, np.int64)
    done, status = _run_steps(P, B, GT, work, layout, m, eta, bool(constant), log_loss, int(n), floor,
                              float(s_lo), float(s_hi), bool(check), int(code), float(param), acc, at)
    return int(done), int(status)


# ---- the multi-class exponential loss's weights (numeric.fused_multiclass) ------------------------------
@njit(**_JIT)
def _multiclass_weights(G, labels, S, shift, floor, own, column, given):
    R, K, N = G.shape
    for r in range(R):
        g = G[r]
        for n in range(N):
            own[n] = g[labels[n], n]
            g[labels[n], n] = -np.inf
        if not given:
            top = -np.inf
            for k in range(K):
                for n in range(N):
                    z = np.float64(g[k, n] - own[n])
                    if z > top:
                        top = z
            shift[r] = -top
        c = shift[r]
        for n in range(N):
            own[n] = c - own[n]
            column[n] = 0
        for k in range(K):
            for n in range(N):
                e = floored_exp(g[k, n] + own[n], floor)
                g[k, n] = e
                column[n] += e
        total = 0.0
        for n in range(N):
            s = column[n] - g[labels[n], n]            # the own entry holds exp(floor): not a weight
            g[labels[n], n] = -s
            total += np.float64(s)
        S[r] = total


def multiclass_weights(G, labels, S, shift, floor, given: bool = False) -> None:
    """``fused_multiclass``'s weights pass: G (R, K, N) C-ordered float64/float32 in place, labels int64 (N,),
    S float64 (R,) written, shift float64 (R,) written (the exact smallest margins) or, ``given``, read."""
    work = np.empty((2, G.shape[2]), G.dtype)
    _multiclass_weights(G, labels, S, shift, G.dtype.type(floor), work[0], work[1], bool(given))

__all__ = ["BLAS", "DIVERGED", "DONE", "LOOPS", "UNSAFE", "floored_exp", "log_loss", "multiclass_weights", "run_steps",
           "weight_sums", "workspace_shape"]
