/* Small single-threaded CPU kernels for xflow.sparsify, called through ctypes (no torch headers, so
 * the library builds in about a second; see kernels/__init__.py). Every kernel has a pure-torch
 * twin in Python that the tests compare it with.
 *
 *   xf_push         per-feature thresholded push propagation (decoupled SGC / APPNP, Unifews)
 *   xf_spmm_rows    out[v,:] = sum_e w_e * h[src_e,:] over CSR rows (propagation over kept edges)
 *   xf_scatter_rows out[src_e,:] += w_e * g[dst_e,:] (its transpose: the propagation's backward)
 *   xf_prune_spmm   the same with the Unifews edge rule applied on the fly (norm test per edge)
 *   xf_spmm_t       Y^T = W^T X^T for a CSR W^T (weight matmul, register-blocked over nodes)
 *   xf_sddmm_t      G[e] = <X^T[i_e,:], D^T[o_e,:]> for the kept weight entries (weight gradient)
 *   xf_weight_rule  the Unifews weight mask fused with W*M and the rows left (one pass over W)
 *   xf_spmm_rows_skip / xf_spmm_rows_masked  sparse-input X (W*M) and its weight gradient, fully
 *                   pruned weight rows skipped, the gradient masked in the same pass
 */
#include <stdint.h>
#include <string.h>
#include <math.h>
#include <stdlib.h>

