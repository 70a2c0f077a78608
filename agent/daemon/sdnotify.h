/* The agent's own side of systemd's protocol: READY, STATUS, RELOADING, STOPPING, WATCHDOG. */
#ifndef CERTVISOR_SDNOTIFY_H
#define CERTVISOR_SDNOTIFY_H

#include "agent.h"

/* Notes whether systemd (or a test standing in for it) listens, and starts the watchdog pings. */
int sdnotify_init(struct agent *agent);

void sdnotify_ready(struct agent *agent);
void sdnotify_status(struct agent *agent, const char *status);
void sdnotify_reloading(struct agent *agent);
void sdnotify_stopping(struct agent *agent);

void sdnotify_free(struct agent *agent);

#endif
