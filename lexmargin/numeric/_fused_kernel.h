/* One precision of the fused kernel, included by _fused.c once per precision with these macros set:
 *   T (double/float), W (lanes per vector), V (vector type), M (mask type), SFX (name suffix),
 *   LOAD, MLOAD, STORE, MSTORE, SET1, ZERO, FMADD, ADD, MAX, EXP (vector ops).
 * It defines fused_SFX(P, B, GT, work, K, R, N, floor, threads): GT (K, R) = B e^T with e = exp(max(P^T B, floor)),
 * and run_steps_SFX, the step loop around it (GD, or a geometry's step: geo_update_SFX).
 *
 * Samples are processed in blocks of NB.  Phase 1 computes the block's weights X^T (NB, R) in 4 x 4-vector
 * register tiles (4 samples x 4W runs), applying floor and exp before the tile leaves the registers;
 * phase 2 adds B_block X^T to GT in 4 x 4-vector tiles (4 rows of B x 4W runs).  The block of B (K x NB)
 * and X^T stay in L1/L2 for both phases, so B is read from memory once per call.
 */
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define NAME(x) CAT(x, SFX)
#define TW (4 * W) /* runs per tile */

#define ROW(i) a##i##0 = FMADD(b, v0, a##i##0); a##i##1 = FMADD(b, v1, a##i##1); \
               a##i##2 = FMADD(b, v2, a##i##2); a##i##3 = FMADD(b, v3, a##i##3);
