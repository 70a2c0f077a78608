/* The control socket: unix stream, JSON lines, callers identified with SO_PEERCRED. */
#ifndef CERTVISOR_CONTROL_H
#define CERTVISOR_CONTROL_H

#include "agent.h"

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

struct control_server;
struct control_conn;

/* Who is calling, as the kernel says. */
struct control_peer {
    uid_t uid;
    gid_t gid;
    pid_t pid;
    bool admin; /* root, the agent's own user, or a member of the admin group */
    /*
     * The REST user this request acts for ("" when none): the REST API passes
     * each request's credentials, the agent checks them, and the user's role,
     * not the API's own uid, decides what the request may do.
     */
    char rest_user[65];
    bool by_certificate; /* the REST user signed in with a client certificate */
};

/*
 * "uid 0", "REST user 'alice' (uid 999)" or "REST user 'alice' by certificate
 * (uid 999)", for audit lines.
 */
void control_peer_describe(const struct control_peer *peer, char *buf, size_t len);

/*
 * Listens on the configured socket (mode 0660, the configured group). Refuses
 * to start when another agent already answers there. inherited_fd (taken; -1
 * for none) is the socket a re-exec handed over: used as it is when it still
 * listens on the configured path, so that no client is refused meanwhile.
 * Returns 0 or a negative error, with a message in err.
 */
int control_server_new(struct agent *agent, int inherited_fd, struct control_server **ret_server,
                       char *err, size_t err_len);

/* The listening socket, for a re-exec to hand over. */
int control_server_fd(const struct control_server *server);

/* A connection's socket, for a re-exec to hand over (the new binary answers on it). */
int control_conn_fd(const struct control_conn *conn);

/*
 * Starts accepting. The socket listens from control_server_new() on (so a
 * second agent is refused at once), but clients wait in the backlog until the
 * agent has its services and can answer for them.
 */
int control_server_start(struct control_server *server);

void control_server_free(struct control_server *server);

/*
 * For a re-exec. Pause stops accepting (new clients wait in the backlog, which is handed
 * over) and ends every streaming request (tail -f) with {"exit": 0, "ended": why}; resume
 * accepts again when the re-exec does not happen. Unsettled counts the connections in the
 * middle of something: a request being read or answered (but not one handed over), an
 * answer being sent, a refusal lingering. Idle_fds gives the sockets of the connections
 * between requests (at most max), which the next binary takes with control_server_adopt()
 * (taken: closed when it cannot be used); their next request waits in the socket meanwhile.
 */
void control_server_pause(struct control_server *server, const char *why);
int control_server_resume(struct control_server *server);
size_t control_server_unsettled(const struct control_server *server);
size_t control_server_idle_fds(const struct control_server *server, int *fds, size_t max);
void control_server_adopt(struct control_server *server, int fd);

const struct control_peer *control_conn_peer(const struct control_conn *conn);

/* The agent a connection belongs to. */
struct agent *control_conn_agent(const struct control_conn *conn);

/* Sends a streamed message; the request stays open. Takes the reference. */
void control_send(struct control_conn *conn, json_t *message);

/* Sends the final answer and ends the request. Takes the reference. */
void control_reply(struct control_conn *conn, json_t *reply);

/* The request's answer (when it succeeds) carries "stale": why, for a read answered from this
 * node's copy while the cluster's store is out of reach (cluster_sync_staleness). */
void control_conn_mark_stale(struct control_conn *conn, const char *why);

/* Ends the request with {"exit": exit_status, "error": message}. */
void control_reply_error(struct control_conn *conn, int exit_status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Ends the request with {"exit": exit_status, "error": message, "reason":
 * reason}: a refusal that programs tell apart by its reason word
 * ("permission_denied", "unknown_setting", ...) rather than by its message.
 */
void control_reply_refused(struct control_conn *conn, int exit_status, const char *reason,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Registers what to call if the client goes away before the request ends
 * (the pending operation then completes without anyone to tell).
 */
void control_on_abandon(struct control_conn *conn, void (*fn)(void *data), void *data);

/* The request streams until its client leaves (tail -f): a re-exec ends it (and calls
 * the abandon hook) rather than wait for it. */
void control_conn_streams(struct control_conn *conn);

/* The request is answered by the binary a re-exec starts: the re-exec does not wait for
 * it to be answered, and hands its socket over. */
void control_conn_hand_over(struct control_conn *conn);

#endif
