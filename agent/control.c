/* The control socket: unix stream, JSON lines, callers identified with SO_PEERCRED. */
#include "control.h"

#include "cert_auth.h"
#include "commands.h"
#include "control_proto.h"
#include "cv_error.h"
#include "fsutil.h"
#include "log.h"
#include "users.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* A follower that cannot keep up loses lines rather than growing the agent without bound. */
#define CONTROL_MAX_PENDING_OUTPUT (4 * 1024 * 1024)

struct control_server {
    struct agent *agent;
    int fd;
    char *path;
    struct event *accept_event;
    gid_t admin_gid;
    bool has_admin_gid;
    struct control_conn *conns; /* open connections, freed with the server */
    struct fs_identity bound;   /* the socket file this server made */
    bool bound_known;
};

struct control_conn {
    struct control_conn *next;
    struct control_conn **prev_next;
    struct control_server *server;
    struct bufferevent *bev;
    struct control_peer socket_peer; /* who is at the other end, as the kernel says */
    struct control_peer peer;        /* whom the request being answered acts for */
    bool busy;                       /* a request is being answered */
    void (*abandon_fn)(void *data);
    void *abandon_data;
};

const struct control_peer *control_conn_peer(const struct control_conn *conn)
{
    return &conn->peer;
}

struct agent *control_conn_agent(const struct control_conn *conn)
{
    return conn->server->agent;
}

static void conn_free(struct control_conn *conn)
{
    if (conn->busy && conn->abandon_fn)
        conn->abandon_fn(conn->abandon_data);
    *conn->prev_next = conn->next;
    if (conn->next)
        conn->next->prev_next = conn->prev_next;
    bufferevent_free(conn->bev);
    free(conn);
}

static void write_message(struct control_conn *conn, json_t *message)
{
    struct evbuffer *out = bufferevent_get_output(conn->bev);
    size_t len;
    char *line;

    if (evbuffer_get_length(out) > CONTROL_MAX_PENDING_OUTPUT) {
        json_decref(message);
        return;
    }
    line = control_encode(message, &len);
    json_decref(message);
    if (line)
        bufferevent_write(conn->bev, line, len);
    free(line);
}

void control_send(struct control_conn *conn, json_t *message)
{
    write_message(conn, message);
}

static void process_input(struct control_conn *conn);

void control_reply(struct control_conn *conn, json_t *reply)
{
    write_message(conn, reply);
    conn->busy = false;
    conn->abandon_fn = NULL;
    conn->abandon_data = NULL;
    process_input(conn); /* a pipelined request may be waiting */
}