#define DECL(i) V a##i##0 = ZERO(), a##i##1 = ZERO(), a##i##2 = ZERO(), a##i##3 = ZERO();
#define LOAD4(src) V v0 = LOAD(src), v1 = LOAD((src) + W), v2 = LOAD((src) + 2 * W), v3 = LOAD((src) + 3 * W);
#define EXP_STORE(i) { T *dst = XT + (long)(i0 + i) * R + r0; \
    STORE(dst, EXP(MAX(floor, a##i##0))); STORE(dst + W, EXP(MAX(floor, a##i##1))); \
    STORE(dst + 2 * W, EXP(MAX(floor, a##i##2))); STORE(dst + 3 * W, EXP(MAX(floor, a##i##3))); }
#define ADD_STORE(i) { T *dst = GT + (long)(k0 + i) * R + r0; \
    STORE(dst, ADD(LOAD(dst), a##i##0)); STORE(dst + W, ADD(LOAD(dst + W), a##i##1)); \
    STORE(dst + 2 * W, ADD(LOAD(dst + 2 * W), a##i##2)); STORE(dst + 3 * W, ADD(LOAD(dst + 3 * W), a##i##3)); }

/* phase 1, full tile: XT[i0 + i, r0 + ...] for samples n..n+3 and runs r0..r0+4W-1 */
static TARGET NOINLINE void NAME(weights_tile_)(const T *P, const T *B, T *XT, int K, int R, long N, long n, int i0, int r0,
                                        V floor) {
    DECL(0) DECL(1) DECL(2) DECL(3)
    const T *prow = P + r0, *brow = B + n;
    for (int k = 0; k < K; k++, prow += R, brow += N) {
        LOAD4(prow)
        V b;
        b = SET1(brow[0]); ROW(0)
        b = SET1(brow[1]); ROW(1)
        b = SET1(brow[2]); ROW(2)
        b = SET1(brow[3]); ROW(3)
    }
    EXP_STORE(0) EXP_STORE(1) EXP_STORE(2) EXP_STORE(3)
}

/* phase 2, full tile: GT[k0..k0+3, r0..r0+4W-1] += sum_m B[k0 + i, n + m] XT[m, r] */
static TARGET NOINLINE void NAME(sums_tile_)(const T *B, const T *XT, T *GT, int R, long N, long n, int nb, int k0, int r0) {
    DECL(0) DECL(1) DECL(2) DECL(3)
    const T *xrow = XT + r0;
    const T *b0 = B + (long)k0 * N + n, *b1 = b0 + N, *b2 = b1 + N, *b3 = b2 + N;
    for (int m = 0; m < nb; m++, xrow += R) {
        LOAD4(xrow)
        V b;
        b = SET1(b0[m]); ROW(0)
        b = SET1(b1[m]); ROW(1)
        b = SET1(b2[m]); ROW(2)
        b = SET1(b3[m]); ROW(3)
    }
    ADD_STORE(0) ADD_STORE(1) ADD_STORE(2) ADD_STORE(3)
}

/* Partial tiles at the edges: ni (1..4) samples or rows x nv (1..4) vectors of runs, the last one masked.
 * Missing rows and vectors are skipped; their accumulators stay zero and are not stored. */
#define ALL ((M)~(M)0)
#define LOAD4_PART(src) \
    V v0 = MLOAD(nv > 1 ? ALL : mask, src); \
    V v1 = nv > 1 ? MLOAD(nv > 2 ? ALL : mask, (src) + W) : ZERO(); \
    V v2 = nv > 2 ? MLOAD(nv > 3 ? ALL : mask, (src) + 2 * W) : ZERO(); \
    V v3 = nv > 3 ? MLOAD(mask, (src) + 3 * W) : ZERO();
#define PUT(dst, j, val) if (nv > j) { if (nv == j + 1) MSTORE((dst) + j * W, mask, val); \
                                       else STORE((dst) + j * W, val); }
#define EXP_STORE_PART(i) if (ni > i) { T *dst = XT + (long)(i0 + i) * R + r0; \
    PUT(dst, 0, EXP(MAX(floor, a##i##0))) PUT(dst, 1, EXP(MAX(floor, a##i##1))) \
    PUT(dst, 2, EXP(MAX(floor, a##i##2))) PUT(dst, 3, EXP(MAX(floor, a##i##3))) }
#define ADD_STORE_PART(i) if (ki > i) { T *dst = GT + (long)(k0 + i) * R + r0; \
    PUT(dst, 0, ADD(MLOAD(nv > 1 ? ALL : mask, dst), a##i##0)) \
    PUT(dst, 1, ADD(MLOAD(nv > 2 ? ALL : mask, dst + W), a##i##1)) \
    PUT(dst, 2, ADD(MLOAD(nv > 3 ? ALL : mask, dst + 2 * W), a##i##2)) \
    PUT(dst, 3, ADD(MLOAD(mask, dst + 3 * W), a##i##3)) }

/* skip the FMAs of missing vectors (v_j = 0 there): a partial tile costs about what it computes */
#define ROW_PART(i) { a##i##0 = FMADD(b, v0, a##i##0); \
                      if (nv > 1) { a##i##1 = FMADD(b, v1, a##i##1); } \
                      if (nv > 2) { a##i##2 = FMADD(b, v2, a##i##2); } \
                      if (nv > 3) { a##i##3 = FMADD(b, v3, a##i##3); } }

static TARGET NOINLINE void NAME(weights_part_)(const T *P, const T *B, T *XT, int K, int R, long N, long n, int i0,
                                                int ni, int r0, int nv, M mask, V floor) {
    DECL(0) DECL(1) DECL(2) DECL(3)
    const T *prow = P + r0, *brow = B + n;
    for (int k = 0; k < K; k++, prow += R, brow += N) {
        LOAD4_PART(prow)
        V b;
        b = SET1(brow[0]); ROW_PART(0)
        if (ni > 1) { b = SET1(brow[1]); ROW_PART(1) }
        if (ni > 2) { b = SET1(brow[2]); ROW_PART(2) }
        if (ni > 3) { b = SET1(brow[3]); ROW_PART(3) }
    }
    EXP_STORE_PART(0) EXP_STORE_PART(1) EXP_STORE_PART(2) EXP_STORE_PART(3)
}

static TARGET NOINLINE void NAME(sums_part_)(const T *B, const T *XT, T *GT, int R, long N, long n, int nb, int k0,
                                             int ki, int r0, int nv, M mask) {
    DECL(0) DECL(1) DECL(2) DECL(3)
    const T *xrow = XT + r0;
    const T *b0 = B + (long)k0 * N + n, *b1 = ki > 1 ? b0 + N : b0, *b2 = ki > 2 ? b1 + N : b0;
    const T *b3 = ki > 3 ? b2 + N : b0;
    for (int m = 0; m < nb; m++, xrow += R) {
        LOAD4_PART(xrow)
        V b;
        b = SET1(b0[m]); ROW_PART(0)
        if (ki > 1) { b = SET1(b1[m]); ROW_PART(1) }
        if (ki > 2) { b = SET1(b2[m]); ROW_PART(2) }
        if (ki > 3) { b = SET1(b3[m]); ROW_PART(3) }
    }
    ADD_STORE_PART(0) ADD_STORE_PART(1) ADD_STORE_PART(2) ADD_STORE_PART(3)
}

/* runs r0.. of a tile: how many vectors, and the mask of the last */
static inline int NAME(tile_vectors_)(int R, int r0, M *mask) {
    int left = R - r0 < TW ? R - r0 : TW, nv = (left + W - 1) / W, last = left - (nv - 1) * W;
    *mask = last == W ? ALL : (M)(((unsigned long long)1 << last) - 1);
    return nv;
}

static TARGET void NAME(block_weights_)(const T *P, const T *B, T *XT, int K, int R, long N, long n, int nb,
                                         V floor) {
    for (int r0 = 0; r0 < R; r0 += TW) {
        M mask;
        int nv = NAME(tile_vectors_)(R, r0, &mask), i = 0;
        if (nv == 4 && mask == ALL)
            for (; i + 4 <= nb; i += 4) NAME(weights_tile_)(P, B, XT, K, R, N, n + i, i, r0, floor);
        for (; i < nb; i += 4)
            NAME(weights_part_)(P, B, XT, K, R, N, n + i, i, nb - i < 4 ? nb - i : 4, r0, nv, mask, floor);
    }
}

static TARGET void NAME(block_sums_)(const T *B, const T *XT, T *GT, int K, int R, long N, long n, int nb) {
    for (int r0 = 0; r0 < R; r0 += TW) {
        M mask;
        int nv = NAME(tile_vectors_)(R, r0, &mask), k0 = 0;
        if (nv == 4 && mask == ALL)
            for (; k0 + 4 <= K; k0 += 4) NAME(sums_tile_)(B, XT, GT, R, N, n, nb, k0, r0);
        for (; k0 < K; k0 += 4)
            NAME(sums_part_)(B, XT, GT, R, N, n, nb, k0, K - k0 < 4 ? K - k0 : 4, r0, nv, mask);
    }
}

static TARGET void NAME(blocks_)(const T *P, const T *B, T *GT, T *XT, int K, int R, long N, long b0, long b1,
                                 V floor) {
    for (long i = 0; i < (long)K * R; i++) GT[i] = 0;
    for (long blk = b0; blk < b1; blk++) {
        long n = blk * NB;
        int nb = N - n < NB ? (int)(N - n) : NB;
        NAME(block_weights_)(P, B, XT, K, R, N, n, nb, floor);
        NAME(block_sums_)(B, XT, GT, K, R, N, n, nb);
    }
}

/* GT = B exp(max(P^T B, floor))^T.  work: workspace_size(K, R, threads) values, 64-byte aligned.  With
 * threads > 1 (OpenMP) each thread takes a contiguous range of sample blocks into its own partial sums,
 * added in thread order afterwards: deterministic for a given number of threads. */
static TARGET void NAME(fused_)(const T *P, const T *B, T *GT, T *work, int K, int R, long N, T floor_value,
                                int threads) {
    V floor = SET1(floor_value);
    long nblocks = (N + NB - 1) / NB;
    size_t xt_len = padded_len(NB * (size_t)R, sizeof(T)), g_len = padded_len((size_t)K * R, sizeof(T));
#ifdef _OPENMP
    if (threads > 1 && nblocks > 1) {
        int used = 1;
#pragma omp parallel num_threads(threads)
        {
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
            T *xt = work + t * (xt_len + g_len);
            NAME(blocks_)(P, B, t == 0 ? GT : xt + xt_len, xt, K, R, N, nblocks * t / nt, nblocks * (t + 1) / nt,
                          floor);
            if (t == 0) used = nt;
        }
        for (int t = 1; t < used; t++) {
            const T *g = work + t * (xt_len + g_len) + xt_len;
            for (long i = 0; i < (long)K * R; i++) GT[i] += g[i];
        }
        return;
    }
#endif
    (void)threads;
    (void)g_len;
    NAME(blocks_)(P, B, GT, work, K, R, N, 0, nblocks, floor);
}

/* The GD update from the current [G; s] (GT), with per-run multipliers m (overwritten by m / s):
 *   P[:-1] -= (m / s) G;   P[-1] = m |G|^2 / s^2 - log L   (the predicted shift, see fused.py) */
static TARGET void NAME(update_)(T *P, const T *GT, double *m, const double *log_loss, int K, int R) {
    const T *s = GT + (long)(K - 1) * R;
    T *g2 = P + (long)(K - 1) * R;                                     /* |G|^2 accumulates here first */
    for (int r = 0; r < R; r++) {
        m[r] /= (double)s[r];
        g2[r] = 0;
    }
    for (int k = 0; k < K - 1; k++) {
        const T *g = GT + (long)k * R;
        T *p = P + (long)k * R;
        for (int r = 0; r < R; r++) {
            g2[r] += g[r] * g[r];
            p[r] -= (T)m[r] * g[r];
        }
    }
    for (int r = 0; r < R; r++)
        g2[r] = (T)(m[r] * ((double)g2[r] / (double)s[r]) - log_loss[r]);
}

/* One step of a geometry (geometry.fused_step's arithmetic, per run r, with d = G / s = -grad log L):
 *   P[:-1] -= Delta theta (as T),   P[-1] = <d, Delta theta> - log L   (the predicted shift)
 * code: GEO_* | GEO_UNIT ("unit" scale); param: p of GEO_LP / GEO_MIRROR, beta of GEO_HYPENTROPY.
 * acc: (K + 5) R doubles of workspace.  l1 works in T, like numpy (the same coordinate, first on ties, the same
 * rounding); the others accumulate in double, in loops over the runs that the compiler vectorizes. */
#ifndef GEO_HELPERS
#define GEO_HELPERS
/* exp(x) for |x| <= 700, branch-free: Cody-Waite reduction, degree-13 polynomial, 2^n from the bits of the
 * rounding constant (as the numba kernel's exp; about 1 ulp) */
static inline double geo_exp(double x) {
    static const double c[] = {1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
                               1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0,
                               1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0};
    double t = x * 1.4426950408889634 + 6755399441055744.0, n = t - 6755399441055744.0;
    double r = x - n * 6.93147180369123816490e-01, p = c[0], scale;
    r = r - n * 1.90821492927058770002e-10;
    for (int i = 1; i < 14; i++) p = p * r + c[i];
    int64_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits - 0x4338000000000000LL + 1023) << 52;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}
#endif

/* x^e for x >= 0: sqrt and products for the exponents that have them (the callers' loops are compiled with e
 * a constant where it is one of them); the square root in T (SQRT_T: float's is several times cheaper, and
 * numpy takes it in float32 too) */
static inline double NAME(geo_pow_)(double x, double e) {
    if (e == 0.5) return SQRT_T(x);
    if (e == 1) return x;
    if (e == 2) return x * x;
    if (e == 1.5) return x * SQRT_T(x);
    if (e == 3) return x * x * x;
    return pow(x, e);
}

static TARGET void NAME(geo_l1_)(T *restrict P, const T *restrict GT, const double *restrict m,
                                 const double *restrict log_loss, int K, int R, int unit, double *restrict acc) {
    const T *s = GT + (long)(K - 1) * R;
    double *restrict best = acc, *restrict dbest = acc + R, *restrict at = acc + 2 * R;
    for (int r = 0; r < R; r++) { best[r] = -1; dbest[r] = 0; at[r] = 0; }
    for (int k = 0; k < K - 1; k++)
        for (int r = 0; r < R; r++) {
            T d = GT[(long)k * R + r] / s[r];
            double a = fabs((double)d);
            int take = (a > best[r]) | ((a != a) & (best[r] == best[r]));     /* the first NaN, as argmax */
            best[r] = take ? a : best[r];
            dbest[r] = take ? (double)d : dbest[r];
            at[r] = take ? k : at[r];
        }
    for (int r = 0; r < R; r++) {
        T di = (T)dbest[r], sg = di > 0 ? (T)1 : di < 0 ? (T)-1 : di, step = (T)m[r] * (unit ? sg : di);
        __asm__("" : "+x"(step));              /* rounded before use, as numpy does: no FMA contraction */
        T predicted = di * step;
        __asm__("" : "+x"(predicted));
        P[(long)at[r] * R + r] -= step;
        P[(long)(K - 1) * R + r] = (T)((double)predicted - log_loss[r]);
    }
}

/* geo_steepest_'s l_p loops after max |d|: sum_k a^q, f_r, then Delta (always inlined: e may be a constant) */
static inline __attribute__((always_inline)) void NAME(geo_lp_loops_)(T *restrict P, const T *restrict GT,
        const double *restrict m, int K, int R, int unit, double q, double e, double *restrict acc) {
    double *restrict inv = acc, *restrict top = acc + R, *restrict sum = acc + 2 * R, *restrict pred = acc + 3 * R;
    double *restrict f = acc + 4 * R, *restrict h = acc + 5 * R;              /* h: a^(q-1), (K - 1, R) */
    for (int k = 0; k < K - 1; k++)
        for (int r = 0; r < R; r++) {
            double a = fabs((double)GT[(long)k * R + r] * inv[r]) * top[r], ae = NAME(geo_pow_)(a, e);
            h[(long)k * R + r] = ae;
            sum[r] += ae * a;
        }
    for (int r = 0; r < R; r++)                /* ||a||_q^(2-q) = (sum a^q)^((2-q)/q) */
        f[r] = top[r] > 0 ? m[r] * (unit ? pow(sum[r], (1 - q) / q) : pow(sum[r], (2 - q) / q) / top[r]) : 0;
    for (int k = 0; k < K - 1; k++)
        for (int r = 0; r < R; r++) {
            double d = (double)GT[(long)k * R + r] * inv[r];
            T delta = (T)copysign(f[r] * h[(long)k * R + r], d);
            P[(long)k * R + r] -= delta;
            pred[r] += d * (double)delta;
        }
}

/* steepest descent in l2 ("unit" scale), linf, l_p: with a = |d| / max |d| per run,
 *   Delta = f_r sign(d) a^(q-1),   f_r = m ||a||_q^(2-q) max |d|  (dual)  or  m ||a||_q^(1-q)  (unit);
 * linf (q = 1): f_r = m ||d||_1 (dual) or m (unit). */
static TARGET void NAME(geo_steepest_)(T *restrict P, const T *restrict GT, const double *restrict m, int K, int R,
                                       int code, int unit, double param, double *restrict acc) {
    const T *s = GT + (long)(K - 1) * R;
    double *restrict inv = acc, *restrict top = acc + R, *restrict sum = acc + 2 * R, *restrict pred = acc + 3 * R;
    double *restrict f = acc + 4 * R;
    double q = code == GEO_LP ? param / (param - 1) : code == GEO_L2 ? 2 : 1, e = q - 1;
    for (int r = 0; r < R; r++) { inv[r] = 1 / (double)s[r]; top[r] = 0; sum[r] = 0; pred[r] = 0; }
    for (int k = 0; k < K - 1; k++)
        for (int r = 0; r < R; r++) {
            double a = fabs((double)GT[(long)k * R + r] * inv[r]);
            top[r] = a > top[r] ? a : top[r];
            sum[r] += a;
        }
    if (code == GEO_LINF) {
        for (int r = 0; r < R; r++) f[r] = m[r] * (unit ? 1 : sum[r]);
        for (int k = 0; k < K - 1; k++)
            for (int r = 0; r < R; r++) {
                double d = (double)GT[(long)k * R + r] * inv[r];
                T delta = (T)(d > 0 ? f[r] : d < 0 ? -f[r] : 0.0);
                P[(long)k * R + r] -= delta;
                pred[r] += d * (double)delta;
            }
        return;
    }
    for (int r = 0; r < R; r++) { sum[r] = 0; top[r] = top[r] > 0 ? 1 / top[r] : 0; }   /* top: 1 / max |d| now */
    /* the loops with the exponent a constant where geo_pow has a cheaper form: branch-free, vectorized */
    if (e == 0.5) NAME(geo_lp_loops_)(P, GT, m, K, R, unit, q, 0.5, acc);
    else if (e == 1) NAME(geo_lp_loops_)(P, GT, m, K, R, unit, q, 1, acc);
    else if (e == 2) NAME(geo_lp_loops_)(P, GT, m, K, R, unit, q, 2, acc);
    else NAME(geo_lp_loops_)(P, GT, m, K, R, unit, q, e, acc);
}

/* mirror descent, psi = ||theta||_p^p / p: theta' = sign(z) |z|^(1/(p-1)), z = sign(theta) |theta|^(p-1) + m d */
static inline __attribute__((always_inline)) void NAME(geo_mirror_loop_)(T *restrict P, const T *restrict GT,
        const double *restrict m, int K, int R, double e1, double e2, double *restrict acc) {
    double *restrict inv = acc, *restrict pred = acc + 3 * R;
    for (int k = 0; k < K - 1; k++)
        for (int r = 0; r < R; r++) {
            double d = (double)GT[(long)k * R + r] * inv[r], theta = -(double)P[(long)k * R + r];
            double z = copysign(NAME(geo_pow_)(fabs(theta), e1), theta) + m[r] * d;
            T delta = (T)(copysign(NAME(geo_pow_)(fabs(z), e2), z) - theta);
            P[(long)k * R + r] -= delta;
            pred[r] += d * (double)delta;
        }
}

static TARGET void NAME(geo_mirror_)(T *P, const T *GT, const double *m, int K, int R, double p, double *acc) {
    const T *s = GT + (long)(K - 1) * R;
    double e1 = p - 1, e2 = 1 / (p - 1);
    for (int r = 0; r < R; r++) { acc[r] = 1 / (double)s[r]; acc[3 * R + r] = 0; }
    if (e1 == 2 && e2 == 0.5) NAME(geo_mirror_loop_)(P, GT, m, K, R, 2, 0.5, acc);        /* p = 3 */
    else if (e1 == 0.5 && e2 == 2) NAME(geo_mirror_loop_)(P, GT, m, K, R, 0.5, 2, acc);   /* p = 3/2 */
    else NAME(geo_mirror_loop_)(P, GT, m, K, R, e1, e2, acc);
}

/* hypentropy: theta' = 2 beta sinh(asinh(theta / 2 beta) + x), x = m d.  Runs with max |x| <= 700 (all, unless
 * diverging) take the EG+- form, vectorized: theta = u - v, u v = beta^2, theta' = u e^x - v e^-x, with the larger of
 * u, v = w = (sqrt(theta^2 + 4 beta^2) + |theta|) / 2 (no cancellation), the smaller beta^2 / w, e^-x as a
 * polynomial too (cheaper than a division); the others the formula itself (libm), so that a step overflows
 * where numpy's does. */
static TARGET void NAME(geo_hypentropy_)(T *restrict P, const T *restrict GT, const double *restrict m, int K,
                                         int R, double beta, double *restrict acc) {
    const T *s = GT + (long)(K - 1) * R;
    double *restrict inv = acc, *restrict fast = acc + R, *restrict pred = acc + 3 * R, b2 = 2 * beta;
    int slow = 0;
    for (int r = 0; r < R; r++) { inv[r] = 1 / (double)s[r]; pred[r] = 0; fast[r] = 0; }
    for (int k = 0; k < K - 1; k++)                        /* max |d| per run */
        for (int r = 0; r < R; r++) {
            double a = fabs((double)GT[(long)k * R + r] * inv[r]);
            fast[r] = a > fast[r] ? a : fast[r];
        }
    for (int r = 0; r < R; r++) {
        fast[r] = m[r] * fast[r] <= 700;
        slow |= fast[r] == 0;
    }
    for (int k = 0; k < K - 1; k++)
        for (int r = 0; r < R; r++) {
            double d = (double)GT[(long)k * R + r] * inv[r], theta = -(double)P[(long)k * R + r];
            double x = fast[r] != 0 ? m[r] * d : 0, at = fabs(theta), E = geo_exp(x), Em = geo_exp(-x);
            double big = at > b2 ? at : b2, sc = big < 0x1p500 ? 1 : 0x1p-600;      /* exact scaling: no overflow */
            double h = sqrt((at * sc) * (at * sc) + (b2 * sc) * (b2 * sc)) * (big < 0x1p500 ? 1 : 0x1p600);
            double w = 0.5 * (h + at), w2 = beta * beta / w;                  /* max(u, v), min(u, v) */
            double next = theta >= 0 ? w * E - w2 * Em : w2 * E - w * Em;
            T delta = fast[r] != 0 ? (T)(next - theta) : 0;
            P[(long)k * R + r] -= delta;
            pred[r] += d * (double)delta;
        }
    for (int r = 0; slow && r < R; r++)
        for (int k = 0; fast[r] == 0 && k < K - 1; k++) {
            double d = (double)GT[(long)k * R + r] * inv[r], theta = -(double)P[(long)k * R + r];
            T delta = (T)(b2 * sinh(asinh(theta / b2) + m[r] * d) - theta);
            P[(long)k * R + r] -= delta;
            pred[r] += d * (double)delta;
        }
}

static TARGET void NAME(geo_update_)(T *P, const T *GT, double *m, const double *log_loss, int K, int R, int code,
                                     double param, double *acc) {
    int unit = (code & GEO_UNIT) != 0;
    code &= ~GEO_UNIT;
    if (code == GEO_L2 && !unit) { NAME(update_)(P, GT, m, log_loss, K, R); return; }
    if (code == GEO_L1) { NAME(geo_l1_)(P, GT, m, log_loss, K, R, unit, acc); return; }
    if (code == GEO_MIRROR) NAME(geo_mirror_)(P, GT, m, K, R, param, acc);
    else if (code == GEO_HYPENTROPY) NAME(geo_hypentropy_)(P, GT, m, K, R, param, acc);
    else NAME(geo_steepest_)(P, GT, m, K, R, code, unit, param, acc);
    for (int r = 0; r < R; r++) P[(long)(K - 1) * R + r] = (T)(acc[3 * R + r] - log_loss[r]);
}

/* log L_r = log s_r - c_r (in double) */
static void NAME(log_loss_)(const T *P, const T *GT, double *out, int K, int R) {
    for (int r = 0; r < R; r++)
        out[r] = log((double)GT[(long)(K - 1) * R + r]) - (double)P[(long)(K - 1) * R + r];
}

/* Up to n steps (GD, or the geometry ``code`` with ``param``; m holds (K + 6) R doubles) with multiplier
 * m_r = eta_r (normalized) or eta_r L_r (constant).  Stops early
 * before a step from a non-finite log L (DIVERGED) or after a step whose shift was unsafe (UNSAFE:
 * the caller recomputes the weights with the exact shift).  Returns the number of steps done. */
static TARGET long NAME(run_steps_)(T *P, const T *B, T *GT, T *work, double *m, const double *eta, int constant,
                                    double *log_loss, int K, int R, long N, long n, T floor_value, double s_lo,
                                    double s_hi, int threads, int code, double param, int *status) {
    const T *s = GT + (long)(K - 1) * R;
    *status = STEPS_DONE;
    for (long t = 0; t < n; t++) {
        for (int r = 0; r < R; r++) {
            if (!isfinite(log_loss[r])) { *status = STEPS_DIVERGED; return t; }
            m[r] = constant ? eta[r] * exp(log_loss[r]) : eta[r];
        }
        NAME(geo_update_)(P, GT, m, log_loss, K, R, code, param, m + R);
        NAME(fused_)(P, B, GT, work, K, R, N, floor_value, threads);
        for (int r = 0; r < R; r++)
            if (!((double)s[r] >= s_lo && (double)s[r] <= s_hi)) { *status = STEPS_UNSAFE; return t + 1; }
        NAME(log_loss_)(P, GT, log_loss, K, R);
    }
    return n;
}

/* the macros above are #undef-ed at the end of _fused_multiclass.h, whose fused step uses them too */
