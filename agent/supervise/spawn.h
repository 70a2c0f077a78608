/* Starting a service's process: identity, environment, descriptors, session, exec. */
#ifndef CERTVISOR_SPAWN_H
#define CERTVISOR_SPAWN_H

#include "service_config.h"

#include <stddef.h>
#include <sys/types.h>

struct spawn_request {
    const struct service_config *config;
    /* What to execute: NULL for the service's own command (config->argv), or its reload command. */
    char *const *argv;
    const char *notify_socket; /* NULL: no NOTIFY_SOCKET in the environment */
    int stdout_fd;             /* becomes the child's stdout; -1 for /dev/null */
    int stderr_fd;
};

/*
 * Forks and execs the service in a new session (so its pid is also its
 * process group), as its configured user, with a clean environment, stdin on
 * /dev/null and no other inherited descriptors. Returns 0 with the pid and
 * the read end of the exec-status pipe: it reaches EOF with no data when
 * exec() succeeded, and yields a struct spawn_failure when it did not.
 * Returns a negative error (with a message in err) when nothing was started.
 */
int spawn_service(const struct spawn_request *request, pid_t *ret_pid, int *ret_status_fd,
                  char *err, size_t err_len);

/* What a child that could not exec reports through the status pipe. */
struct spawn_failure {
    int stage; /* enum spawn_stage */
    int error; /* errno */
};

/* Reads a failure from the status pipe into a message. Returns 1 if one was read, else 0. */
int spawn_read_failure(int status_fd, const struct service_config *config, char *buf, size_t len);

/* The same, for a process that executed program (a reload command, say) rather than argv[0]. */
int spawn_read_failure_of(int status_fd, const struct service_config *config, const char *program,
                          char *buf, size_t len);

#endif
