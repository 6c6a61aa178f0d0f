/* The multi-class exponential loss's weights, in place (included by _fused.c once per float type, with the
 * macros T, W, V, M, SFX, LOAD, MLOAD_OR, STORE, MSTORE, SET1, ZERO, ADD, SUB, MAX, MC_EXP (the exponential:
 * exp_pd_table in float64), REDUCE_MAX).
 *
 * For one run, G (K, N) holds the outputs g_k(x_n).  With z_{k,n} = g_k - g_{y_n} (the margin rows are
 * f_{n,k} = -z_{k,n}, k != y_n) and the shift c = -max_{k != y_n} z_{k,n} (the smallest margin), G becomes the
 * cotangent of sum_{n, k != y_n} e_{k,n}, e = exp(max(z + c, floor)):
 *
 *     G[k, n] = e_{k,n} (k != y_n),   G[y_n, n] = -sum_{k != y_n} e_{k,n},
 *
 * S = sum of all e, so that log L = log S - c and grad_W log L = G X / S.  Two vectorized passes over the
 * run's K x N block, W samples at a time, with the samples' own classes as precomputed masks (no gathers):
 * g_{y_n} and the largest z, then exp, the column sums in registers and the own entries. */
#define MC_CAT_(a, b) a##b
#define MC_CAT(a, b) MC_CAT_(a, b)
/* own[k * blocks + b]: the mask of the samples of block b (W samples from b W) whose label is k. */
static void MC_CAT(own_masks_, SFX)(const int64_t *labels, M *own, int K, long N) {
    long blocks = (N + W - 1) / W;
    memset(own, 0, sizeof(M) * (size_t)K * (size_t)blocks);
    for (long n = 0; n < N; n++) own[labels[n] * blocks + n / W] |= (M)((M)1 << (n % W));
}

/* One block of W samples (from n, lanes ``valid``) of one run: the wrong classes' weights exp(max(g + shifted,
 * floor)) stored over g, their column sums stored negated on the own entries; returns the column sums. */
static inline TARGET V MC_CAT(weights_block_, SFX)(T *g, long N, long n, M valid, const M *own, long blocks, long b,
                                                   int K, V shifted, V vfloor) {
    V acc = ZERO();
    for (int k = 0; k < K; k++) {
        T *row = g + (long)k * N + n;
        M wrong = (M)(valid & (M)~own[k * blocks + b]);
        V e = MAXZ_EXP(wrong, MC_EXP(MAX(vfloor, ADD(MLOAD_OR(ZERO(), valid, row), shifted))));
        MSTORE(row, wrong, e);
        acc = ADD(acc, e);
    }
    for (int k = 0; k < K; k++) MSTORE(g + (long)k * N + n, own[k * blocks + b], SUB(ZERO(), acc));
    return acc;
}

static TARGET void MC_CAT(multiclass_weights_, SFX)(T *G, const int64_t *labels, double *S, double *shift,
                                                    M *own, T *base, int R, int K, long N, T floor_value) {
    const long blocks = (N + W - 1) / W, tail = N % W;
    const M full = (M)~(M)0, last = tail ? (M)(((M)1 << tail) - 1) : full;
    const V vfloor = SET1(floor_value), vninf = SET1(-INFINITY);
    MC_CAT(own_masks_, SFX)(labels, own, K, N);
    for (int r = 0; r < R; r++) {
        T *g = G + (long)r * K * N;
        /* pass 1: base[n] = g_{y_n}(x_n) and the largest g_k(x_n) - g_{y_n}(x_n) over k != y_n */
        V best = vninf;
        for (long b = 0; b < blocks; b++) {
            long n = b * W;
            M valid = b == blocks - 1 ? last : full;
            V mine = ZERO(), other = vninf;
            for (int k = 0; k < K; k++) {
                V v = MLOAD_OR(vninf, valid, g + (long)k * N + n);
                M is_own = own[k * blocks + b];
                mine = MBLEND(is_own, mine, v);
                other = MMAX(other, (M)(valid & (M)~is_own), other, v);
            }
            MSTORE(base + n, valid, mine);
            best = MMAX(best, valid, best, SUB(other, mine));
        }
        T c = -REDUCE_MAX(best);
        /* pass 2: the weights exp(max(g - base + c, floor)) of the wrong classes, their column sums on the own */
        V acc_all = ZERO();
        for (long b = 0; b < blocks; b++) {
            long n = b * W;
            M valid = b == blocks - 1 ? last : full;
            V shifted = SUB(SET1(c), MLOAD_OR(ZERO(), valid, base + n));
            acc_all = ADD(acc_all, MC_CAT(weights_block_, SFX)(g, N, n, valid, own, blocks, b, K, shifted, vfloor));
        }
        S[r] = REDUCE_ADD_D(acc_all);
        shift[r] = (double)c;
    }
}

