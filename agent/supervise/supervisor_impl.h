/*
 * The inside of the supervisor, private to agent/supervise (see service_impl.h for the
 * guard): the other parts hold a pointer and use supervisor.h.
 */
#ifndef CERTVISOR_SUPERVISOR_IMPL_H
#define CERTVISOR_SUPERVISOR_IMPL_H

#ifndef CERTVISOR_SUPERVISE_INTERNAL
#error "supervisor_impl.h is private to agent/supervise: use supervisor.h"
#endif

#include "supervisor.h"

/* The services and what the supervisor needs of the agent, passed in rather than reached. */
struct supervisor {
    struct event_base *base;
    const struct agent_config *config; /* in force: notify socket, output limits */
    bool under_systemd;                /* the agent's own NOTIFY_SOCKET was set */
    struct service **services;         /* dependencies first */
    size_t n_services;
    struct event *removal_event; /* frees removed services outside their own transitions */
    struct supervisor_observer observer;
    bool scheduling, schedule_again; /* a pass is running: a nested call folds into it */
    char *fifo_dir; /* run_dir/output: the services' output FIFOs (output.h), or NULL: pipes */
    struct event *records_event; /* writes run_dir/services.json from the loop (adopt.c) */
    char *records_text;          /* what it holds, so that an unchanged one is not rewritten */
    /* supervisor_adopt() ran: the record is this supervisor's to write. Before, it may be a
     * running agent's (this one is about to find that out and exit). */
    bool records_owned;
    struct notify_server
        *notify; /* the services' notify socket, read ahead of a hand-over's exit */
};

/*
 * A service's main process exited while it was handing over to its successor: what the
 * successor sent (MAINPID=) before that exit may still wait in the notify socket, whose
 * turn in the loop need not come before the exit's. Reads it now. Returns true when the
 * service switched to its successor meanwhile (the exit is then the previous process's).
 */
bool supervisor_read_handover(struct supervisor *sup, struct service *service, pid_t exited);

/* The services' processes changed (a pass, a reload): their record is written from the loop. */
void supervisor_records_changed(struct supervisor *sup);

#endif
