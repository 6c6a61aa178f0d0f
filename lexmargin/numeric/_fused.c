/* Fused exponential-loss weights and sums for linear margins (lexmargin.numeric.fused), AVX-512.
 *
 *   weight_sums(P, B, GT, floor):   GT = B exp(max(P^T B, floor))^T
 *   advance(P, B, GT, m, log_loss, floor):  the GD update of P from GT = [G; s], then weight_sums
 *   multiclass_weights(G, labels, S, shift, floor):  the multi-class exponential loss's cotangent
 *                                                    (lexmargin.numeric.fused_multiclass)
 *
 * P (K, R), B (K, N), GT (K, R): C-ordered float64 or float32 arrays (any object with the buffer
 * protocol).  One pass over B does both matrix products and the exponential, which numpy does as two
 * BLAS calls and two elementwise passes.  The kernels are compiled for AVX-512F with a target attribute
 * and used only where the CPU has it (available()); elsewhere lexmargin falls back to numpy.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>
#include <stdint.h>

enum { STEPS_DONE = 0, STEPS_UNSAFE = 1, STEPS_DIVERGED = 2 };
/* geometries of run_steps (lexmargin.numeric.geometry.compiled_geometry), GEO_UNIT or-ed in for the "unit" scale */
enum { GEO_L2 = 0, GEO_L1 = 1, GEO_LINF = 2, GEO_LP = 3, GEO_MIRROR = 4, GEO_HYPENTROPY = 5, GEO_UNIT = 8 };

#if defined(__GNUC__) && (defined(__x86_64__) || defined(_M_X64))
#define HAVE_KERNEL 1
#include <immintrin.h>
#define TARGET __attribute__((target("avx512f,fma")))
#define NOINLINE __attribute__((noinline)) /* one register tile per function: no spills */
#define NB 32 /* samples per block */
#ifdef _OPENMP
#include <omp.h>
#endif

/* values of the given size that fill whole 64-byte lines */
static inline size_t padded_len(size_t count, size_t size) { return (count * size + 63) / 64 * 64 / size; }

/* exp on [floor, 709]: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, Taylor polynomial, 2^n by scalef. */
static inline TARGET __m512d exp_pd(__m512d x) {
    __m512d n = _mm512_roundscale_pd(_mm512_mul_pd(x, _mm512_set1_pd(1.4426950408889634)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512d r = _mm512_fnmadd_pd(n, _mm512_set1_pd(6.93147180369123816490e-01), x);
    r = _mm512_fnmadd_pd(n, _mm512_set1_pd(1.90821492927058770002e-10), r);
    static const double c[] = {1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
                               1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0,
                               1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0};
    __m512d p = _mm512_set1_pd(c[0]);
    for (int i = 1; i < 14; i++) p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(c[i]));
    return _mm512_scalef_pd(p, n);
}

static inline TARGET __m512 exp_ps(__m512 x) {
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    static const float c[] = {1.0f / 40320.0f, 1.0f / 5040.0f, 1.0f / 720.0f, 1.0f / 120.0f, 1.0f / 24.0f,
                              1.0f / 6.0f, 0.5f, 1.0f, 1.0f};
    __m512 p = _mm512_set1_ps(c[0]);
    for (int i = 1; i < 9; i++) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c[i]));
    return _mm512_scalef_ps(p, n);
}

/* exp on [floor, 709] with fewer operations than exp_pd, for the multi-class weights pass (one exponential per
 * output: it costs about a fifth of a fused step on CPUs with one 512-bit FMA port).  x = (k / 16) ln2 + r with k
 * rounded by the 1.5 2^52 shifter (k mod 16 is then in the low bits of t), |r| <= ln2 / 32, e^r - 1 by its degree-7
 * Taylor polynomial (remainder below 2e-18), 2^((k mod 16) / 16) from a 16-entry table (one permute), 2^floor(k / 16)
 * by scalef: 13 floating-point operations instead of 18, within an ulp of exp. */
