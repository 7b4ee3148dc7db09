/* cmd_average.c — `dcm average` (being written). */
#include "dcm/dcm_cli.h"

int cmd_average(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_fail("average", DCM_ERR_USAGE, "not implemented yet");
}
