/* model_dcm.c — priors, equations of motion and BOLD observation of DCM
 * for fMRI (SPM12 conventions; see model_dcm.h and MANUAL.md). */
#include "models/model_dcm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Haemodynamic constants (Buxton/Friston balloon model as in SPM12). */
#define HAEMO_KAPPA 0.64   /* rate of signal decay (1/s), scaled by exp(decay) */
#define HAEMO_GAMMA 0.32   /* autoregulation (1/s) */
#define HAEMO_TAU 2.0      /* transit time (s), scaled by exp(transit) */
#define HAEMO_ALPHA 0.32   /* Grubb's exponent */
#define HAEMO_E0 0.4       /* resting oxygen extraction */
/* BOLD constants (1.5 T) */
#define BOLD_V0 4.0        /* resting venous volume (%) */
#define BOLD_R0 25.0       /* intravascular relaxation slope (Hz) */
#define BOLD_NU0 40.3      /* frequency offset at the vessel surface (Hz) */

void model_dcm_layout_init(model_dcm_layout *L, int n, int m, int nonlinear)
{
    model_layout T;
    model_layout_init(&T, n, m, nonlinear, 0);
    L->n = n;
    L->m = m;
    L->nd = T.nd;
    L->off_A = T.block[MODEL_BLOCK_A].offset;
    L->off_B = T.block[MODEL_BLOCK_B].offset;
    L->off_C = T.block[MODEL_BLOCK_C].offset;
    L->off_D = T.block[MODEL_BLOCK_D].offset;
    L->off_transit = T.block[MODEL_BLOCK_TRANSIT].offset;
    L->off_decay = T.block[MODEL_BLOCK_DECAY].offset;
    L->off_epsilon = T.block[MODEL_BLOCK_EPSILON].offset;
    L->np = T.np;
}

void model_dcm_table(const model_dcm *M, model_layout *T)
{
    model_layout_init(T, M->n, M->m, M->nonlinear, M->two_state);
}

const double *model_dcm_switches(const model_dcm *M, int block)
{
    switch (block) {
    case MODEL_BLOCK_A:
        return M->a;
    case MODEL_BLOCK_B:
        return M->b;
    case MODEL_BLOCK_C:
        return M->c;
    case MODEL_BLOCK_D:
        return M->d;
    default:
        return NULL;
    }
}

/* The arrays a model owns, with their lengths in doubles: the one list
 * that alloc, copy and free share. Fields that are not pointers are
 * copied as they are (model_dcm_copy). */
#define OWNED_ARRAYS 6
static void owned_arrays(model_dcm *M, double **arr[OWNED_ARRAYS], size_t len[OWNED_ARRAYS])
{
    const size_t n = (size_t)M->n, m1 = (size_t)(M->m ? M->m : 1);
    arr[0] = &M->a;      len[0] = n * n;
    arr[1] = &M->b;      len[1] = n * n * m1;
    arr[2] = &M->c;      len[2] = n * m1;
    arr[3] = &M->d;      len[3] = n * n * n;
    arr[4] = &M->delays; len[4] = n;
    arr[5] = &M->u;      len[5] = (size_t)M->nu * m1;
}

/* A new field must be added to owned_arrays (when the model owns it) or
 * be a plain value; either way update this size (LP64). */
#if defined(__LP64__) || defined(_LP64)
_Static_assert(sizeof(model_dcm) == 4 * 4 + 4 * 8 + 2 * 8 + 8 + 2 * 4 + 8 + 4 + sizeof(model_dcm_layout),
               "model_dcm changed: list its owned arrays in owned_arrays(), then update this size");
#endif

model_dcm *model_dcm_alloc(int n, int m, int v, int nonlinear)
{
    if (n < 1 || m < 0 || v < 1)
        return NULL;
    model_dcm *M = calloc(1, sizeof *M);
    if (!M)
        return NULL;
    M->n = n;
    M->m = m;
    M->v = v;
    M->nu = v * MODEL_DCM_MICROTIME;
    M->nonlinear = nonlinear ? 1 : 0;
    M->TE = 0.04;
    model_dcm_layout_init(&M->L, n, m, M->nonlinear);
    double **arr[OWNED_ARRAYS];
    size_t len[OWNED_ARRAYS];
    owned_arrays(M, arr, len);
    for (int i = 0; i < OWNED_ARRAYS; i++)
        if (!(*arr[i] = calloc(len[i], sizeof(double)))) {
            model_dcm_free(M);
            return NULL;
        }
    return M;
}

