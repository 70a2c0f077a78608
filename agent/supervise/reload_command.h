/* Running a service's reload_command (systemd's ExecReload): spawn, capture, reap, report. */
#ifndef CERTVISOR_RELOAD_COMMAND_H
#define CERTVISOR_RELOAD_COMMAND_H

#include <stddef.h>

struct service;

/*
 * Starts the service's reload command as the service's user, in its directory,
 * with its clean environment (no NOTIFY_SOCKET), in a process group of its own.
 * Its stdout goes to the service's log as it is; its stderr too, through a
 * pipe the agent reads so that the last line can explain a failure. Sets
 * service->reload_pid. Returns 0, or a negative error with a message in err.
 */
int reload_command_start(struct service *service, char *err, size_t err_len);

/*
 * The reload command's process ended (supervisor_reap saw reload_pid): reads
 * what is left of its output and frees the run. Writes the outcome to why:
 * "" for exit status 0, else the exit status or signal, then the last line
 * of its stderr (or why it could not be executed). Returns 0 for success, -EIO
 * for a failure.
 */
int reload_command_finish(struct service *service, int wait_status, char *why, size_t why_len);

/* Kills the command's process group (a timeout, or the service going away); it is reaped later. */
void reload_command_kill(struct service *service);

/* Frees the run without waiting for the process (the service is being freed); kills it first. */
void reload_command_abandon(struct service *service);

#endif
