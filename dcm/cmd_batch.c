/* cmd_batch.c — `dcm batch` (being written). */
#include "dcm/dcm_cli.h"

int cmd_batch(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_fail("batch", DCM_ERR_USAGE, "not implemented yet");
}