model_dcm *model_dcm_copy(const model_dcm *S)
{
    model_dcm *M = malloc(sizeof *M);
    if (!M)
        return NULL;
    memcpy(M, S, sizeof *M);   /* every plain field, whatever is added later */
    double **arr[OWNED_ARRAYS], **src[OWNED_ARRAYS];
    size_t len[OWNED_ARRAYS];
    owned_arrays((model_dcm *)S, src, len);
    owned_arrays(M, arr, len);
    for (int i = 0; i < OWNED_ARRAYS; i++)
        *arr[i] = NULL;   /* nothing shared with S, so free on failure is safe */
    for (int i = 0; i < OWNED_ARRAYS; i++) {
        if (!(*arr[i] = malloc(sizeof(double) * (len[i] ? len[i] : 1)))) {
            model_dcm_free(M);
            return NULL;
        }
        if (len[i])
            memcpy(*arr[i], *src[i], sizeof(double) * len[i]);
    }
    return M;
}

void model_dcm_free(model_dcm *M)
{
    if (!M)
        return;
    double **arr[OWNED_ARRAYS];
    size_t len[OWNED_ARRAYS];
    owned_arrays(M, arr, len);
    for (int i = 0; i < OWNED_ARRAYS; i++)
        free(*arr[i]);
    free(M);
}

void model_dcm_priors(const model_dcm *M, double *pE, double *pV)
{
    const model_dcm_layout *L = &M->L;
    const int n = M->n, m = M->m;
    memset(pE, 0, sizeof(double) * (size_t)L->np);
    memset(pV, 0, sizeof(double) * (size_t)L->np);
    for (int j = 0; j < n; j++) {
        for (int i = 0; i < n; i++) {
            /* any non-zero off-diagonal switch counts as "present" */
            int on = (i != j) && M->a[i + j * n] != 0.0;
            int k = model_dcm_idx_A(L, i, j);
            if (M->two_state) {
                /* log-scaled positive rates; absent ones pushed to exp(-32) */
                pE[k] = (on || i == j) ? 0.0 : -32.0;
                pV[k] = (on || i == j) ? 1.0 / 16.0 : 0.0;
            } else {
                pE[k] = on ? 1.0 / 128.0 : 0.0;
                pV[k] = (on || i == j) ? 1.0 / 64.0 : 0.0;
            }
        }
    }
    double sB = M->two_state ? 0.25 : 1.0;
    double sC = M->two_state ? 4.0 : 1.0;
    double sD = M->two_state ? 0.25 : 1.0;
    for (int k = 0; k < n * n * m; k++)
        pV[L->off_B + k] = M->b[k] * sB;
    for (int k = 0; k < n * m; k++)
        pV[L->off_C + k] = M->c[k] * sC;
    for (int k = 0; k < n * n * L->nd; k++)
        pV[L->off_D + k] = M->d[k] * sD;
    for (int i = 0; i < n; i++)
        pV[L->off_transit + i] = 1.0 / 256.0;
    pV[L->off_decay] = 1.0 / 256.0;
    pV[L->off_epsilon] = 1.0 / 256.0;
}

size_t model_dcm_fx_work(const model_dcm *M)
{
    return (size_t)M->n * M->n;
}

/* Effective (log-space for the diagonal) coupling before any transform:
 * E = A + sum_j u_j B_j + sum_k xE_k D_k. */
static void effective_coupling(const model_dcm *M, const double *P,
                               const double *x, const double *u, double *E)
{
    const model_dcm_layout *L = &M->L;
    const int n = M->n, nn = n * n;
    memcpy(E, P + L->off_A, sizeof(double) * (size_t)nn);
    for (int j = 0; j < M->m; j++) {
        if (u[j] == 0.0)
            continue;
        const double *B = P + L->off_B + j * nn;
        for (int k = 0; k < nn; k++)
            E[k] += u[j] * B[k];
    }
    for (int r = 0; r < L->nd; r++) {
        if (x[r] == 0.0)
            continue;
        const double *D = P + L->off_D + r * nn;
        for (int k = 0; k < nn; k++)
            E[k] += x[r] * D[k];
    }
}

