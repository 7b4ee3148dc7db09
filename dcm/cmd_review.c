/* cmd_review.c — `dcm review` (being written). */
#include "dcm/dcm_cli.h"

int cmd_review(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_fail("review", DCM_ERR_USAGE, "not implemented yet");
}
