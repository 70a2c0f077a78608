/* The NOTIFY_SOCKET the agent owns: systemd's datagram protocol, credited by SO_PASSCRED. */
#ifndef CERTVISOR_NOTIFY_H
#define CERTVISOR_NOTIFY_H

#include <event2/event.h>
#include <sys/types.h>

struct notify_server;

/*
 * Called for each datagram with the sender's pid as the kernel vouches for
 * it, and the message (NUL-terminated; lines of KEY=VALUE).
 */
typedef void (*notify_fn)(void *data, pid_t sender, const char *message);

/*
 * Binds path (replacing a stale socket) and starts receiving. inherited_fd (taken; -1 for
 * none) is the socket a re-exec handed over, used as it is when still bound to path.
 * Returns 0 or -errno.
 */
int notify_server_new(struct event_base *base, const char *path, int inherited_fd, notify_fn fn,
                      void *data, struct notify_server **ret_server);

/* The socket, for a re-exec to hand over. */
int notify_server_fd(const struct notify_server *server);

/* Handles every message waiting in the socket now, as the loop would when it gets to it. */
void notify_server_read_pending(struct notify_server *server);

void notify_server_free(struct notify_server *server);

/*
 * Returns the value of key in a notify message (pointing into the message,
 * up to the end of its line) and its length, or NULL.
 */
const char *notify_field(const char *message, const char *key, size_t *ret_len);

#endif