static const double EXP2_SIXTEENTHS[16] = {
    1.0, 1.0442737824274138, 1.0905077326652577, 1.1387886347566916, 1.189207115002721, 1.241857812073484,
    1.2968395546510096, 1.3542555469368927, 1.4142135623730951, 1.4768261459394993, 1.5422108254079407,
    1.6104903319492543, 1.681792830507429, 1.7562521603732995, 1.8340080864093424, 1.9152065613971474};

static inline TARGET __m512d exp_pd_table(__m512d x) {
    const __m512d shifter = _mm512_set1_pd(6755399441055744.0);
    __m512d t = _mm512_fmadd_pd(x, _mm512_set1_pd(23.083120654223414), shifter);          /* 16 / ln2 */
    __m512d k = _mm512_sub_pd(t, shifter);
    __m512d r = _mm512_fnmadd_pd(k, _mm512_set1_pd(0.04332166910171509), x);              /* ln2 / 16, 21 bits */
    r = _mm512_fnmadd_pd(k, _mm512_set1_pd(2.9683281493947953e-08), r);                  /* the rest */
    __m512d s = _mm512_set1_pd(1.0 / 5040.0);
    static const double c[] = {1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0};
    for (int i = 0; i < 6; i++) s = _mm512_fmadd_pd(s, r, _mm512_set1_pd(c[i]));
    __m512d q = _mm512_mul_pd(s, r);                                                       /* e^r - 1 */
    __m512d T = _mm512_permutex2var_pd(_mm512_loadu_pd(EXP2_SIXTEENTHS), _mm512_castpd_si512(t),
                                       _mm512_loadu_pd(EXP2_SIXTEENTHS + 8));
    return _mm512_scalef_pd(_mm512_fmadd_pd(T, q, T), _mm512_mul_pd(k, _mm512_set1_pd(0.0625)));
}

/* MAX(floor, x) returns x when x is NaN (the second operand), so NaN parameters stay visible. */
#define T double
#define W 8
#define V __m512d
#define M __mmask8
#define SFX f64
#define LOAD _mm512_loadu_pd
#define MLOAD(m, p) _mm512_maskz_loadu_pd(m, p)
#define STORE _mm512_storeu_pd
#define MSTORE _mm512_mask_storeu_pd
#define SET1 _mm512_set1_pd
#define ZERO _mm512_setzero_pd
#define FMADD _mm512_fmadd_pd
#define ADD _mm512_add_pd
#define MAX _mm512_max_pd
#define EXP exp_pd
#define MC_EXP exp_pd_table
#define MLOAD_OR(src, m, p) _mm512_mask_loadu_pd(src, m, p)
#define SUB _mm512_sub_pd
#define MMAX _mm512_mask_max_pd
#define MBLEND _mm512_mask_blend_pd
#define MAXZ_EXP(m, x) _mm512_maskz_mov_pd(m, x)
#define REDUCE_MAX _mm512_reduce_max_pd
#define REDUCE_ADD_D(x) _mm512_reduce_add_pd(x)
#define SQRT_T(x) sqrt(x)
#include "_fused_kernel.h"
#include "_fused_multiclass.h"
#undef MLOAD_OR
#undef SUB
#undef MMAX
#undef MBLEND
#undef MAXZ_EXP
#undef REDUCE_MAX
#undef REDUCE_ADD_D
#undef SQRT_T
#undef T
#undef W
#undef V
#undef M
#undef SFX
#undef LOAD
#undef MLOAD
#undef STORE
#undef MSTORE
#undef SET1
#undef ZERO
#undef FMADD
#undef ADD
#undef MAX
#undef EXP
#undef MC_EXP

