/* The C backend's kernels: per-sample SGD, mini-batch SGD and Adam, gradients, predict.
 *
 * The maths is impls/__init__.py's, quirks included:
 *   forward:  a(0) = f(x) if input_activation else x;  z(l) = W(l) a(l-1) + b(l);
 *             a(l) = f(z(l)) for l < L;  a(L) = f_out(z(L))
 *   backward: delta(L) = delta_scale (a(L) - y);  dW(l) = delta(l) u(l-1)^T,  db(l) = delta(l),
 *             u(l-1) = a(l-1), or with grad_bug u(0) = x and u(l-1) = z(l-1) for l > 1;
 *             delta(l-1) = (W(l)^T delta(l)) * f'(z(l-1)),  relu'(0) = relu_grad0.
 *
 * theta holds every layer as W(l) (n_l x n_(l-1), row-major) followed by b(l) (n_l).
 * Per sample, z and a of every layer live in two flat vectors at offsets off[l], with
 * z(0) = x. Compiled without fast-math: the rounding must follow IEEE 754 to agree with
 * the other backends to round-off; only the forward dot products may be summed in partial
 * sums (omp simd reduction, -fopenmp-simd), as BLAS does.
 *
 * One source, two libraries: the arithmetic type `real` is FFN_REAL, double by default
 * (hp.dtype float64) or float with -DFFN_REAL=float (float32); impls/c_ffn.py builds each
 * on first use. Every array, accumulator and literal is a real. A bare 1.0 is a double and
 * would make float maths double maths, so literals are written R(1); the maths functions
 * come from <tgmath.h>, so exp, tanh and sqrt of a float are expf, tanhf and sqrtf. The
 * float build compiles clean with -Wdouble-promotion -Wfloat-conversion (no float is
 * widened to double, no double narrowed without a cast; tests/test_c_float32.py compiles
 * it so with -Werror). For double, R() and <tgmath.h> change nothing: the float64 library
 * does the double-only source's arithmetic, operation for operation.
 * The hyper-parameters come in as double (net_t, hyper_t, ffn_gradient's l2), one layout
 * for both builds, and are made real where they are used, as torch and numpy cast their
 * Python-float hyper-parameters to the tensors' type (the compiler hoists the conversions
 * out of the loops: a float store cannot change a double). For the same reason 1 - beta
 * and Adam's bias corrections, a pair per step, are worked out in double and then made
 * real: torch.optim and numpy_ffn work them out in Python floats.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <tgmath.h>

#ifndef FFN_REAL
#define FFN_REAL double
#endif
typedef FFN_REAL real;
#define R(x) ((real)(x)) /* a literal or a double hyper-parameter, as a real */

enum { ACT_SIGMOID = 0, ACT_TANH = 1, ACT_RELU = 2 };
enum { OUT_LINEAR = 0, OUT_SIGMOID = 1, OUT_SOFTMAX = 2 };
enum { OPT_SGD = 0, OPT_ADAM = 1 };

typedef struct {          /* the network and the maths switches (ctypes: impls/c_ffn.py Net) */
    int64_t L;            /* number of weight layers */
    const int64_t *sizes; /* n_0 (inputs) .. n_L (outputs) */
    int64_t act, out;     /* hidden activation, output function */
    double delta_scale;   /* dL/dz(L) = delta_scale (a(L) - y) */
    int64_t input_activation, grad_bug;
    double relu_grad0;
} net_t;

typedef struct { double lr, l2, beta1, beta2, eps; int64_t optimizer; } hyper_t;

typedef struct {          /* per-sample scratch: z, a, offsets, two deltas */
    int64_t *off, *woff, total, widest;
    real *z, *a, *d, *back;
} work_t;

static real sigmoid(real z) {
    if (z >= R(0)) return R(1) / (R(1) + exp(-z));
    real e = exp(z); /* never exp(+large) */
    return e / (R(1) + e);
}

static real act(const net_t *net, real z) {
    switch (net->act) {
    case ACT_SIGMOID: return sigmoid(z);
    case ACT_TANH: return tanh(z);
    default: return z > R(0) ? z : R(0);
    }
}

static real act_prime(const net_t *net, real z, real a) {
    switch (net->act) {
    case ACT_SIGMOID: return a * (R(1) - a);
    case ACT_TANH: return R(1) - a * a;
    default: return z > R(0) ? R(1) : (z == R(0) ? R(net->relu_grad0) : R(0));
    }
}

