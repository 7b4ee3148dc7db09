/* cmd_extract.c — `dcm extract` (being written). */
#include "dcm/dcm_cli.h"

int cmd_extract(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_fail("extract", DCM_ERR_USAGE, "not implemented yet");
}