#define T float
#define W 16
#define V __m512
#define M __mmask16
#define SFX f32
#define LOAD _mm512_loadu_ps
#define MLOAD(m, p) _mm512_maskz_loadu_ps(m, p)
#define STORE _mm512_storeu_ps
#define MSTORE _mm512_mask_storeu_ps
#define SET1 _mm512_set1_ps
#define ZERO _mm512_setzero_ps
#define FMADD _mm512_fmadd_ps
#define ADD _mm512_add_ps
#define MAX _mm512_max_ps
#define EXP exp_ps
#define MC_EXP exp_ps
#define MLOAD_OR(src, m, p) _mm512_mask_loadu_ps(src, m, p)
#define SUB _mm512_sub_ps
#define MMAX _mm512_mask_max_ps
#define MBLEND _mm512_mask_blend_ps
#define MAXZ_EXP(m, x) _mm512_maskz_mov_ps(m, x)
#define REDUCE_MAX _mm512_reduce_max_ps
#define REDUCE_ADD_D(x) ((double)_mm512_reduce_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(x))) + \
                         (double)_mm512_reduce_add_pd(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)))))
#define SQRT_T(x) ((double)sqrtf((float)(x)))           /* geometry steps: float32's precision, as numpy's */
#include "_fused_kernel.h"
#include "_fused_multiclass.h"

static int cpu_ok(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
}
#else
#define HAVE_KERNEL 0
static int cpu_ok(void) { return 0; }
#endif