static int work_init(const net_t *net, work_t *w) {
    int64_t L = net->L;
    memset(w, 0, sizeof *w); /* work_free is safe after a failed malloc */
    w->off = malloc((L + 2) * sizeof(int64_t));
    w->woff = malloc((L + 1) * sizeof(int64_t));
    if (!w->off || !w->woff) return -1;
    w->off[0] = 0; w->woff[0] = 0; w->widest = 0;
    for (int64_t l = 0; l <= L; l++) {
        w->off[l + 1] = w->off[l] + net->sizes[l];
        if (net->sizes[l] > w->widest) w->widest = net->sizes[l];
        if (l < L) w->woff[l + 1] = w->woff[l] + (net->sizes[l] + 1) * net->sizes[l + 1];
    }
    w->total = w->off[L + 1];
    w->z = malloc(w->total * sizeof(real));
    w->a = malloc(w->total * sizeof(real));
    w->d = malloc(w->widest * sizeof(real));
    w->back = malloc(w->widest * sizeof(real));
    return (w->z && w->a && w->d && w->back) ? 0 : -1;
}

static void work_free(work_t *w) {
    free(w->off); free(w->woff); free(w->z); free(w->a); free(w->d); free(w->back);
}

/* z and a of every layer for one sample x */
static void forward(const net_t *net, const real *theta, const real *x, work_t *w) {
    int64_t L = net->L, n0 = net->sizes[0];
    real *z = w->z, *a = w->a;
    for (int64_t i = 0; i < n0; i++) {
        z[i] = x[i];
        a[i] = net->input_activation ? act(net, x[i]) : x[i];
    }
    for (int64_t l = 1; l <= L; l++) {
        int64_t nin = net->sizes[l - 1], nout = net->sizes[l];
        const real *W = theta + w->woff[l - 1], *b = W + nout * nin, *ain = a + w->off[l - 1];
        real *zl = z + w->off[l], *al = a + w->off[l];
        for (int64_t j = 0; j < nout; j++) {
            real s = R(0);
#pragma omp simd reduction(+ : s) /* a vectorised sum: a few partial sums, not fast-math */
            for (int64_t i = 0; i < nin; i++) s += W[j * nin + i] * ain[i];
            zl[j] = s + b[j];
        }
        if (l < L) {
            for (int64_t j = 0; j < nout; j++) al[j] = act(net, zl[j]);
        } else if (net->out == OUT_SIGMOID) {
            for (int64_t j = 0; j < nout; j++) al[j] = sigmoid(zl[j]);
        } else if (net->out == OUT_SOFTMAX) {
            real top = zl[0], sum = R(0);
            for (int64_t j = 1; j < nout; j++) if (zl[j] > top) top = zl[j];
            for (int64_t j = 0; j < nout; j++) { al[j] = exp(zl[j] - top); sum += al[j]; }
            for (int64_t j = 0; j < nout; j++) al[j] /= sum;
        } else {
            for (int64_t j = 0; j < nout; j++) al[j] = zl[j];
        }
    }
}

/* The layer input u(l-1) that multiplies delta(l) in dW(l) (see the top of the file). */
static const real *grad_input(const net_t *net, const work_t *w, int64_t l) {
    if (!net->grad_bug) return w->a + w->off[l - 1];
    return w->z + w->off[l - 1]; /* z(0) = x */
}

/* One sample's backward pass. With grad != NULL, adds scale * the loss gradient into grad
 * (same layout as theta); otherwise updates theta in place by per-sample SGD with weight
 * decay l2 and rate lr, each layer after its delta has been passed down. */
static void backward(const net_t *net, real *theta, const real *y, work_t *w,
                     real *grad, real scale, real lr, real l2) {
    int64_t L = net->L, nL = net->sizes[L];
    real *d = w->d, *back = w->back;
    const real *aL = w->a + w->off[L];
    for (int64_t j = 0; j < nL; j++) d[j] = R(net->delta_scale) * (aL[j] - y[j]);
    for (int64_t l = L; l >= 1; l--) {
        int64_t nin = net->sizes[l - 1], nout = net->sizes[l];
        real *W = theta + w->woff[l - 1], *b = W + nout * nin;
        const real *u = grad_input(net, w, l);
        if (l > 1) { /* W(l)^T delta(l), before W(l) changes */
            for (int64_t i = 0; i < nin; i++) back[i] = R(0);
            for (int64_t j = 0; j < nout; j++)
                for (int64_t i = 0; i < nin; i++) back[i] += W[j * nin + i] * d[j];
        }
        if (grad) {
            real *gW = grad + w->woff[l - 1], *gb = gW + nout * nin;
            for (int64_t j = 0; j < nout; j++) {
                real dj = scale * d[j];
                for (int64_t i = 0; i < nin; i++) gW[j * nin + i] += dj * u[i];
                gb[j] += dj;
            }
        } else {
            for (int64_t j = 0; j < nout; j++) {
                real dj = d[j];
                for (int64_t i = 0; i < nin; i++)
                    W[j * nin + i] -= lr * (dj * u[i] + l2 * W[j * nin + i]);
                b[j] -= lr * dj;
            }
        }
        if (l > 1) {
            const real *z = w->z + w->off[l - 1], *a = w->a + w->off[l - 1];
            for (int64_t i = 0; i < nin; i++) d[i] = back[i] * act_prime(net, z[i], a[i]);
        }
    }
}

