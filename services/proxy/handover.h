/*
 * A binary upgrade without refusing a connection. On SIGUSR2 the running proxy starts its
 * binary again (the new one after an upgrade) as a child that inherits every listening
 * socket; the new process serves on the same sockets, sends READY=1 with MAINPID= (it becomes
 * the service's main process for certvisord) and tells the old one through a pipe. The old
 * one then stops accepting (the sockets stay open in the new one, so no connection waiting in
 * a backlog is lost), lets its established connections finish, up to --drain-timeout, and
 * exits. Should the new process not come up, the old one never stopped serving.
 */
#ifndef CERTVISOR_PROXY_HANDOVER_H
#define CERTVISOR_PROXY_HANDOVER_H

#include "generation.h"

#include <event2/event.h>
#include <stdbool.h>
#include <sys/types.h>

/* What the old process passes to the new one in its environment. */
#define HANDOVER_LISTEN_ENV "CERTVISOR_PROXY_LISTEN_FDS" /* "5,6,7": the listening sockets */
#define HANDOVER_READY_ENV "CERTVISOR_PROXY_READY_FD"    /* a pipe: one byte once serving */

/*
 * In a new process: takes the listening sockets the old one passed into table (by address,
 * one per worker; missing ones are opened, extra ones closed) and remembers the ready pipe.
 * Returns how many sockets were taken (0 when not started by a hand-over), or a negative
 * errno with err saying why.
 */
int handover_inherit(struct listener_table *table, char *err, size_t err_len);

/* True when this process was started by a hand-over (it must send MAINPID=). */
bool handover_inherited(void);

/* In a new process, once serving: tells the old one to drain. */
void handover_tell_ready(void);

struct handover;

/*
 * In the running process: starts the binary at binary with argv, handing it every socket of
 * table. on_ready runs on base once it serves (the caller then drains); a child that fails
 * is logged and forgotten. Returns 0, -EALREADY while one is under way, or a negative errno.
 */
int handover_begin(struct handover **handover, struct event_base *base, const char *binary,
                   char *const *argv, const struct listener_table *table,
                   void (*on_ready)(void *data), void *data);

void handover_free(struct handover *handover);

#endif
