/* Keeping certificates from expiring: generated ones are re-issued, the others are warned about. */
#ifndef CERTVISOR_RENEWAL_H
#define CERTVISOR_RENEWAL_H

#include "agent.h"

/*
 * Starts the checks: shortly after start-up, then every hour. A generated
 * certificate with renew_before_days or fewer left is rotated through the
 * apply pipeline (like `cluster certificate rotate <name>`); one provided
 * by the operator (set, csr or external files) logs a warning each time it
 * crosses one of the warn_days thresholds. Returns 0 or -ENOMEM.
 */
int renewal_start(struct agent *agent);

/* Runs the check now (also after each configuration reload, whose settings it follows). */
void renewal_check(struct agent *agent);

void renewal_free(struct agent *agent);

#endif