/* The same weights with a given shift (shift[r] read, not written): one pass, the K rows of a block of W samples
 * loaded once (the own outputs blended from them), then the exponentials and the own entries.  The caller checks
 * that S shows the shift safe (no overflow, no weight lost to the floor) and redoes the run with the exact shift
 * otherwise. */
/* One run's weights with the shift c over ``count`` samples from column m0 of g (rows of ``stride`` values; the
 * samples' global vector blocks from b0): the own outputs blended from the K rows of each vector, then
 * weights_block_; returns the lane sums. */
static inline TARGET V MC_CAT(shifted_run_, SFX)(T *g, long stride, long count, const M *own, long blocks, long b0,
                                                 int K, V c, V vfloor) {
    V acc = ZERO();
    for (long m = 0; m < count; m += W) {
        long b = b0 + m / W;
        M valid = count - m >= W ? (M)~(M)0 : (M)(((unsigned long long)1 << (count - m)) - 1);
        V mine = ZERO();
        for (int k = 0; k < K; k++)
            mine = MBLEND(own[k * blocks + b], mine, MLOAD_OR(ZERO(), valid, g + (long)k * stride + m));
        acc = ADD(acc, MC_CAT(weights_block_, SFX)(g, stride, m, valid, own, blocks, b, K, SUB(c, mine), vfloor));
    }
    return acc;
}

static TARGET void MC_CAT(multiclass_weights_shifted_, SFX)(T *G, const int64_t *labels, double *S,
                                                            const double *shift, M *own, int R, int K, long N,
                                                            T floor_value) {
    const long blocks = (N + W - 1) / W;
    const V vfloor = SET1(floor_value);
    MC_CAT(own_masks_, SFX)(labels, own, K, N);
    for (int r = 0; r < R; r++) {
        V acc = MC_CAT(shifted_run_, SFX)(G + (long)r * K * N, N, N, own, blocks, 0, K, SET1((T)shift[r]), vfloor);
        S[r] = REDUCE_ADD_D(acc);       /* a macro that reads its argument twice in float32 */
    }
}


/* ---- the fused step: outputs, weights and gradient block by block --------------------------------------------
 * For the rows q = r K + k (runs ra..rb-1) of Wm (R K, d) and MC_NB samples at a time from n:
 *   phase 1  Gb (rows, MC_NB) = Wm Xt[:, n:n+nb]      4 rows x 4W samples register tiles over d
 *   weights  of each run on Gb with its given shift   (weights_block_, as multiclass_weights_shifted_)
 *   phase 2  grad (rows, d) += Gb X[n:n+nb]           4 rows x 4W columns register tiles over the block's samples
 * Gb (rows x MC_NB values: 655 KB at R K = 640 in float64) stays in L2 and the slices of Xt and X a tile loop
 * reads stay in L1, so the outputs never travel to memory (the unfused step writes and reads the R K N outputs
 * three times).  Runs go in groups whose Gb fits in MC_GROUP_BYTES (all 64 runs of the size in one group):
 * many runs or classes keep Gb in L2 and the workspace bounded.  Each row's sums run in a fixed order whatever the
 * rows around it: the result of a run does not depend on how the runs are grouped or split over threads. */
#define MC_NB 128
#ifndef MC_GROUP_BYTES
#define MC_GROUP_BYTES ((size_t)1 << 20)
/* runs per group and the workspace (values) of one thread that takes up to ceil(R / threads) runs */
static inline int mc_group_runs(int K, size_t size) {
    size_t per_run = (size_t)K * MC_NB * size;
    return per_run >= MC_GROUP_BYTES ? 1 : (int)(MC_GROUP_BYTES / per_run);
}

