/* dcm_result.c — release a dcm_result (see dcm_api.h). */
#include "dcm/dcm_api.h"

#include <stdlib.h>

void dcm_result_free(dcm_result *R)
{
    if (!R)
        return;
    free(R->pE);
    free(R->pV);
    free(R->Ep);
    free(R->Cp);
    free(R->Pp);
    free(R->Eh);
    free(R->F_trace);
    free(R->y_obs);
    free(R->y_pred);
    free(R->y_conf);
    free(R);
}
