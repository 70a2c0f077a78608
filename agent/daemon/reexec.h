/*
 * certvisorctl daemon-reexec (and SIGUSR2): the agent executes its binary again (the new one
 * after a package upgrade) in its own process, so that its services stay its children and
 * nothing about them changes. What the new binary needs is handed over in a memfd
 * (reexec_state.h); what it cannot read, it adopts as after a crash (supervisor_adopt()).
 */
#ifndef CERTVISOR_REEXEC_H
#define CERTVISOR_REEXEC_H

#include "agent.h"
#include "records.h"

#include <stddef.h>

/* How long a re-exec waits for the agent to settle (no change, no start or stop under way). */
#define REEXEC_SETTLE_TIMEOUT_S 30

/*
 * First thing in main, before anything opens a descriptor: remembers the binary
 * (/proc/self/exe) and the arguments to run again. With state_fd >= 0 (--reexec-state),
 * reads what the previous binary handed over, keeps the descriptors it names and closes
 * every other one it left open. A state it cannot read is reported by reexec_attach(); the
 * services are then adopted from run_dir/services.json. Returns 0 or -ENOMEM.
 */
int reexec_new(int argc, char **argv, int state_fd, struct reexec **ret_reexec);

/* Once the loop and logging exist: registers the hook and the SIGUSR2 handling, logs how
 * the previous binary's state was received. */
int reexec_attach(struct reexec *reexec, struct agent *agent);

/* The handed-over control and notify sockets (taken: -1 afterwards, and -1 when none). */
int reexec_take_control_fd(struct reexec *reexec);
int reexec_take_notify_fd(struct reexec *reexec);

/* The next control connection handed over between requests (taken), or -1 when none is left. */
int reexec_take_conn_fd(struct reexec *reexec);

/* The services' record handed over, or NULL: adopt from run_dir/services.json then. */
const struct service_records *reexec_records(const struct reexec *reexec);

/* After adoption: the output FIFOs the previous binary held open are the services' outputs'
 * again, and its copies are closed. adopted is how many services were kept. */
void reexec_adopted(struct reexec *reexec, size_t adopted);

/* At READY=1: answers the daemon-reexec requests that waited through the exec. */
void reexec_ready(struct reexec *reexec);

/* Starts a re-exec as SIGUSR2 asks (no one to answer). */
void reexec_on_signal(struct agent *agent);

void reexec_free(struct reexec *reexec);

#endif