static inline uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* uniform in (0, 1] */
static inline double unit_open0(uint64_t *s) {
    return ((double)(splitmix64(s) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

/* Thresholded push of every feature column of xt (f x n, row-major: one feature per row).
 * Rows: nbr[ptr[u] .. ptr[u+1]) sorted by ascending degree; deg[u] >= 1 counts the self-loop.
 * acc = 0: SGC (every node keeps its residue), 1: APPNP (alpha-absorption).
 * Writes out (f x n) and returns the number of pushes (deterministic + random). */
int64_t xf_push(int64_t n, int64_t m, const int64_t *ptr, const int64_t *nbr, const float *deg,
                int64_t f, const float *xt, float *out, double delta, int64_t hops, double alpha,
                int64_t acc, int64_t randomized, uint64_t seed, double rho) {
    double *dega = (double *)malloc(sizeof(double) * n);
    double *dinva = (double *)malloc(sizeof(double) * n);
    double *dinvb = (double *)malloc(sizeof(double) * n);
    double *degb = (double *)malloc(sizeof(double) * n);
    float *r = (float *)malloc(sizeof(float) * n);
    float *nxt = (float *)malloc(sizeof(float) * n);
    float *est = (float *)malloc(sizeof(float) * n);
    int64_t *shrt = (int64_t *)malloc(sizeof(int64_t) * n);
    int64_t *shrt2 = (int64_t *)malloc(sizeof(int64_t) * n);
    int64_t total = 0;
    if (!dega || !dinva || !dinvb || !degb || !r || !nxt || !est || !shrt || !shrt2) { total = -1; goto done; }
    for (int64_t u = 0; u < n; u++) {
        dega[u] = pow((double)deg[u], 1.0 - rho);
        dinva[u] = 1.0 / dega[u];
        degb[u] = pow((double)deg[u], rho);
        dinvb[u] = 1.0 / degb[u];
    }
    for (int64_t c = 0; c < f; c++) {
        const float *x = xt + c * n;
        double dp = 0.0, dn = 0.0;
        for (int64_t u = 0; u < n; u++) {
            if (x[u] > 0) dp += x[u] * degb[u]; else dn += x[u] * degb[u];
        }
        if (dp == 0.0) dp = 1e-12;
        if (dn == 0.0) dn = -1e-12;
        dp *= delta / (1.0 - alpha);
        dn *= delta / (1.0 - alpha);
        uint64_t state = seed * 0x100000001B3ULL + (uint64_t)c * 0x9E3779B97F4A7C15ULL + 1;
        memcpy(r, x, sizeof(float) * n);
        memset(est, 0, sizeof(float) * n);
        for (int64_t u = 0; u < n; u++) { shrt[u] = ptr[u + 1] - ptr[u]; shrt2[u] = shrt[u]; }
        for (int64_t h = 0; h < hops; h++) {
            int any = 0;
            memset(nxt, 0, sizeof(float) * n);
            for (int64_t u = 0; u < n; u++) {
                const double old = r[u];
                if (!acc) nxt[u] += (float)old;
                const int act = (old > dp) || (old < dn);
                if (!act) { if (acc) est[u] += (float)old; continue; }
                any = 1;
                const double thr = old > 0 ? old / dp : old / dn;
                double push = 0.0;
                if (acc) { est[u] += (float)(alpha * old); push = old * (1.0 - alpha) * dinvb[u]; }
                const int64_t p0 = ptr[u];
                int64_t k = p0;
                const int64_t end = p0 + shrt[u];
                for (; k < end; k++) {
                    const int64_t v = nbr[k];
                    if (!(thr > dega[v])) break;
                    nxt[v] += (float)(acc ? push * dinva[v] : old / deg[v]);
                    total++;
                }
                const int64_t k2 = k;
                if (randomized) {
                    const double thr2 = thr / unit_open0(&state);
                    const double q = old > 0 ? dp : dn;
                    const int64_t end2 = p0 + shrt2[u];
                    for (; k < end2; k++) {
                        const int64_t v = nbr[k];
                        if (!(thr2 > dega[v])) break;
                        nxt[v] += (float)(q * dinva[v]);
                        total++;
                    }
                }
                shrt[u] = (k + k2) / 2 - p0;
                if (m < 100000000) shrt2[u] = (k + ptr[u + 1]) / 2 - p0;
            }
            float *t = r; r = nxt; nxt = t;
            if (!any) break;  /* nothing moves any more (APPNP's residue was absorbed) */
        }
        float *o = out + c * n;
        for (int64_t u = 0; u < n; u++) o[u] = est[u] + r[u];
    }
done:
    free(dega); free(dinva); free(dinvb); free(degb); free(r); free(nxt); free(est); free(shrt); free(shrt2);
    return total;
}

/* out (n x fdim) = sum over CSR rows: out[v,:] += w[e] * h[src[e],:] (rows = targets). */
void xf_spmm_rows(int64_t n, const int64_t *ptr, const int64_t *src, const float *w, const float *h,
                  int64_t fdim, float *out) {
    for (int64_t v = 0; v < n; v++) {
        float *o = out + v * fdim;
        for (int64_t j = 0; j < fdim; j++) o[j] = 0.0f;
        for (int64_t e = ptr[v]; e < ptr[v + 1]; e++) {
            const float a = w[e];
            const float *x = h + src[e] * fdim;
            for (int64_t j = 0; j < fdim; j++) o[j] += a * x[j];
        }
    }
}

/* out (n x fdim), zeroed here: out[src[e],:] += w[e] * g[dst[e],:] for every edge (transpose product). */
void xf_scatter_rows(int64_t n, int64_t ne, const int64_t *src, const int64_t *dst, const float *w, const float *g,
                     int64_t fdim, float *out) {
    memset(out, 0, sizeof(float) * n * fdim);
    for (int64_t e = 0; e < ne; e++) {
        const float a = w[e];
        const float *x = g + dst[e] * fdim;
        float *o = out + src[e] * fdim;
        for (int64_t j = 0; j < fdim; j++) o[j] += a * x[j];
    }
}

/* On-the-fly Unifews propagation: keep edge e (u -> v) if it is a candidate and either locked or
 * |w_e| * norm[u] >= thr; aggregate the kept ones. keep[e] receives the decision. Returns kept. */
int64_t xf_prune_spmm(int64_t n, const int64_t *ptr, const int64_t *src, const float *w, const float *norm,
                      const uint8_t *cand, const uint8_t *locked, double thr, const float *h, int64_t fdim,
                      float *out, uint8_t *keep) {
    int64_t kept = 0;
    for (int64_t v = 0; v < n; v++) {
        float *o = out + v * fdim;
        for (int64_t j = 0; j < fdim; j++) o[j] = 0.0f;
        for (int64_t e = ptr[v]; e < ptr[v + 1]; e++) {
            const int64_t u = src[e];
            const float a = w[e];
            const int k = cand[e] && (locked[e] || fabsf(a) * norm[u] >= thr);
            keep[e] = (uint8_t)k;
            if (!k) continue;
            kept++;
            const float *x = h + u * fdim;
            for (int64_t j = 0; j < fdim; j++) o[j] += a * x[j];
        }
    }
    return kept;
}

#define XF_NB 64
/* Y^T (fout x n) = W^T X^T with W^T in CSR (rows = outputs o, cols = inputs i), X^T (fin x n).
 * Node blocks outermost: the X^T slab of one block (fin x 64 floats) stays in L1/L2 while every
 * output row is accumulated from it in registers; work is nnz(W) x n multiply-adds. */
void xf_spmm_t(int64_t fout, const int64_t *ptr, const int64_t *col, const float *val, const float *xt,
               int64_t n, float *yt) {
    int64_t b = 0;
    for (; b + XF_NB <= n; b += XF_NB) {
        for (int64_t o = 0; o < fout; o++) {
            const int64_t e0 = ptr[o], e1 = ptr[o + 1];
            float acc[XF_NB];
            for (int j = 0; j < XF_NB; j++) acc[j] = 0.0f;
            for (int64_t e = e0; e < e1; e++) {
                const float a = val[e];
                const float *x = xt + col[e] * n + b;
                for (int j = 0; j < XF_NB; j++) acc[j] += a * x[j];
            }
            float *y = yt + o * n + b;
            for (int j = 0; j < XF_NB; j++) y[j] = acc[j];
        }
    }
    for (int64_t o = 0; o < fout; o++) {
        const int64_t e0 = ptr[o], e1 = ptr[o + 1];
        for (int64_t j = b; j < n; j++) {
            float s = 0.0f;
            for (int64_t e = e0; e < e1; e++) s += val[e] * xt[col[e] * n + j];
            yt[o * n + j] = s;
        }
    }
}

/* G[e] = sum_j X^T[i_e, j] * D^T[o_e, j] for kept entries e = (i_e, o_e). */
void xf_sddmm_t(int64_t nnz, const int64_t *ii, const int64_t *oo, const float *xt, const float *dt, int64_t n,
                float *g) {
    for (int64_t e = 0; e < nnz; e++) {
        const float *a = xt + ii[e] * n;
        const float *b = dt + oo[e] * n;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
        int64_t j = 0;
        for (; j + 8 <= n; j += 8) {
            s0 += a[j] * b[j]; s1 += a[j + 1] * b[j + 1]; s2 += a[j + 2] * b[j + 2]; s3 += a[j + 3] * b[j + 3];
            s4 += a[j + 4] * b[j + 4]; s5 += a[j + 5] * b[j + 5]; s6 += a[j + 6] * b[j + 6]; s7 += a[j + 7] * b[j + 7];
        }
        float s = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
        for (; j < n; j++) s += a[j] * b[j];
        g[e] = s;
    }
}

/* Y^T (fout x n) = W^T X^T with W^T in CSR and X packed in node panels: xp[p][i][0..63] holds
 * X[64p + j, i] (n a multiple of 64, zero-padded by the caller). One panel is a contiguous
 * fin x 64 block (fits L2, few TLB pages) reused by every output row; the 64 accumulators of an
 * output row stay in eight AVX registers (explicitly: the compiler spills a plain float[64]).
 * Work: nnz(W) x n multiply-adds. */
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
static inline void panel_row(const float *base, const int64_t *col, const float *val, int64_t e0, int64_t e1,
                             float *y) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    __m256 a4 = _mm256_setzero_ps(), a5 = _mm256_setzero_ps(), a6 = _mm256_setzero_ps(), a7 = _mm256_setzero_ps();
    for (int64_t e = e0; e < e1; e++) {
        const __m256 w = _mm256_broadcast_ss(val + e);
        const float *x = base + col[e] * XF_NB;
        a0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(x), a0);
        a1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + 8), a1);
        a2 = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + 16), a2);
        a3 = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + 24), a3);
        a4 = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + 32), a4);
        a5 = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + 40), a5);
        a6 = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + 48), a6);
        a7 = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + 56), a7);
    }
    _mm256_storeu_ps(y, a0); _mm256_storeu_ps(y + 8, a1); _mm256_storeu_ps(y + 16, a2); _mm256_storeu_ps(y + 24, a3);
    _mm256_storeu_ps(y + 32, a4); _mm256_storeu_ps(y + 40, a5); _mm256_storeu_ps(y + 48, a6); _mm256_storeu_ps(y + 56, a7);
}
#else
static inline void panel_row(const float *base, const int64_t *col, const float *val, int64_t e0, int64_t e1,
                             float *y) {
    float acc[XF_NB];
    for (int j = 0; j < XF_NB; j++) acc[j] = 0.0f;
    for (int64_t e = e0; e < e1; e++) {
        const float a = val[e];
        const float *x = base + col[e] * XF_NB;
        for (int j = 0; j < XF_NB; j++) acc[j] += a * x[j];
    }
    for (int j = 0; j < XF_NB; j++) y[j] = acc[j];
}
#endif

