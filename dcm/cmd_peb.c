/* cmd_peb.c — `dcm peb` (being written). */
#include "dcm/dcm_cli.h"

int cmd_peb(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_fail("peb", DCM_ERR_USAGE, "not implemented yet");
}