static void neural_one_state(const model_dcm *M, const double *P,
                             const double *x, const double *u, double *f,
                             double *dfdx, int nx, double *dfdu, double *E)
{
    const model_dcm_layout *L = &M->L;
    const int n = M->n, nn = n * n;
    /* self-connections are log-scaled: rate -exp(E_ii)/2 keeps them negative */
    for (int i = 0; i < n; i++)
        E[i + i * n] = -0.5 * exp(E[i + i * n]);
    for (int i = 0; i < n; i++) {
        double s = 0.0;
        for (int j = 0; j < n; j++)
            s += E[i + j * n] * x[j];
        for (int j = 0; j < M->m; j++)
            s += P[model_dcm_idx_C(L, i, j)] / 16.0 * u[j];
        f[i] = s;
    }
    if (dfdx) {
        for (int j = 0; j < n; j++)
            for (int i = 0; i < n; i++)
                dfdx[i + j * nx] = E[i + j * n];
        /* state-dependent coupling: d(E x)_i/dx_k adds sum_j dE_ij/dx_k x_j */
        for (int k = 0; k < L->nd; k++) {
            const double *D = P + L->off_D + k * nn;
            for (int i = 0; i < n; i++) {
                double s = 0.0;
                for (int j = 0; j < n; j++)
                    s += (i == j ? E[i + i * n] : 1.0) * D[i + j * n] * x[j];
                dfdx[i + k * nx] += s;
            }
        }
    }
    if (dfdu) {
        for (int j = 0; j < M->m; j++) {
            const double *B = P + L->off_B + j * nn;
            for (int i = 0; i < n; i++) {
                double s = P[model_dcm_idx_C(L, i, j)] / 16.0;
                for (int l = 0; l < n; l++)
                    s += (i == l ? E[i + i * n] : 1.0) * B[i + l * n] * x[l];
                dfdu[i + j * nx] = s;
            }
        }
    }
}

/* Two-state neurons (Marreiros et al. 2008): all rates positive via exp,
 * the self rate exp(E_ii)/8 becomes inhibitory-to-excitatory coupling. */
static void neural_two_state(const model_dcm *M, const double *P,
                             const double *x, const double *u, double *f,
                             double *dfdx, int nx, double *dfdu, double *E)
{
    const model_dcm_layout *L = &M->L;
    const int n = M->n, nn = n * n;
    const double *xE = x, *xI = x + 5 * n;
    for (int k = 0; k < nn; k++)
        E[k] = exp(E[k]) / 8.0;
    for (int i = 0; i < n; i++) {
        double s = -0.5 * xE[i] - E[i + i * n] * xI[i];
        for (int j = 0; j < n; j++)
            if (j != i)
                s += E[i + j * n] * xE[j];
        for (int j = 0; j < M->m; j++)
            s += P[model_dcm_idx_C(L, i, j)] / 16.0 * u[j];
        f[i] = s;
        f[5 * n + i] = xE[i] - xI[i];
    }
    if (dfdx) {
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++)
                dfdx[i + j * nx] = (i == j) ? -0.5 : E[i + j * n];
            dfdx[i + (5 * n + i) * nx] = -E[i + i * n];
            dfdx[5 * n + i + i * nx] = 1.0;
            dfdx[5 * n + i + (5 * n + i) * nx] = -1.0;
        }
        for (int k = 0; k < L->nd; k++) {
            const double *D = P + L->off_D + k * nn;
            for (int i = 0; i < n; i++) {
                double s = -E[i + i * n] * D[i + i * n] * xI[i];
                for (int j = 0; j < n; j++)
                    if (j != i)
                        s += E[i + j * n] * D[i + j * n] * xE[j];
                dfdx[i + k * nx] += s;
            }
        }
    }
    if (dfdu) {
        for (int j = 0; j < M->m; j++) {
            const double *B = P + L->off_B + j * nn;
            for (int i = 0; i < n; i++) {
                double s = P[model_dcm_idx_C(L, i, j)] / 16.0
                         - E[i + i * n] * B[i + i * n] * xI[i];
                for (int l = 0; l < n; l++)
                    if (l != i)
                        s += E[i + l * n] * B[i + l * n] * xE[l];
                dfdu[i + j * nx] = s;
            }
        }
    }
}

static void haemo_region(const model_dcm *M, const double *P, const double *x, int i,
                         double kappa, double *f, double *dfdx, int nx);

void model_dcm_fx(const model_dcm *M, const double *P, const double *x,
                  const double *u, double *f, double *dfdx, double *dfdu,
                  double *work)
{
    const model_dcm_layout *L = &M->L;
    const int n = M->n, nx = model_dcm_nstates(M);
    if (dfdx)
        memset(dfdx, 0, sizeof(double) * (size_t)nx * nx);
    if (dfdu)
        memset(dfdu, 0, sizeof(double) * (size_t)nx * (M->m ? M->m : 1));

    effective_coupling(M, P, x, u, work);
    if (M->two_state)
        neural_two_state(M, P, x, u, f, dfdx, nx, dfdu, work);
    else
        neural_one_state(M, P, x, u, f, dfdx, nx, dfdu, work);

    const double kappa = HAEMO_KAPPA * exp(P[L->off_decay]);
    for (int i = 0; i < n; i++)
        haemo_region(M, P, x, i, kappa, f, dfdx, nx);
}