static int get_matrix(PyObject *obj, Py_buffer *view, int writable, const char *name) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) return -1;
    if (view->ndim != 2 || (strcmp(view->format, "d") != 0 && strcmp(view->format, "f") != 0) ||
        view->shape[0] > INT_MAX || view->shape[1] > INT_MAX) {
        PyErr_Format(PyExc_ValueError, "%s must be a 2-D C-ordered float64 or float32 array", name);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static int get_vector(PyObject *obj, Py_buffer *view, Py_ssize_t size, const char *name, int writable) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return -1;
    if (view->ndim != 1 || view->shape[0] != size || strcmp(view->format, "d") != 0) {
        PyErr_Format(PyExc_ValueError, "%s must be a float64 vector of length %zd", name, size);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static int bad_threads(int threads) {
    if (threads >= 1) return 0;
    PyErr_SetString(PyExc_ValueError, "threads must be a positive integer");
    return 1;
}

/* The arguments of both functions: P (K, R) written by advance, B (K, N), GT (K, R) written by both. */
typedef struct { Py_buffer P, B, G; } Operands;

static void release(Operands *op) {
    PyBuffer_Release(&op->P);
    PyBuffer_Release(&op->B);
    PyBuffer_Release(&op->G);
}

static int get_operands(PyObject *po, PyObject *bo, PyObject *go, int write_p, Operands *op) {
    if (!cpu_ok()) {
        PyErr_SetString(PyExc_RuntimeError, "the fused kernel needs a CPU with AVX-512F");
        return -1;
    }
    if (get_matrix(po, &op->P, write_p, "P") < 0) return -1;
    if (get_matrix(bo, &op->B, 0, "B") < 0) { PyBuffer_Release(&op->P); return -1; }
    if (get_matrix(go, &op->G, 1, "GT") < 0) { PyBuffer_Release(&op->P); PyBuffer_Release(&op->B); return -1; }
    Py_ssize_t K = op->P.shape[0], R = op->P.shape[1];
    if (op->B.shape[0] != K || op->G.shape[0] != K || op->G.shape[1] != R ||
        strcmp(op->B.format, op->P.format) != 0 || strcmp(op->G.format, op->P.format) != 0) {
        PyErr_SetString(PyExc_ValueError, "need P (K, R), B (K, N), GT (K, R) of one dtype");
        release(op);
        return -1;
    }
    return 0;
}

/* The kernel's workspace: per thread one block of weights and (threads after the first) partial sums;
 * 64-byte aligned, since split vector loads cost a third of the speed.  Free with free(). */
static void *kernel_workspace(int K, int R, int single, int threads) {
    size_t size = single ? sizeof(float) : sizeof(double);
    size_t per_thread = padded_len((size_t)NB * R, size) + padded_len((size_t)K * R, size);
    return aligned_alloc(64, per_thread * size * (size_t)(threads < 1 ? 1 : threads));
}

/* GT = B exp(max(P^T B, floor))^T, without the GIL.  Returns -1 (with an exception) on failure. */
static int run_weight_sums(Operands *op, double floor_value, int threads) {
#if HAVE_KERNEL
    int K = (int)op->P.shape[0], R = (int)op->P.shape[1];
    long N = (long)op->B.shape[1];
    int single = strcmp(op->P.format, "f") == 0;
    void *work = kernel_workspace(K, R, single, threads);
    if (work == NULL) { PyErr_NoMemory(); return -1; }
    Py_BEGIN_ALLOW_THREADS
    if (single)
        fused_f32((const float *)op->P.buf, (const float *)op->B.buf, (float *)op->G.buf, (float *)work, K, R, N,
                  (float)floor_value, threads);
    else
        fused_f64((const double *)op->P.buf, (const double *)op->B.buf, (double *)op->G.buf, (double *)work, K, R,
                  N, floor_value, threads);
    Py_END_ALLOW_THREADS
    free(work);
    return 0;
#else
    PyErr_SetString(PyExc_RuntimeError, "the fused kernel was built without AVX-512 support");
    return -1;
#endif
}

static PyObject *weight_sums(PyObject *self, PyObject *args) {
    PyObject *po, *bo, *go;
    double floor_value;
    Operands op;
    int threads = 1;
    if (!PyArg_ParseTuple(args, "OOOd|i", &po, &bo, &go, &floor_value, &threads) || bad_threads(threads))
        return NULL;
    if (get_operands(po, bo, go, 0, &op) < 0) return NULL;
    int status = run_weight_sums(&op, floor_value, threads);
    release(&op);
    return status < 0 ? NULL : Py_NewRef(Py_None);
}

static PyObject *advance(PyObject *self, PyObject *args) {
    PyObject *po, *bo, *go, *mo, *lo;
    double floor_value;
    Operands op;
    Py_buffer m, ll;
    int threads = 1;
    if (!PyArg_ParseTuple(args, "OOOOOd|i", &po, &bo, &go, &mo, &lo, &floor_value, &threads) ||
        bad_threads(threads))
        return NULL;
    if (get_operands(po, bo, go, 1, &op) < 0) return NULL;
    int K = (int)op.P.shape[0], R = (int)op.P.shape[1], status = -1;
    if (get_vector(mo, &m, R, "multiplier", 0) < 0) goto done;
    if (get_vector(lo, &ll, R, "log_loss", 0) < 0) { PyBuffer_Release(&m); goto done; }
    double *scale = malloc(sizeof(double) * (size_t)R);               /* update_ overwrites its multipliers */
    if (scale == NULL) {
        PyErr_NoMemory();
    } else {
        memcpy(scale, m.buf, sizeof(double) * (size_t)R);
#if HAVE_KERNEL
        if (strcmp(op.P.format, "f") == 0)
            update_f32((float *)op.P.buf, (const float *)op.G.buf, scale, (const double *)ll.buf, K, R);
        else
            update_f64((double *)op.P.buf, (const double *)op.G.buf, scale, (const double *)ll.buf, K, R);
#endif
        free(scale);
    }
    PyBuffer_Release(&m);
    PyBuffer_Release(&ll);
    if (scale != NULL) status = run_weight_sums(&op, floor_value, threads);
done:
    release(&op);
    return status < 0 ? NULL : Py_NewRef(Py_None);
}

static PyObject *log_loss(PyObject *self, PyObject *args) {
    PyObject *po, *go, *oo;
    Py_buffer P, G, out;
    if (!PyArg_ParseTuple(args, "OOO", &po, &go, &oo)) return NULL;
    if (get_matrix(po, &P, 0, "P") < 0) return NULL;
    if (get_matrix(go, &G, 0, "GT") < 0) { PyBuffer_Release(&P); return NULL; }
    int ok = G.shape[0] == P.shape[0] && G.shape[1] == P.shape[1] && strcmp(G.format, P.format) == 0;
    if (!ok) PyErr_SetString(PyExc_ValueError, "need P (K, R) and GT (K, R) of one dtype");
    if (ok && get_vector(oo, &out, P.shape[1], "out", 1) < 0) ok = 0;
    if (ok) {
#if HAVE_KERNEL
        if (strcmp(P.format, "f") == 0)
            log_loss_f32((const float *)P.buf, (const float *)G.buf, (double *)out.buf, (int)P.shape[0],
                         (int)P.shape[1]);
        else
            log_loss_f64((const double *)P.buf, (const double *)G.buf, (double *)out.buf, (int)P.shape[0],
                         (int)P.shape[1]);
#endif
        PyBuffer_Release(&out);
    }
    PyBuffer_Release(&P);
    PyBuffer_Release(&G);
    return ok ? Py_NewRef(Py_None) : NULL;
}

static PyObject *run_steps(PyObject *self, PyObject *args) {
    PyObject *po, *bo, *go, *eo, *lo;
    int constant;
    long n;
    double floor_value, s_lo, s_hi, param = 0;
    Operands op;
    Py_buffer eta, ll;
    int threads = 1, code = GEO_L2;
    if (!PyArg_ParseTuple(args, "OOOOpOlddd|iid", &po, &bo, &go, &eo, &constant, &lo, &n, &floor_value, &s_lo, &s_hi,
                          &threads, &code, &param) || bad_threads(threads))
        return NULL;
    int base = code & ~GEO_UNIT;
    if (code < 0 || base > GEO_HYPENTROPY || (code & GEO_UNIT && base > GEO_LP) ||
        ((base == GEO_LP || base == GEO_MIRROR) && !(param > 1 && isfinite(param))) ||
        (base == GEO_HYPENTROPY && !(param > 0 && isfinite(param)))) {
        PyErr_Format(PyExc_ValueError, "bad geometry code %d with parameter %g", code, param);
        return NULL;
    }
    if (get_operands(po, bo, go, 1, &op) < 0) return NULL;
    int K = (int)op.P.shape[0], R = (int)op.P.shape[1], status = STEPS_DONE;
    long done = -1;
    if (get_vector(eo, &eta, R, "eta", 0) < 0) goto done;
    if (get_vector(lo, &ll, R, "log_loss", 1) < 0) { PyBuffer_Release(&eta); goto done; }
    {
#if HAVE_KERNEL
        int single = strcmp(op.P.format, "f") == 0;
        void *work = kernel_workspace(K, R, single, threads);
        double *m = malloc(sizeof(double) * (6 + (size_t)K) * (size_t)R);   /* the multipliers, geo_update_'s sums */
        if (work == NULL || m == NULL) {
            PyErr_NoMemory();
        } else {
            long N = (long)op.B.shape[1];
            Py_BEGIN_ALLOW_THREADS
            if (single)
                done = run_steps_f32((float *)op.P.buf, (const float *)op.B.buf, (float *)op.G.buf, (float *)work, m,
                                     (const double *)eta.buf, constant, (double *)ll.buf, K, R, N, n,
                                     (float)floor_value, s_lo, s_hi, threads, code, param, &status);
            else
                done = run_steps_f64((double *)op.P.buf, (const double *)op.B.buf, (double *)op.G.buf,
                                     (double *)work, m, (const double *)eta.buf, constant, (double *)ll.buf, K, R,
                                     N, n, floor_value, s_lo, s_hi, threads, code, param, &status);
            Py_END_ALLOW_THREADS
        }
        free(work);
        free(m);
#endif
    }
    PyBuffer_Release(&eta);
    PyBuffer_Release(&ll);
done:
    release(&op);
    return done < 0 ? NULL : Py_BuildValue("(li)", done, status);
}

/* multiclass_weights(G, labels, S, shift, floor, given=False): the multi-class exponential loss's cotangent in
 * place (_fused_multiclass.h); G (R, K, N) C-ordered float64 or float32, labels int64 (N,) in [0, K), S and shift
 * float64 (R,); shift is written (the exact smallest margins) or, given, read. */
static int get_labels(PyObject *obj, Py_buffer *view, Py_ssize_t size, long K) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    int ok = view->ndim == 1 && view->shape[0] == size && view->itemsize == 8 &&
             (strcmp(view->format, "l") == 0 || strcmp(view->format, "q") == 0);
    for (Py_ssize_t n = 0; ok && n < size; n++) {
        int64_t label = ((const int64_t *)view->buf)[n];
        ok = label >= 0 && label < K;
    }
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "labels must be an int64 vector of length %zd with values in [0, %ld)", size, K);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* The labels (N,) in [0, K), S (R,, written) and shift (R,; written when shift_writable) of both multi-class
 * calls, acquired together: 0, or -1 with an exception set and nothing held. */
typedef struct { Py_buffer labels, S, shift; } ClassVectors;

static int get_class_vectors(PyObject *lo, PyObject *so, PyObject *co, long N, int K, int R, int shift_writable,
                             ClassVectors *cv) {
    if (get_labels(lo, &cv->labels, N, K) < 0) return -1;
    if (get_vector(so, &cv->S, R, "S", 1) < 0) {
        PyBuffer_Release(&cv->labels);
        return -1;
    }
    if (get_vector(co, &cv->shift, R, "shift", shift_writable) < 0) {
        PyBuffer_Release(&cv->S);
        PyBuffer_Release(&cv->labels);
        return -1;
    }
    return 0;
}

static void release_class_vectors(ClassVectors *cv) {
    PyBuffer_Release(&cv->shift);
    PyBuffer_Release(&cv->S);
    PyBuffer_Release(&cv->labels);
}

static PyObject *multiclass_weights(PyObject *self, PyObject *args) {
    PyObject *go, *lo, *so, *co;
    double floor_value;
    int given = 0;
    Py_buffer G;
    ClassVectors cv;
    if (!PyArg_ParseTuple(args, "OOOOd|p", &go, &lo, &so, &co, &floor_value, &given)) return NULL;
    if (!cpu_ok()) {
        PyErr_SetString(PyExc_RuntimeError, "the fused kernel needs a CPU with AVX-512F");
        return NULL;
    }
    if (PyObject_GetBuffer(go, &G, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) return NULL;
    if (G.ndim != 3 || (strcmp(G.format, "d") != 0 && strcmp(G.format, "f") != 0) || G.shape[0] > INT_MAX ||
        G.shape[1] < 2 || G.shape[1] > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "G must be a 3-D C-ordered float64 or float32 array (R, K >= 2, N)");
        PyBuffer_Release(&G);
        return NULL;
    }
    int R = (int)G.shape[0], K = (int)G.shape[1];
    long N = (long)G.shape[2];
    int ok = 0;
    if (get_class_vectors(lo, so, co, N, K, R, 1, &cv) < 0) goto release_g;
    {
#if HAVE_KERNEL
        int single = strcmp(G.format, "f") == 0;
        size_t size = single ? sizeof(float) : sizeof(double), lanes = single ? 16 : 8;
        size_t blocks = ((size_t)N + lanes - 1) / lanes, mask_bytes = (single ? 2 : 1) * (size_t)K * blocks;
        size_t base_bytes = padded_len(blocks * lanes, size) * size;
        void *work = aligned_alloc(64, base_bytes + (mask_bytes + 63) / 64 * 64);
        if (work == NULL) {
            PyErr_NoMemory();
        } else {
            void *masks = (char *)work + base_bytes;
            Py_BEGIN_ALLOW_THREADS
            if (given && single)
                multiclass_weights_shifted_f32((float *)G.buf, (const int64_t *)cv.labels.buf, (double *)cv.S.buf,
                                               (const double *)cv.shift.buf, (__mmask16 *)masks, R, K, N,
                                               (float)floor_value);
            else if (given)
                multiclass_weights_shifted_f64((double *)G.buf, (const int64_t *)cv.labels.buf, (double *)cv.S.buf,
                                               (const double *)cv.shift.buf, (__mmask8 *)masks, R, K, N, floor_value);
            else if (single)
                multiclass_weights_f32((float *)G.buf, (const int64_t *)cv.labels.buf, (double *)cv.S.buf,
                                       (double *)cv.shift.buf, (__mmask16 *)masks, (float *)work, R, K, N,
                                       (float)floor_value);
            else
                multiclass_weights_f64((double *)G.buf, (const int64_t *)cv.labels.buf, (double *)cv.S.buf,
                                       (double *)cv.shift.buf, (__mmask8 *)masks, (double *)work, R, K, N,
                                       floor_value);
            Py_END_ALLOW_THREADS
            free(work);
            ok = 1;
        }
#endif
    }
    release_class_vectors(&cv);
release_g:
    PyBuffer_Release(&G);
    return ok ? Py_NewRef(Py_None) : NULL;
}

/* multiclass_step(Wm, Xt, X, labels, grad, S, shift, floor, threads=1): grad = C X and S of the multi-class
 * exponential loss at Wm (R K, d) with the given shifts (_fused_multiclass.h, multiclass_step_), the outputs never
 * stored whole.  Xt (d, N), X (N, d), grad (R K, d): one dtype, C-ordered; labels int64 (N,) in [0, K); S (written)
 * and shift (read) float64 (R,). */
static int same_float_type(Py_buffer *a, Py_buffer *b) { return strcmp(a->format, b->format) == 0; }

static PyObject *multiclass_step(PyObject *self, PyObject *args) {
    PyObject *wo, *to, *xo, *lo, *go, *so, *co;
    double floor_value;
    int K, threads = 1, ok = 0;
    Py_buffer Wm, Xt, X, grad;
    ClassVectors cv;
    if (!PyArg_ParseTuple(args, "OOOOOOOid|i", &wo, &to, &xo, &lo, &go, &so, &co, &K, &floor_value, &threads) ||
        bad_threads(threads))
        return NULL;
    if (!cpu_ok()) {
        PyErr_SetString(PyExc_RuntimeError, "the fused kernel needs a CPU with AVX-512F");
        return NULL;
    }
    if (get_matrix(wo, &Wm, 0, "W") < 0) return NULL;
    if (get_matrix(to, &Xt, 0, "Xt") < 0) goto release_w;
    if (get_matrix(xo, &X, 0, "X") < 0) goto release_xt;
    if (get_matrix(go, &grad, 1, "grad") < 0) goto release_x;
    long RK = (long)Wm.shape[0], d = (long)Wm.shape[1], N = (long)X.shape[0];
    if (K < 2 || RK % K != 0 || Xt.shape[0] != d || Xt.shape[1] != N || X.shape[1] != d || grad.shape[0] != RK ||
        grad.shape[1] != d || !same_float_type(&Wm, &Xt) || !same_float_type(&Wm, &X) ||
        !same_float_type(&Wm, &grad)) {
        PyErr_SetString(PyExc_ValueError, "multiclass_step needs W (R K, d), Xt (d, N), X (N, d), grad (R K, d) of one "
                                          "float dtype and K >= 2 dividing the rows of W");
        goto release_grad;
    }
    int R = (int)(RK / K);
    if (get_class_vectors(lo, so, co, N, K, R, 0, &cv) < 0) goto release_grad;
    {
#if HAVE_KERNEL
        int single = strcmp(Wm.format, "f") == 0;
        size_t size = single ? sizeof(float) : sizeof(double), lanes = single ? 16 : 8;
        size_t blocks = ((size_t)N + lanes - 1) / lanes, mask_bytes = (single ? 2 : 1) * (size_t)K * blocks;
        size_t per_thread = mc_workspace_len(R, K, threads, size);
        size_t work_bytes = (size_t)threads * per_thread * size;
        void *work = aligned_alloc(64, work_bytes + (mask_bytes + 63) / 64 * 64);
        if (work == NULL) {
            PyErr_NoMemory();
        } else {
            void *masks = (char *)work + work_bytes;
            Py_BEGIN_ALLOW_THREADS
            if (single)
                multiclass_step_f32((const float *)Wm.buf, (const float *)Xt.buf, (const float *)X.buf,
                                    (const int64_t *)cv.labels.buf, (float *)grad.buf, (double *)cv.S.buf,
                                    (const double *)cv.shift.buf, (__mmask16 *)masks, (float *)work, R, K, (int)d, N,
                                    (float)floor_value, threads);
            else
                multiclass_step_f64((const double *)Wm.buf, (const double *)Xt.buf, (const double *)X.buf,
                                    (const int64_t *)cv.labels.buf, (double *)grad.buf, (double *)cv.S.buf,
                                    (const double *)cv.shift.buf, (__mmask8 *)masks, (double *)work, R, K, (int)d, N,
                                    floor_value, threads);
            Py_END_ALLOW_THREADS
            free(work);
            ok = 1;
        }
#endif
    }
    release_class_vectors(&cv);
release_grad:
    PyBuffer_Release(&grad);
release_x:
    PyBuffer_Release(&X);
release_xt:
    PyBuffer_Release(&Xt);
release_w:
    PyBuffer_Release(&Wm);
    return ok ? Py_NewRef(Py_None) : NULL;
}

static PyObject *available(PyObject *self, PyObject *unused) { return PyBool_FromLong(HAVE_KERNEL && cpu_ok()); }

static PyObject *openmp(PyObject *self, PyObject *unused) {
#ifdef _OPENMP
    Py_RETURN_TRUE;
#else
    Py_RETURN_FALSE;
#endif
}

static PyMethodDef methods[] = {
    {"weight_sums", weight_sums, METH_VARARGS,
     "weight_sums(P, B, GT, floor, threads=1): GT = B exp(max(P^T B, floor))^T in place (AVX-512; sample "
     "blocks split over OpenMP threads when built with OpenMP)."},
    {"advance", advance, METH_VARARGS,
     "advance(P, B, GT, multiplier, log_loss, floor, threads=1): P[:-1] -= (m / s) G and P[-1] = m |G|^2 / s^2 - log L "
     "(GT = [G; s]), then weight_sums (multiplier, log_loss: float64 vectors)."},
    {"run_steps", run_steps, METH_VARARGS,
     "run_steps(P, B, GT, eta, constant, log_loss, n, floor, s_lo, s_hi, threads=1, geometry=0, param=0) -> (steps "
     "done, status): up to n steps (multiplier eta, or eta * L if constant) without the GIL, GD or the geometry's step "
     "(0 l2, 1 l1, 2 linf, 3 lp with p = param, 4 mirror lp, 5 hypentropy with beta = param; | 8: unit scale); status 0 "
     "done, 1 unsafe shift after the last step, 2 non-finite log L before the next."},
    {"log_loss", log_loss, METH_VARARGS, "log_loss(P, GT, out): out = log s - c (float64)."},
    {"multiclass_weights", multiclass_weights, METH_VARARGS,
     "multiclass_weights(G, labels, S, shift, floor, given=False): G (R, K, N) of outputs becomes the cotangent of the "
     "multi-class exponential loss's shifted weights in place; S = their sums, shift = the smallest margins (float64, "
     "R); given=True: shift is read (one pass) instead of computed."},
    {"multiclass_step", multiclass_step, METH_VARARGS,
     "multiclass_step(W, Xt, X, labels, grad, S, shift, K, floor, threads=1): grad = C X and S = the sums of the "
     "multi-class exponential loss's weights at W (R K, d) with the given shifts (float64, R), block by block without "
     "storing the outputs (runs split over OpenMP threads when built with OpenMP)."},
    {"available", available, METH_NOARGS, "Whether this CPU can run the kernel."},
    {"openmp", openmp, METH_NOARGS, "Whether the kernel was built with OpenMP (threads > 1 then splits the work)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fused", NULL, -1, methods};

PyMODINIT_FUNC PyInit__fused(void) { return PyModule_Create(&module); }