void control_reply_error(struct control_conn *conn, int exit_status, const char *fmt, ...)
{
    char message[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    control_reply(conn, json_pack("{s:i, s:s}", "exit", exit_status, "error", message));
}

void control_reply_refused(struct control_conn *conn, int exit_status, const char *reason,
                           const char *fmt, ...)
{
    char message[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    control_reply(conn, json_pack("{s:i, s:s, s:s}", "exit", exit_status, "error", message,
                                  "reason", reason));
}

void control_on_abandon(struct control_conn *conn, void (*fn)(void *data), void *data)
{
    conn->abandon_fn = fn;
    conn->abandon_data = data;
}

void control_peer_describe(const struct control_peer *peer, char *buf, size_t len)
{
    if (*peer->rest_user)
        snprintf(buf, len, "REST user '%s'%s (uid %u)", peer->rest_user,
                 peer->by_certificate ? " by certificate" : "", (unsigned)peer->uid);
    else
        snprintf(buf, len, "uid %u", (unsigned)peer->uid);
}

/*
 * A request that carries "as_user": {"name", "password"} acts for that REST
 * user, with the user's role. Returns true to go on; false when the request
 * was answered (failed or throttled sign-in).
 */
static bool act_as_rest_user(struct control_conn *conn, json_t *as_user)
{
    struct agent *agent = conn->server->agent;
    const char *name = json_string_value(json_object_get(as_user, "name"));
    const char *password = json_string_value(json_object_get(as_user, "password"));
    enum user_role role = USER_ROLE_VIEWER;
    long retry_after = 0;
    enum user_check check;

    if (!name || !password || strlen(name) >= sizeof(conn->peer.rest_user)) {
        control_reply_error(conn, 2, "as_user needs a string 'name' and 'password'");
        return false;
    }
    check = agent->users
                ? users_check(agent->users, name, password, time(NULL), &role, &retry_after)
                : USER_CHECK_FAILED;
    if (check == USER_CHECK_THROTTLED) {
        log_notice("REST sign-in for '%s' refused: locked for %ld s after repeated failures "
                   "(via uid %u)",
                   name, retry_after, (unsigned)conn->socket_peer.uid);
        control_reply(conn, json_pack("{s:i, s:s, s:s, s:I}", "exit", 4, "error",
                                      "too many failed sign-ins: try again later", "auth",
                                      "throttled", "retry_after", (json_int_t)retry_after));
        return false;
    }
    if (check != USER_CHECK_OK) {
        log_notice("REST sign-in failed for '%s' (via uid %u)", name,
                   (unsigned)conn->socket_peer.uid);
        control_reply(conn, json_pack("{s:i, s:s, s:s}", "exit", 4, "error",
                                      "authentication failed: unknown user or wrong password",
                                      "auth", "failed"));
        return false;
    }
    conn->peer.admin = role == USER_ROLE_ADMIN;
    snprintf(conn->peer.rest_user, sizeof(conn->peer.rest_user), "%s", name);
    return true;
}

/*
 * A request that carries "as_certificate": {"chain": PEM} acts for the REST
 * user that client certificate names. Only the REST API may say which
 * certificate its client presented (anyone else could paste any public
 * certificate), so the connection's peer must be its process. Returns true
 * to go on; false when the request was answered.
 */
static bool act_by_certificate(struct control_conn *conn, json_t *as_certificate)
{
    struct agent *agent = conn->server->agent;
    const char *chain = json_string_value(json_object_get(as_certificate, "chain"));
    enum user_role role = USER_ROLE_VIEWER;
    char name[sizeof(conn->peer.rest_user)], err[512];

    if (!chain) {
        control_reply_error(conn, 2, "as_certificate needs a string 'chain' (PEM)");
        return false;
    }
    if (!cert_auth_trusted_peer(agent, conn->socket_peer.pid)) {
        log_warning("Refused a certificate sign-in from pid %d (uid %u): only the REST API "
                    "service may assert a client certificate",
                    (int)conn->socket_peer.pid, (unsigned)conn->socket_peer.uid);
        control_reply(conn, json_pack("{s:i, s:s, s:s}", "exit", 4, "error",
                                      "certificate sign-in is only taken from the REST API "
                                      "service",
                                      "auth", "failed"));
        return false;
    }
    if (cert_auth_sign_in(agent, chain, name, sizeof(name), &role, err, sizeof(err)) < 0) {
        log_notice("REST sign-in by certificate failed: %s", err);
        control_reply(conn, json_pack("{s:i, s:s, s:s}", "exit", 4, "error",
                                      "authentication failed: the client certificate names no "
                                      "user",
                                      "auth", "failed"));
        return false;
    }
    conn->peer.admin = role == USER_ROLE_ADMIN;
    conn->peer.by_certificate = true;
    snprintf(conn->peer.rest_user, sizeof(conn->peer.rest_user), "%s", name);
    return true;
}

static void dispatch(struct control_conn *conn, json_t *request)
{
    json_t *command = json_object_get(request, "command");
    json_t *args = json_object_get(request, "args");
    json_t *options = json_object_get(request, "options");
    int index;

    if (!json_is_string(command) || (args && !json_is_array(args)) ||
        (options && !json_is_object(options))) {
        control_reply_error(conn, 2,
                            "request needs a string 'command', an array 'args' and an "
                            "object 'options'");
        return;
    }
    conn->peer = conn->socket_peer;
    if (json_object_get(request, "as_user") && json_object_get(request, "as_certificate")) {
        control_reply_error(conn, 2, "a request acts as_user or as_certificate, not both");
        return;
    }
    if (json_object_get(request, "as_user") &&
        !act_as_rest_user(conn, json_object_get(request, "as_user")))
        return;
    if (json_object_get(request, "as_certificate") &&
        !act_by_certificate(conn, json_object_get(request, "as_certificate")))
        return;
    index = control_command_lookup(json_string_value(command));
    if (index < 0) {
        control_reply_error(conn, 2, "unknown command '%s' (see 'certvisorctl help')",
                            json_string_value(command));
        return;
    }
    if (control_command_table[index].access == CONTROL_ACCESS_ADMIN && !conn->peer.admin) {
        char who[128];

        control_peer_describe(&conn->peer, who, sizeof(who));
        log_notice("Refused '%s' from %s (pid %d): not an administrator",
                   json_string_value(command), who, (int)conn->peer.pid);
        if (*conn->peer.rest_user)
            control_reply_refused(conn, 4, "permission_denied",
                                  "permission denied: '%s' needs a user with the admin role",
                                  json_string_value(command));
        else
            control_reply_refused(conn, 4, "permission_denied",
                                  "permission denied: '%s' needs root, certvisord's own user or "
                                  "membership of the admin group",
                                  json_string_value(command));
        return;
    }
    if (control_command_table[index].access == CONTROL_ACCESS_ADMIN &&
        conn->server->agent->shutting_down) {
        control_reply_error(conn, 1, "certvisord is shutting down");
        return;
    }
    if (control_command_table[index].access == CONTROL_ACCESS_ADMIN) {
        char *args_text = args ? json_dumps(args, JSON_COMPACT) : NULL;

        char who[128];

        control_peer_describe(&conn->peer, who, sizeof(who));
        log_info("Control: %s (pid %d) requested %s %s", who, (int)conn->peer.pid,
                 json_string_value(command), args_text ? args_text : "[]");
        free(args_text);
    }
    args = args ? json_incref(args) : json_array();
    commands_dispatch(conn->server->agent, conn, (enum control_command)index, args, options);
    json_decref(args);
}

static void process_input(struct control_conn *conn)
{
    struct evbuffer *in = bufferevent_get_input(conn->bev);

    while (!conn->busy) {
        char err[256];
        size_t len;
        char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
        json_t *request;

        if (!line) {
            if (evbuffer_get_length(in) > CONTROL_MAX_MESSAGE) {
                conn->busy = true;
                control_reply_error(conn, 2, "request exceeds %d bytes", CONTROL_MAX_MESSAGE);
                evbuffer_drain(in, evbuffer_get_length(in));
            }
            return;
        }
        conn->busy = true;
        if (control_decode(line, len, &request, err, sizeof(err)) < 0) {
            control_reply_error(conn, 2, "%s", err);
        } else {
            dispatch(conn, request);
            json_decref(request);
        }
        free(line);
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    process_input(arg);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        conn_free(arg);
}

static bool peer_is_admin(const struct control_server *server, int fd, const struct ucred *cred)
{
    gid_t groups[256];
    socklen_t len = sizeof(groups);

    if (cred->uid == 0 || cred->uid == geteuid())
        return true;
    if (!server->has_admin_gid)
        return false;
    if (cred->gid == server->admin_gid)
        return true;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
        return false;
    for (size_t i = 0; i < len / sizeof(gid_t); i++)
        if (groups[i] == server->admin_gid)
            return true;
    return false;
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
    struct control_server *server = arg;
    struct control_conn *conn;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    int client;

    (void)what;
    client = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (client < 0)
        return;
    if (getsockopt(client, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
        !(conn = calloc(1, sizeof(*conn)))) {
        close(client);
        return;
    }
    conn->server = server;
    conn->socket_peer.uid = cred.uid;
    conn->socket_peer.gid = cred.gid;
    conn->socket_peer.pid = cred.pid;
    conn->socket_peer.admin = peer_is_admin(server, client, &cred);
    conn->peer = conn->socket_peer;
    conn->bev = bufferevent_socket_new(server->agent->base, client, BEV_OPT_CLOSE_ON_FREE);
    if (!conn->bev) {
        close(client);
        free(conn);
        return;
    }
    conn->next = server->conns;
    if (conn->next)
        conn->next->prev_next = &conn->next;
    conn->prev_next = &server->conns;
    server->conns = conn;
    bufferevent_setcb(conn->bev, on_read, NULL, on_event, conn);
    bufferevent_enable(conn->bev, EV_READ);
}

/* True when an agent already answers on path. */
static bool socket_is_live(const struct sockaddr_un *addr)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool live;

    if (fd < 0)
        return false;
    live = connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0;
    close(fd);
    return live;
}

static int resolve_group(const char *name, gid_t *ret_gid, char *err, size_t err_len,
                         const char *setting)
{
    struct group *gr = getgrnam(name);

    if (!gr) {
        snprintf(err, err_len, "%s: group '%s' does not exist (create it, or change %s)", setting,
                 name, setting);
        return CV_ECONFIG;
    }
    *ret_gid = gr->gr_gid;
    return 0;
}

static int bind_socket(struct control_server *server, const struct agent_config *config, char *err,
                       size_t err_len)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    gid_t group = getegid();

    if (strlen(config->control_socket) >= sizeof(addr.sun_path)) {
        snprintf(err, err_len, "control_socket: path '%s' is too long", config->control_socket);
        return -ENAMETOOLONG;
    }
    if (config->control_group &&
        resolve_group(config->control_group, &group, err, err_len, "control_group") < 0)
        return CV_ECONFIG;
    memcpy(addr.sun_path, config->control_socket, strlen(config->control_socket) + 1);
    if (socket_is_live(&addr)) {
        snprintf(err, err_len, "another certvisord is already listening on %s",
                 config->control_socket);
        return -EADDRINUSE;
    }
    unlink(config->control_socket); /* stale, from an agent that did not exit cleanly */
    server->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (server->fd < 0 || bind(server->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        chmod(config->control_socket, 0660) < 0 ||
        chown(config->control_socket, (uid_t)-1, group) < 0 || listen(server->fd, 64) < 0) {
        snprintf(err, err_len, "cannot listen on %s: %s", config->control_socket, strerror(errno));
        return -errno;
    }
    server->bound_known = fs_identity_of(config->control_socket, &server->bound) == 0;
    return 0;
}

int control_server_new(struct agent *agent, struct control_server **ret_server, char *err,
                       size_t err_len)
{
    struct control_server *server = calloc(1, sizeof(*server));
    int r;

    if (!server)
        return -ENOMEM;
    server->agent = agent;
    server->fd = -1;
    server->path = strdup(agent->config->control_socket);
    if (!server->path) {
        control_server_free(server);
        return -ENOMEM;
    }
    if (agent->config->admin_group) {
        r = resolve_group(agent->config->admin_group, &server->admin_gid, err, err_len,
                          "admin_group");
        if (r < 0) {
            control_server_free(server);
            return r;
        }
        server->has_admin_gid = true;
    }
    r = bind_socket(server, agent->config, err, err_len);
    if (r < 0) {
        control_server_free(server);
        return r;
    }
    server->accept_event =
        event_new(agent->base, server->fd, EV_READ | EV_PERSIST, on_accept, server);
    if (!server->accept_event) {
        control_server_free(server);
        return -ENOMEM;
    }
    *ret_server = server;
    return 0;
}

int control_server_start(struct control_server *server)
{
    return event_add(server->accept_event, NULL) < 0 ? -ENOMEM : 0;
}

void control_server_free(struct control_server *server)
{
    if (!server)
        return;
    while (server->conns)
        conn_free(server->conns);
    if (server->accept_event)
        event_free(server->accept_event);
    if (server->fd >= 0) {
        close(server->fd);
        if (server->bound_known)
            fs_unlink_if_same(server->path, &server->bound);
    }
    free(server->path);
    free(server);
}
