/* cmd_report.c — `dcm report` (being written). */
#include "dcm/dcm_cli.h"

int cmd_report(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_fail("report", DCM_ERR_USAGE, "not implemented yet");
}