/* Per-sample SGD over X[order[0]], ..., X[order[n-1]]. Returns 0, or -1 out of memory. */
int ffn_sgd_epoch(const net_t *net, const hyper_t *hp, real *theta, const real *X,
                  const real *Y, const int64_t *order, int64_t n) {
    work_t w;
    if (work_init(net, &w)) { work_free(&w); return -1; }
    int64_t nin = net->sizes[0], nout = net->sizes[net->L];
    for (int64_t k = 0; k < n; k++) {
        forward(net, theta, X + order[k] * nin, &w);
        backward(net, theta, Y + order[k] * nout, &w, NULL, R(0), R(hp->lr), R(hp->l2));
    }
    work_free(&w);
    return 0;
}

/* grad <- dJ/dtheta over the samples idx[0..m-1]: the mean loss gradient plus l2 W. */
static void batch_gradient(const net_t *net, real l2, const real *theta, const real *X,
                           const real *Y, const int64_t *idx, int64_t m, real *grad,
                           work_t *w) {
    int64_t nin = net->sizes[0], nout = net->sizes[net->L], L = net->L;
    memset(grad, 0, w->woff[L] * sizeof(real));
    for (int64_t k = 0; k < m; k++) {
        forward(net, theta, X + idx[k] * nin, w);
        backward(net, (real *)theta, Y + idx[k] * nout, w, grad, R(1) / (real)m, R(0), R(0));
    }
    for (int64_t l = 0; l < L; l++) { /* L2 on the weights, not the biases */
        int64_t nw = net->sizes[l] * net->sizes[l + 1];
        for (int64_t i = 0; i < nw; i++) grad[w->woff[l] + i] += l2 * theta[w->woff[l] + i];
    }
}

int ffn_gradient(const net_t *net, double l2, const real *theta, const real *X,
                 const real *Y, int64_t m, real *grad) {
    work_t w;
    int64_t *idx = malloc((m > 0 ? m : 1) * sizeof(int64_t));
    if (!idx || work_init(net, &w)) { free(idx); work_free(&w); return -1; }
    for (int64_t k = 0; k < m; k++) idx[k] = k;
    batch_gradient(net, R(l2), theta, X, Y, idx, m, grad, &w);
    free(idx);
    work_free(&w);
    return 0;
}

/* Mini-batch SGD or Adam (torch.optim's arithmetic) over batches of B samples of order;
 * M, G: Adam's moments (same layout as theta), t: its step count, both kept across epochs. */
int ffn_batch_epoch(const net_t *net, const hyper_t *hp, real *theta, const real *X,
                    const real *Y, const int64_t *order, int64_t n, int64_t B, real *M,
                    real *G, int64_t *t) {
    work_t w;
    if (work_init(net, &w)) { work_free(&w); return -1; }
    int64_t P = w.woff[net->L];
    real *g = malloc(P * sizeof(real));
    if (!g) { work_free(&w); return -1; }
    for (int64_t start = 0; start < n; start += B) {
        int64_t m = n - start < B ? n - start : B;
        batch_gradient(net, R(hp->l2), theta, X, Y, order + start, m, g, &w);
        if (hp->optimizer == OPT_SGD) {
            for (int64_t i = 0; i < P; i++) theta[i] -= R(hp->lr) * g[i];
        } else {
            *t += 1;
            real step = R(hp->lr / (1.0 - pow(hp->beta1, (double)*t)));
            real sqrt_bc2 = R(sqrt(1.0 - pow(hp->beta2, (double)*t)));
            for (int64_t i = 0; i < P; i++) {
                M[i] += R(1.0 - hp->beta1) * (g[i] - M[i]);
                G[i] = G[i] * R(hp->beta2) + R(1.0 - hp->beta2) * g[i] * g[i];
                theta[i] -= step * (M[i] / (sqrt(G[i]) / sqrt_bc2 + R(hp->eps)));
            }
        }
    }
    free(g);
    work_free(&w);
    return 0;
}

/* out (m x n_L) <- the network's outputs for the m rows of X */
int ffn_predict(const net_t *net, const real *theta, const real *X, int64_t m, real *out) {
    work_t w;
    if (work_init(net, &w)) { work_free(&w); return -1; }
    int64_t nin = net->sizes[0], nout = net->sizes[net->L];
    for (int64_t k = 0; k < m; k++) {
        forward(net, theta, X + k * nin, &w);
        memcpy(out + k * nout, w.a + w.off[net->L], nout * sizeof(real));
    }
    work_free(&w);
    return 0;
}