void xf_spmm_panel(int64_t fout, int64_t fin, const int64_t *ptr, const int64_t *col, const float *val,
                   const float *xp, int64_t n, float *yt) {
    const int64_t np = n / XF_NB;
    for (int64_t p = 0; p < np; p++) {
        const float *base = xp + p * fin * XF_NB;
        for (int64_t o = 0; o < fout; o++) panel_row(base, col, val, ptr[o], ptr[o + 1], yt + o * n + p * XF_NB);
    }
}

/* xp[p][i][j] = x[64p + j][i] (rows past n are zero): the panel layout of xf_spmm_panel. */
void xf_pack_panels(int64_t n, int64_t fin, const float *x, float *xp) {
    const int64_t np = (n + XF_NB - 1) / XF_NB;
    for (int64_t p = 0; p < np; p++) {
        float *dst = xp + p * fin * XF_NB;
        for (int64_t j = 0; j < XF_NB; j++) {
            const int64_t r = p * XF_NB + j;
            if (r < n) {
                const float *src = x + r * fin;
                for (int64_t i = 0; i < fin; i++) dst[i * XF_NB + j] = src[i];
            } else {
                for (int64_t i = 0; i < fin; i++) dst[i * XF_NB + j] = 0.0f;
            }
        }
    }
}

