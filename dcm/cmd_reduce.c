/* cmd_reduce.c — `dcm reduce` (being written). */
#include "dcm/dcm_cli.h"

int cmd_reduce(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_fail("reduce", DCM_ERR_USAGE, "not implemented yet");
}
