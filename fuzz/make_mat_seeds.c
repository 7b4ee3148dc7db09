/* make_mat_seeds.c — writes the .mat seeds of the fuzz harness `mat`
 * (fuzz/seeds/mat): an uncompressed copy of a DCM_*.mat that
 * `dcm estimate --mat` wrote (fuzzing compressed bytes mostly tests zlib),
 * and a small VOI_*.mat like SPM's spm_regions saves. One-off tool:
 *   cc -I/usr/include fuzz/make_mat_seeds.c -lmatio -o /tmp/mms
 *   /tmp/mms DCM_compressed.mat fuzz/seeds/mat/dcm.mat fuzz/seeds/mat/voi.mat */
#include <matio.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 4)
        return 1;
    mat_t *in = Mat_Open(argv[1], MAT_ACC_RDONLY);
    mat_t *out = Mat_CreateVer(argv[2], NULL, MAT_FT_MAT5);
    if (!in || !out)
        return 1;
    matvar_t *v;
    while ((v = Mat_VarReadNext(in)) != NULL) {
        Mat_VarWrite(out, v, MAT_COMPRESSION_NONE);
        Mat_VarFree(v);
    }
    Mat_Close(in);
    Mat_Close(out);

    mat_t *voi = Mat_CreateVer(argv[3], NULL, MAT_FT_MAT5);
    if (!voi)
        return 1;
    enum { V = 12, NV = 3 };
    double u[V], y[V * NV], X0[V], xyz[3] = {-36, -78, 4};
    for (int t = 0; t < V; t++) {
        u[t] = (t % 4 < 2) - 0.5 + 0.01 * t;
        X0[t] = 1.0;
        for (int k = 0; k < NV; k++)
            y[t + V * k] = u[t] * (k + 1) + 0.1 * ((t * 7 + k) % 5);
    }
    size_t du[2] = {V, 1}, dy[2] = {V, NV}, dx[2] = {3, 1}, dn[2] = {1, 2};
    const char *fields[] = {"u", "y", "X0", "xyz", "name"};
    size_t one[2] = {1, 1};
    matvar_t *s = Mat_VarCreateStruct("xY", 2, one, fields, 5);
    Mat_VarSetStructFieldByName(s, "u", 0, Mat_VarCreate(NULL, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, du, u, 0));
    Mat_VarSetStructFieldByName(s, "y", 0, Mat_VarCreate(NULL, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dy, y, 0));
    Mat_VarSetStructFieldByName(s, "X0", 0, Mat_VarCreate(NULL, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, du, X0, 0));
    Mat_VarSetStructFieldByName(s, "xyz", 0, Mat_VarCreate(NULL, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dx, xyz, 0));
    Mat_VarSetStructFieldByName(s, "name", 0, Mat_VarCreate(NULL, MAT_C_CHAR, MAT_T_UTF8, 2, dn, "V1", 0));
    Mat_VarWrite(voi, s, MAT_COMPRESSION_NONE);
    Mat_VarFree(s);
    Mat_Close(voi);
    return 0;
}
