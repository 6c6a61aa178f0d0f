/* The multi-class exponential loss's weights, in place (included by _fused.c once per float type, with the
 * macros T, W, V, M, SFX, LOAD, MLOAD_OR, STORE, MSTORE, SET1, ZERO, ADD, SUB, MAX, EXP, REDUCE_MAX).
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
        V e = MAXZ_EXP(wrong, EXP(MAX(vfloor, ADD(MLOAD_OR(ZERO(), valid, row), shifted))));
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
static TARGET void MC_CAT(multiclass_weights_shifted_, SFX)(T *G, const int64_t *labels, double *S,
                                                            const double *shift, M *own, int R, int K, long N,
                                                            T floor_value) {
    const long blocks = (N + W - 1) / W, tail = N % W;
    const M full = (M)~(M)0, last = tail ? (M)(((M)1 << tail) - 1) : full;
    const V vfloor = SET1(floor_value);
    MC_CAT(own_masks_, SFX)(labels, own, K, N);
    for (int r = 0; r < R; r++) {
        T *g = G + (long)r * K * N;
        const V c = SET1((T)shift[r]);
        V acc_all = ZERO();
        for (long b = 0; b < blocks; b++) {
            long n = b * W;
            M valid = b == blocks - 1 ? last : full;
            V mine = ZERO();
            for (int k = 0; k < K; k++)
                mine = MBLEND(own[k * blocks + b], mine, MLOAD_OR(ZERO(), valid, g + (long)k * N + n));
            acc_all = ADD(acc_all, MC_CAT(weights_block_, SFX)(g, N, n, valid, own, blocks, b, K, SUB(c, mine), vfloor));
        }
        S[r] = REDUCE_ADD_D(acc_all);
    }
}

#undef MC_CAT
#undef MC_CAT_