/* norm[v] = ||h[v, :]|| (rows of an n x f matrix), one pass. */
void xf_row_norms(int64_t n, int64_t f, const float *h, float *norm) {
    /* 16 partial sums per row (vectorisable without -ffast-math), then summed */
    for (int64_t v = 0; v < n; v++) {
        const float *x = h + v * f;
        float acc[16] = {0};
        int64_t j = 0;
        for (; j + 16 <= f; j += 16)
            for (int k = 0; k < 16; k++) acc[k] += x[j + k] * x[j + k];
        float s = 0.0f;
        for (; j < f; j++) s += x[j] * x[j];
        for (int k = 0; k < 16; k++) s += acc[k];
        norm[v] = sqrtf(s);
    }
}

/* max |w| over the entries of an fin x fout matrix (over those with mask != 0 when mask is given). */
float xf_masked_absmax(int64_t fin, int64_t fout, const float *w, const uint8_t *mask) {
    /* 16 lane-wise maxima (vectorisable: a > m ? a : m is MAXPS), then reduced */
    const int64_t m = fin * fout;
    float lane[16] = {0};
    int64_t e = 0;
    if (mask) {
        for (; e + 16 <= m; e += 16)
            for (int k = 0; k < 16; k++) {
                const float a = fabsf(w[e + k]) * (float)mask[e + k];
                lane[k] = a > lane[k] ? a : lane[k];
            }
    } else {
        for (; e + 16 <= m; e += 16)
            for (int k = 0; k < 16; k++) {
                const float a = fabsf(w[e + k]);
                lane[k] = a > lane[k] ? a : lane[k];
            }
    }
    float best = 0.0f;
    for (; e < m; e++) {
        const float a = mask ? fabsf(w[e]) * (float)mask[e] : fabsf(w[e]);
        best = a > best ? a : best;
    }
    for (int k = 0; k < 16; k++) best = lane[k] > best ? lane[k] : best;
    return best;
}

/* The Unifews weight rule fused with its application, one pass over W (fin x fout, row = input i):
 *   tau_mode 0: keep = |w_ij| * c[i] >= thr     (c = column norms of the input)
 *   tau_mode 1: keep = |w_ij| >= c[i]           (c = per-row thresholds tau_i, already capped)
 *   cumulative: keep &= mask[ij] (the old mask)
 * Writes mask (in place), wm = keep ? w : 0 (the masked weight), rowkeep[i] = any kept in row i.
 * Returns the number of kept entries. */
int64_t xf_weight_rule(int64_t fin, int64_t fout, const float *w, const float *c, float thr, int64_t tau_mode,
                       int64_t cumulative, uint8_t *mask, float *wm, uint8_t *rowkeep) {
    int64_t kept = 0;
    for (int64_t i = 0; i < fin; i++) {
        const float *wr = w + i * fout;
        uint8_t *mr = mask + i * fout;
        float *wo = wm + i * fout;
        const float ci = c[i];
        int64_t rk = 0;
        for (int64_t j = 0; j < fout; j++) {
            const float a = fabsf(wr[j]);
            uint8_t k = tau_mode ? (a >= ci) : (a * ci >= thr);
            if (cumulative) k &= mr[j];
            mr[j] = k;
            wo[j] = k ? wr[j] : 0.0f;
            rk += k;
        }
        rowkeep[i] = rk > 0;
        kept += rk;
    }
    return kept;
}

/* Sparse-input transformation with skipped weight rows: out[v,:] = sum_e x_e * w[col_e,:] over the
 * CSR row v of X, leaving out entries whose weight row col_e is fully pruned (rowkeep == 0). */