void model_dcm_fx_rows(const model_dcm *M, const double *P, const double *x, const double *u,
                       int state, double *f, double *work)
{
    const int n = M->n;
    const int neural = state < n || state >= 5 * n;
    if (neural) {
        effective_coupling(M, P, x, u, work);
        if (M->two_state)
            neural_two_state(M, P, x, u, f, NULL, model_dcm_nstates(M), NULL, work);
        else
            neural_one_state(M, P, x, u, f, NULL, model_dcm_nstates(M), NULL, work);
    }
    if (state < 5 * n)   /* x_r drives s_r; a haemodynamic state its region */
        haemo_region(M, P, x, state % n, HAEMO_KAPPA * exp(P[M->L.off_decay]), f, NULL, 0);
}

/* The balloon model of region i, flow/volume/dHb in log space so they
 * stay positive: f's rows s_i, f_i, v_i, q_i (and their dfdx entries) */
static void haemo_region(const model_dcm *M, const double *P, const double *x, int i,
                         double kappa, double *f, double *dfdx, int nx)
{
    const model_dcm_layout *L = &M->L;
    const int n = M->n;
    const double e0log = log(1.0 - HAEMO_E0);
    const int is = n + i, iff = 2 * n + i, iv = 3 * n + i, iq = 4 * n + i;
    const double tau = HAEMO_TAU * exp(P[L->off_transit + i]);
    const double s = x[is];
    const double F = exp(x[iff]), V = exp(x[iv]), Q = exp(x[iq]);
    const double fv = pow(V, 1.0 / HAEMO_ALPHA);       /* outflow */
    const double pw = exp(e0log / F);                  /* (1-E0)^(1/F) */
    const double ff = (1.0 - pw) / HAEMO_E0;           /* extraction */
    f[is] = x[i] - kappa * s - HAEMO_GAMMA * (F - 1.0);
    f[iff] = s / F;
    f[iv] = (F - fv) / (tau * V);
    f[iq] = (ff * F - fv * Q / V) / (tau * Q);
    if (dfdx) {
        dfdx[is + i * nx] = 1.0;
        dfdx[is + is * nx] = -kappa;
        dfdx[is + iff * nx] = -HAEMO_GAMMA * F;
        dfdx[iff + is * nx] = 1.0 / F;
        dfdx[iff + iff * nx] = -s / F;
        dfdx[iv + iff * nx] = F / (tau * V);
        dfdx[iv + iv * nx] = -fv / (HAEMO_ALPHA * tau * V) - (F - fv) / (tau * V);
        dfdx[iq + iff * nx] = (F * ff + pw * e0log / HAEMO_E0) / (tau * Q);
        dfdx[iq + iv * nx] = -(1.0 / HAEMO_ALPHA - 1.0) * fv / V / tau;
        dfdx[iq + iq * nx] = -ff * F / (tau * Q);
    }
}

/* SPM's BOLD signal of one region from its volume V and dHb Q */
static inline double bold_signal(double k1, double k2, double k3, double V, double Q)
{
    return BOLD_V0 * (k1 * (1.0 - Q) + k2 * (1.0 - Q / V) + k3 * (1.0 - V));
}

void model_dcm_bold_coeffs(const model_dcm *M, const double *P, double k[3])
{
    const double ep = exp(P[M->L.off_epsilon]);
    k[0] = 4.3 * BOLD_NU0 * HAEMO_E0 * M->TE;
    k[1] = ep * BOLD_R0 * HAEMO_E0 * M->TE;
    k[2] = 1.0 - ep;
}

double model_dcm_bold(const double k[3], double log_v, double log_q)
{
    return bold_signal(k[0], k[1], k[2], exp(log_v), exp(log_q));
}

int model_dcm_haemo_region(const model_dcm *M, int k)
{
    const int t = M->L.off_transit;
    return k >= t && k < t + M->n ? k - t : -1;
}

void model_dcm_gx(const model_dcm *M, const double *P, const double *x,
                  double *g, double *dgdx)
{
    const int n = M->n, nx = model_dcm_nstates(M);
    const double ep = exp(P[M->L.off_epsilon]);
    const double k1 = 4.3 * BOLD_NU0 * HAEMO_E0 * M->TE;
    const double k2 = ep * BOLD_R0 * HAEMO_E0 * M->TE;
    const double k3 = 1.0 - ep;
    if (dgdx)
        memset(dgdx, 0, sizeof(double) * (size_t)n * nx);
    for (int i = 0; i < n; i++) {
        const double V = exp(x[3 * n + i]), Q = exp(x[4 * n + i]);
        g[i] = bold_signal(k1, k2, k3, V, Q);
        if (dgdx) {
            dgdx[i + (3 * n + i) * n] = BOLD_V0 * (k2 * Q / V - k3 * V);
            dgdx[i + (4 * n + i) * n] = BOLD_V0 * (-k1 * Q - k2 * Q / V);
        }
    }
}