static inline size_t mc_workspace_len(int R, int K, int threads, size_t size) {
    int runs = (R + threads - 1) / threads, group = mc_group_runs(K, size);
    return padded_len((size_t)(runs < group ? runs : group) * K * MC_NB, size);
}
#endif
#define MC_STORE_ROW(i) if (ni > i) { T *dst = C + (long)(q0 + i) * ldc + c0; \
    if (accumulate) { \
        PUT(dst, 0, ADD(MLOAD(nv > 1 ? ALL : mask, dst), a##i##0)) \
        PUT(dst, 1, ADD(MLOAD(nv > 2 ? ALL : mask, dst + W), a##i##1)) \
        PUT(dst, 2, ADD(MLOAD(nv > 3 ? ALL : mask, dst + 2 * W), a##i##2)) \
        PUT(dst, 3, ADD(MLOAD(mask, dst + 3 * W), a##i##3)) \
    } else { \
        PUT(dst, 0, a##i##0) PUT(dst, 1, a##i##1) PUT(dst, 2, a##i##2) PUT(dst, 3, a##i##3) \
    } }

/* One register tile of C (+)= A B for both phases: rows q0 + i (i < ni) of C and A, nv vectors of columns from c0
 * (the last masked), the sum over ``inner`` entries of A's rows (broadcast) times B's rows (vectors).
 *   phase 1: A = Wm (lda = d), B = Xt + n (ldb = N), C = Gb (ldc = MC_NB), inner = d, stored;
 *   phase 2: A = Gb (lda = MC_NB), B = X + n d (ldb = d), C = grad (ldc = d), inner = nb, accumulated. */
static inline __attribute__((always_inline)) TARGET void NAME(mc_tile_body_)(const T *A, long lda, const T *B,
        long ldb, int inner, T *C, long ldc, int accumulate, int q0, int ni, int c0, int nv, M mask) {
    DECL(0) DECL(1) DECL(2) DECL(3)
    const T *a0 = A + (long)q0 * lda, *a1 = ni > 1 ? a0 + lda : a0, *a2 = ni > 2 ? a1 + lda : a0;
    const T *a3 = ni > 3 ? a2 + lda : a0, *brow = B + c0;
    for (int k = 0; k < inner; k++, brow += ldb) {
        LOAD4_PART(brow)
        V b;
        b = SET1(a0[k]); ROW_PART(0)
        if (ni > 1) { b = SET1(a1[k]); ROW_PART(1) }
        if (ni > 2) { b = SET1(a2[k]); ROW_PART(2) }
        if (ni > 3) { b = SET1(a3[k]); ROW_PART(3) }
    }
    MC_STORE_ROW(0) MC_STORE_ROW(1) MC_STORE_ROW(2) MC_STORE_ROW(3)
}

static TARGET NOINLINE void NAME(mc_tile_)(const T *A, long lda, const T *B, long ldb, int inner, T *C, long ldc,
                                           int accumulate, int q0, int c0) {
    NAME(mc_tile_body_)(A, lda, B, ldb, inner, C, ldc, accumulate, q0, 4, c0, 4, ALL);
}

static TARGET NOINLINE void NAME(mc_tile_part_)(const T *A, long lda, const T *B, long ldb, int inner, T *C, long ldc,
                                                int accumulate, int q0, int ni, int c0, int nv, M mask) {
    NAME(mc_tile_body_)(A, lda, B, ldb, inner, C, ldc, accumulate, q0, ni, c0, nv, mask);
}

/* C (rows, columns) (+)= A B by register tiles, column slices of 4W outermost: a slice of B stays in L1 while
 * every row of A passes. */
static TARGET void NAME(mc_product_)(const T *A, long lda, const T *B, long ldb, int inner, T *C, long ldc,
                                     int accumulate, int rows, int columns) {
    for (int c0 = 0; c0 < columns; c0 += TW) {
        M mask;
        int nv = NAME(tile_vectors_)(columns, c0, &mask), q0 = 0;
        if (nv == 4 && mask == ALL)
            for (; q0 + 4 <= rows; q0 += 4) NAME(mc_tile_)(A, lda, B, ldb, inner, C, ldc, accumulate, q0, c0);
        for (; q0 < rows; q0 += 4)
            NAME(mc_tile_part_)(A, lda, B, ldb, inner, C, ldc, accumulate, q0, rows - q0 < 4 ? rows - q0 : 4, c0, nv,
                                mask);
    }
}

/* The weights of runs ra..rb-1 on the block's outputs (Gb holds their rows from row 0), S[r] += their sum. */
static TARGET void NAME(mc_block_weights_)(T *Gb, const M *own, double *S, const double *shift, int K, long N,
                                           long n, int nb, int ra, int rb, V vfloor) {
    for (int r = ra; r < rb; r++) {
        V acc = MC_CAT(shifted_run_, SFX)(Gb + (long)(r - ra) * K * MC_NB, MC_NB, nb, own, (N + W - 1) / W, n / W, K,
                                          SET1((T)shift[r]), vfloor);
        S[r] += REDUCE_ADD_D(acc);
    }
}

/* grad rows and S of runs ra..rb-1 (one group, see above); Gb: (rb - ra) K x MC_NB values of workspace. */
static TARGET void NAME(mc_group_)(const T *Wm, const T *Xt, const T *X, const M *own, T *grad, double *S,
                                  const double *shift, T *Gb, int K, int d, long N, int ra, int rb, V vfloor) {
    const int rows = (rb - ra) * K;
    const T *Wr = Wm + (long)ra * K * d;
    T *gr = grad + (long)ra * K * d;
    memset(gr, 0, sizeof(T) * (size_t)rows * (size_t)d);
    for (int r = ra; r < rb; r++) S[r] = 0.0;
    for (long n = 0; n < N; n += MC_NB) {
        int nb = N - n < MC_NB ? (int)(N - n) : MC_NB;
        NAME(mc_product_)(Wr, d, Xt + n, N, d, Gb, MC_NB, 0, rows, nb);                 /* phase 1: outputs */
        NAME(mc_block_weights_)(Gb, own, S, shift, K, N, n, nb, ra, rb, vfloor);
        NAME(mc_product_)(Gb, MC_NB, X + n * d, d, nb, gr, d, 1, rows, d);              /* phase 2: gradient */
    }
}

/* runs ra..rb-1 group by group */
static TARGET void NAME(mc_runs_)(const T *Wm, const T *Xt, const T *X, const M *own, T *grad, double *S,
                                  const double *shift, T *Gb, int K, int d, long N, int ra, int rb, V vfloor) {
    const int group = mc_group_runs(K, sizeof(T));
    for (int r = ra; r < rb; r += group)
        NAME(mc_group_)(Wm, Xt, X, own, grad, S, shift, Gb, K, d, N, r, rb - r < group ? rb : r + group, vfloor);
}

/* grad (R K, d) = C X and S (R) of the multi-class exponential loss at Wm (R K, d) with the given shifts, C the
 * weights' cotangent (see the top of this file) at G = Wm Xt, never stored whole.  Xt (d, N) and X (N, d) are the
 * same samples in both orders; work: threads x mc_workspace_len(R, K, threads) values for the blocks' outputs,
 * own: the class masks (own_masks_).  threads > 1 (OpenMP) splits the runs. */
static TARGET void NAME(multiclass_step_)(const T *Wm, const T *Xt, const T *X, const int64_t *labels, T *grad,
                                          double *S, const double *shift, M *own, T *work, int R, int K, int d,
                                          long N, T floor_value, int threads) {
    const V vfloor = SET1(floor_value);
    const size_t per_thread = mc_workspace_len(R, K, threads, sizeof(T));
    MC_CAT(own_masks_, SFX)(labels, own, K, N);
#ifdef _OPENMP
    if (threads > 1 && R > 1) {
#pragma omp parallel num_threads(threads)
        {
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
            int ra = (int)((long)R * t / nt), rb = (int)((long)R * (t + 1) / nt);
            if (rb > ra)
                NAME(mc_runs_)(Wm, Xt, X, own, grad, S, shift, work + t * per_thread, K, d, N, ra, rb, vfloor);
        }
        return;
    }
#endif
    (void)per_thread;
    NAME(mc_runs_)(Wm, Xt, X, own, grad, S, shift, work, K, d, N, 0, R, vfloor);
}

#undef MC_STORE_ROW
#undef MC_CAT
#undef MC_CAT_
#undef NAME
#undef TW
#undef ALL
#undef LOAD4_PART
#undef PUT
#undef EXP_STORE_PART
#undef ADD_STORE_PART
#undef ROW_PART
#undef ROW
#undef DECL
#undef LOAD4
#undef EXP_STORE
#undef ADD_STORE
