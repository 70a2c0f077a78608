/*
 * What every certvisor service does around its own work, in one place:
 *
 *  - the log's identity: $CERTVISOR_SERVICE (the name certvisord runs it
 *    under, "proxy") or the program's name;
 *  - SIGPIPE ignored: a peer gone away is an error from write, not a signal;
 *  - SIGTERM and SIGINT: STOPPING=1, the loop ends, exit status 0;
 *  - SIGHUP: the notify protocol's reload handshake. RELOADING=1 with
 *    MONOTONIC_USEC, the service's reload, then READY=1. A reload that fails
 *    has changed nothing (the service keeps what it served), is logged with
 *    STATUS= and ERRNO=, and ends the service with status 1: certvisord sees
 *    the reload fail and rolls the change back. A service without a reload
 *    reads its files at start only; SIGHUP then logs how to apply a change.
 *
 * Services only: it speaks the notify protocol through libsystemd, which the
 * agent does not link (docs/design.md).
 */
#ifndef CERTVISOR_SERVICE_RUNTIME_H
#define CERTVISOR_SERVICE_RUNTIME_H

#include <event2/event.h>
#include <stddef.h>

/*
 * Re-reads the service's files and puts them in force whole, or changes
 * nothing and returns a negative errno with a message.
 */
typedef int (*service_reload_fn)(void *data, char *err, size_t err_len);

struct service_runtime {
    struct event_base *base;
    int exit_status; /* what service_runtime_run returns */
    /* private */
    const char *program;
    const char *no_reload_hint;
    service_reload_fn reload;
    void *data;
    struct event *signals[3];
};

/*
 * Sets up the log (at log_level, a LOG_* priority), ignores SIGPIPE and
 * creates the event loop. Returns 0, or -1 with the reason logged.
 */
int service_runtime_open(struct service_runtime *rt, const char *program, int log_level);

/*
 * Watches SIGTERM, SIGINT and SIGHUP as described above. With reload NULL,
 * no_reload_hint ends the notice SIGHUP logs ("restart it (certvisorctl
 * restart sentinel_service) to apply a change"). Returns 0, or -1 with the
 * reason logged.
 */
int service_runtime_watch_signals(struct service_runtime *rt, service_reload_fn reload, void *data,
                                  const char *no_reload_hint);

/* READY=1, with STATUS= from the format when it is not NULL. */
void service_runtime_ready(struct service_runtime *rt, const char *status_format, ...)
    __attribute__((format(printf, 2, 3)));

/* Runs the loop until a stop signal or service_runtime_exit. Returns the exit status. */
int service_runtime_run(struct service_runtime *rt);

/* Ends the loop: service_runtime_run returns status. */
void service_runtime_exit(struct service_runtime *rt, int status);

/* Frees the signal events and the loop (after the service freed what used it). */
void service_runtime_close(struct service_runtime *rt);

/*
 * A number for a command-line option, between min and max: or a message
 * naming the option on stderr and exit status 2, as for any usage error.
 */
long service_option_number(const char *program, const char *option, const char *text, long min,
                           long max);

/* A port for a command-line option (0 to 65535; 0: any free port), as above. */
int service_option_port(const char *program, const char *option, const char *text);

#endif