void xf_spmm_rows_skip(int64_t n, const int64_t *ptr, const int64_t *col, const float *val, const float *w,
                       int64_t fdim, const uint8_t *rowkeep, float *out) {
    for (int64_t v = 0; v < n; v++) {
        float *o = out + v * fdim;
        for (int64_t j = 0; j < fdim; j++) o[j] = 0.0f;
        for (int64_t e = ptr[v]; e < ptr[v + 1]; e++) {
            const int64_t i = col[e];
            if (!rowkeep[i]) continue;
            const float a = val[e];
            const float *x = w + i * fdim;
            for (int64_t j = 0; j < fdim; j++) o[j] += a * x[j];
        }
    }
}

/* Its weight gradient at the kept entries only: for each weight row i with rowkeep[i],
 * gw[i,:] = (sum_e xt_e * g[src_e,:]) masked by mask[i,:] (CSR rows of X^T); pruned rows are 0. */
void xf_spmm_rows_masked(int64_t fin, const int64_t *ptr, const int64_t *src, const float *val, const float *g,
                         int64_t fdim, const uint8_t *mask, const uint8_t *rowkeep, float *out) {
    for (int64_t i = 0; i < fin; i++) {
        float *o = out + i * fdim;
        for (int64_t j = 0; j < fdim; j++) o[j] = 0.0f;
        if (!rowkeep[i]) continue;
        for (int64_t e = ptr[i]; e < ptr[i + 1]; e++) {
            const float a = val[e];
            const float *x = g + src[e] * fdim;
            for (int64_t j = 0; j < fdim; j++) o[j] += a * x[j];
        }
        const uint8_t *m = mask + i * fdim;
        for (int64_t j = 0; j < fdim; j++) o[j] = m[j] ? o[j] : 0.0f;
    }
}

/* norm[j] = ||x[:, j]|| (columns of an n x f matrix), one pass, double accumulators. */
void xf_col_norms(int64_t n, int64_t f, const float *x, double *acc, float *norm) {
    for (int64_t j = 0; j < f; j++) acc[j] = 0.0;
    for (int64_t v = 0; v < n; v++) {
        const float *r = x + v * f;
        for (int64_t j = 0; j < f; j++) acc[j] += (double)r[j] * r[j];
    }
    for (int64_t j = 0; j < f; j++) norm[j] = (float)sqrt(acc[j]);
}

/* The Unifews edge rule in two passes over the edges: the mean of |w_e| * norm[src_e] over the
 * candidates, then keep[e] = cand[e] && (loop[e] || |w_e| * norm[src_e] >= delta * mean).
 * Returns the number kept. */
int64_t xf_edge_rule(int64_t ne, const int64_t *src, const float *w, const float *norm, const uint8_t *cand,
                     const uint8_t *loop, double delta, uint8_t *keep) {
    double sum = 0.0;
    int64_t nc = 0;
    for (int64_t e = 0; e < ne; e++) {
        if (cand[e]) { sum += fabsf(w[e]) * norm[src[e]]; nc++; }
    }
    const float thr = nc ? (float)(delta * (sum / (double)nc)) : 0.0f;
    int64_t kept = 0;
    for (int64_t e = 0; e < ne; e++) {
        const int k = cand[e] && (loop[e] || fabsf(w[e]) * norm[src[e]] >= thr);
        keep[e] = (uint8_t)k;
        kept += k;
    }
    return kept;
}

/* The edge rule's threshold alone: (float)(delta * mean of |w_e| * norm[src_e] over the candidates),
 * computed exactly as in xf_edge_rule (double sum, float result). */
float xf_edge_threshold(int64_t ne, const int64_t *src, const float *w, const float *norm, const uint8_t *cand,
                        double delta) {
    double sum = 0.0;
    int64_t nc = 0;
    for (int64_t e = 0; e < ne; e++) {
        if (cand[e]) { sum += fabsf(w[e]) * norm[src[e]]; nc++; }
    }
    return nc ? (float)(delta * (sum / (double)nc)) : 0.0f;
}

/* The transpose of a pruned propagation: out[src_e,:] += w_e * g[dst_e,:] over the kept edges only. */
void xf_scatter_rows_keep(int64_t n, int64_t ne, const int64_t *src, const int64_t *dst, const float *w,
                          const uint8_t *keep, const float *g, int64_t fdim, float *out) {
    memset(out, 0, sizeof(float) * n * fdim);
    for (int64_t e = 0; e < ne; e++) {
        if (!keep[e]) continue;
        const float a = w[e];
        const float *x = g + dst[e] * fdim;
        float *o = out + src[e] * fdim;
        for (int64_t j = 0; j < fdim; j++) o[j] += a * x[j];
    }
}
