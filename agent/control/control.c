/* The control socket: unix stream, JSON lines, callers identified with SO_PEERCRED. */
#include "control.h"

#include "cert_auth.h"
#include "commands.h"
#include "config.h"
#include "control_proto.h"
#include "cv_error.h"
#include "fsutil.h"
#include "ldap_signin.h"
#include "log.h"
#include "netutil.h"
#include "offload.h"
#include "service.h"
#include "signin_limits.h"
#include "supervisor.h"
#include "users.h"

#include <event2/event.h>
#include <errno.h>
#include <fcntl.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <grp.h>
#include <openssl/crypto.h>
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
/*
 * Connections: each costs a descriptor and buffers. The REST API holds one per
 * request in flight (its own clients are capped at 128), so the total leaves
 * it room; one uid may not take them all. Main processes of supervised
 * services are not held to the per-uid cap (the API under load is one uid).
 */
#define CONTROL_MAX_CONNECTIONS 512
#define CONTROL_MAX_CONNECTIONS_PER_UID 64
/* A refused client is kept (without a request slot) until it has sent its request and read
 * the refusal, for at most CONTROL_LINGER_MS; beyond this many, it is closed at once. */
#define CONTROL_MAX_LINGERING 64
#define CONTROL_LINGER_MS 2000
/* A request must arrive whole within this from its first byte: a slow sender holds no slot. */
#define CONTROL_PARTIAL_TIMEOUT_S 10
/* A connection with no request under way and nothing sent is closed after this. */
#define CONTROL_IDLE_TIMEOUT_S 60
/* The log says how many sign-ins the budget refused at most this often. */
#define CONTROL_BUSY_LOG_INTERVAL_MS 10000

struct control_server {
    struct agent *agent;
    int fd;
    char *path;
    struct event *accept_event;
    gid_t admin_gid;
    bool has_admin_gid;
    struct control_conn *conns; /* open connections, freed with the server */
    size_t n_conns;             /* those that hold a request slot (not lingering refusals) */
    size_t n_lingering;
    struct fs_identity bound; /* the socket file this server made */
    bool bound_known;
    struct signin_limits *signin;  /* the sign-in budget and lock-outs */
    struct ldap_cache *ldap_cache; /* directory sign-ins remembered (ldap_cache_seconds) */
    unsigned ldap_in_flight;       /* directory checks on the workers (at most LDAP_IN_FLIGHT) */
    struct sign_in *ldap_waiting;  /* directory sign-ins waiting for their turn, oldest first */
    struct sign_in *sign_ins;      /* key derivations on the offload workers */
    unsigned long busy_refusals;   /* sign-ins the budget refused since the last log line */
    int64_t busy_logged_ms;        /* when that was logged */
    bool paused;                   /* not accepting: a re-exec hands the backlog over */
};

struct control_conn {
    struct control_conn *next;
    struct control_conn **prev_next;
    struct control_server *server;
    struct bufferevent *bev;
    struct control_peer socket_peer; /* who is at the other end, as the kernel says */
    struct control_peer peer;        /* whom the request being answered acts for */
    bool busy;                       /* a request is being answered */
    bool counted;                    /* holds a request slot (a refused one lingers without) */
    bool closing;                    /* answered for the last time: freed once that is sent */
    bool input_after_close;          /* the client sent something after closing began */
    bool partial_timer;              /* the timer runs for a partial request, not for idleness */
    bool streaming;                  /* the request streams until the client leaves (tail -f) */
    bool handed_over;                /* the next binary answers the request (daemon-reexec) */
    struct event *resume;            /* takes the next request up outside the reply's stack */
    struct event *timer;             /* the idle, partial-line or closing deadline */
    struct sign_in *sign_in;         /* the sign-in this request waits for, or NULL */
    void (*abandon_fn)(void *data);
    void *abandon_data;
    char stale[512]; /* the answer may be behind the cluster's: why ("" when not) */
};

/* Directory checks at once (see start_next_ldap). */
#define LDAP_IN_FLIGHT 1

/*
 * A password sign-in waiting for its key derivation, or a directory user's check, on an
 * offload worker (or, for a directory user, for its turn). The worker touches only check or
 * ldap (agent/core/offload.h); conn and server are cleared when they go first, and the job is
 * then only freed.
 */
struct sign_in {
    struct sign_in *next;
    struct sign_in **prev_next;
    struct control_server *server; /* NULL once the server is gone */
    struct control_conn *conn;     /* NULL once the client went away */
    json_t *request;               /* dispatched once signed in */
    struct users_check *check;     /* a local user's key derivation, or: */
    struct ldap_signin *ldap;      /* a directory user's check (agent/auth/ldap_signin.h) */
    char *password;                /* the directory user's, to remember a success; wiped */
    bool ldap_counted;             /* on a worker: counted in ldap_in_flight */
    struct sign_in *waiting_next;  /* in the server's ldap_waiting queue */
    char name[SIGNIN_NAME_LEN];
    char source[SIGNIN_SOURCE_LEN];
};

static int64_t now_ms(void)
{
    return (int64_t)(monotonic_usec() / 1000);
}

static void sign_in_free(struct sign_in *job)
{
    if (job->prev_next) {
        *job->prev_next = job->next;
        if (job->next)
            job->next->prev_next = job->prev_next;
    }
    if (job->conn)
        job->conn->sign_in = NULL;
    users_check_free(job->check);
    if (job->ldap_counted && job->server)
        job->server->ldap_in_flight--;
    ldap_signin_free(job->ldap);
    if (job->password) {
        OPENSSL_cleanse(job->password, strlen(job->password));
        free(job->password);
    }
    json_decref(job->request);
    OPENSSL_cleanse(job, sizeof(*job));
    free(job);
}

/* The server goes away: its jobs run on, and are only freed when they come back. */
static void sign_in_detach(struct sign_in *job)
{
    *job->prev_next = job->next;
    if (job->next)
        job->next->prev_next = job->prev_next;
    job->prev_next = NULL;
    job->next = NULL;
    job->server = NULL;
    if (job->conn)
        job->conn->sign_in = NULL;
    job->conn = NULL;
}

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
    /* A sign-in under way runs on: its result is only freed when it comes back. */
    if (conn->sign_in)
        conn->sign_in->conn = NULL;
    *conn->prev_next = conn->next;
    if (conn->next)
        conn->next->prev_next = conn->prev_next;
    if (conn->counted)
        conn->server->n_conns--;
    else
        conn->server->n_lingering--;
    if (conn->resume)
        event_free(conn->resume);
    if (conn->timer)
        event_free(conn->timer);
    bufferevent_free(conn->bev);
    free(conn);
}

static void arm_timer(struct control_conn *conn, long ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    event_add(conn->timer, &tv);
}

/*
 * Between requests: a partial request must be completed within
 * CONTROL_PARTIAL_TIMEOUT_S of its first byte, an idle connection is closed
 * after CONTROL_IDLE_TIMEOUT_S. While a request is answered, no deadline.
 */
static void arm_request_timer(struct control_conn *conn)
{
    size_t pending = evbuffer_get_length(bufferevent_get_input(conn->bev));

    conn->partial_timer = pending > 0;
    arm_timer(conn, (pending ? CONTROL_PARTIAL_TIMEOUT_S : CONTROL_IDLE_TIMEOUT_S) * 1000L);
}

/* Frees a closing connection once its last answer is out and the client has had its say. */
static void maybe_finish_closing(struct control_conn *conn)
{
    if (conn->closing && conn->input_after_close &&
        evbuffer_get_length(bufferevent_get_output(conn->bev)) == 0)
        conn_free(conn);
}

/*
 * Sends a last message and closes: reading is over (what the client sends now
 * is discarded), and the connection is freed once the message is out and the
 * client has sent its request or gone, or after CONTROL_LINGER_MS. A client
 * that writes before it reads (certvisorctl) thus gets the message rather
 * than a broken pipe.
 */
static void close_with(struct control_conn *conn, json_t *message, bool client_has_sent)
{
    struct evbuffer *in = bufferevent_get_input(conn->bev);
    size_t len;
    char *line = control_encode(message, &len);

    json_decref(message);
    evbuffer_drain(in, evbuffer_get_length(in));
    if (line)
        bufferevent_write(conn->bev, line, len);
    free(line);
    conn->closing = true;
    conn->input_after_close = client_has_sent;
    event_del(conn->resume);
    arm_timer(conn, CONTROL_LINGER_MS);
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

void control_conn_mark_stale(struct control_conn *conn, const char *why)
{
    snprintf(conn->stale, sizeof(conn->stale), "%s", why);
}

void control_reply(struct control_conn *conn, json_t *reply)
{
    /* Only an answer is marked: a refusal says nothing about the cluster's state. */
    if (conn->stale[0] && json_integer_value(json_object_get(reply, "exit")) == 0)
        json_object_set_new(reply, "stale", json_string(conn->stale));
    conn->stale[0] = '\0';
    write_message(conn, reply);
    conn->busy = false;
    conn->streaming = false;
    conn->handed_over = false;
    conn->abandon_fn = NULL;
    conn->abandon_data = NULL;
    /* A pipelined request may be waiting. It is taken up from the loop, never from here:
     * a reply made while reading a request would otherwise recurse into reading the next. */
    event_active(conn->resume, EV_TIMEOUT, 0);
    arm_request_timer(conn);
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

void control_conn_streams(struct control_conn *conn)
{
    conn->streaming = true;
}

void control_conn_hand_over(struct control_conn *conn)
{
    conn->handed_over = true;
}

void control_peer_describe(const struct control_peer *peer, char *buf, size_t len)
{
    if (*peer->rest_user)
        snprintf(buf, len, "REST user '%s'%s (uid %u)", peer->rest_user,
                 peer->by_certificate ? " by certificate" : "", (unsigned)peer->uid);
    else
        snprintf(buf, len, "uid %u", (unsigned)peer->uid);
}

static void run_command(struct control_conn *conn, json_t *request);

/* True when pid is the main process of a supervised service (the REST API, the console...). */
static bool peer_is_service(const struct agent *agent, pid_t pid)
{
    for (size_t i = 0; pid > 0 && i < supervisor_count(agent->supervisor); i++)
        if (service_pid(supervisor_service(agent->supervisor, i)) == pid)
            return true;
    return false;
}

/*
 * Whom a sign-in counts against: the client's address that the REST API
 * passes ("source"), taken only from a supervised service (anyone else could
 * name any address to dodge a lock-out), else the caller's uid. Returns 0,
 * or -EINVAL when a service passed something that is not an IP address.
 */
static int sign_in_source(const struct control_conn *conn, json_t *as_user, char *buf, size_t len)
{
    const char *address = json_string_value(json_object_get(as_user, "source"));

    if (address && peer_is_service(conn->server->agent, conn->socket_peer.pid))
        return signin_source_of_address(address, buf, len);
    snprintf(buf, len, "uid %u", (unsigned)conn->socket_peer.uid);
    return 0;
}

static void reply_throttled(struct control_conn *conn, const char *reason, long retry_after,
                            const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * {"auth": "throttled", "reason", "retry_after"}: the REST API answers 429 for a
 * lock-out (reason too_many_failed_sign_ins) and 503 for a spent sign-in budget
 * (reason sign_in_busy), both with Retry-After.
 */
static void reply_throttled(struct control_conn *conn, const char *reason, long retry_after,
                            const char *fmt, ...)
{
    char message[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    control_reply(conn,
                  json_pack("{s:i, s:s, s:s, s:s, s:I}", "exit", 4, "error", message, "auth",
                            "throttled", "reason", reason, "retry_after", (json_int_t)retry_after));
}

/* One log line per CONTROL_BUSY_LOG_INTERVAL_MS for the refusals of a flood, not one each. */
static void note_busy_refusal(struct control_server *server, int64_t now)
{
    server->busy_refusals++;
    if (now - server->busy_logged_ms < CONTROL_BUSY_LOG_INTERVAL_MS)
        return;
    log_warning("Refused %lu REST sign-ins: the key-derivation budget is spent (%d per second "
                "and %d at once in all, %d per second and %d at once per source); clients were "
                "told to retry",
                server->busy_refusals, SIGNIN_RATE, SIGNIN_MAX_PENDING, SIGNIN_SOURCE_RATE,
                SIGNIN_SOURCE_MAX_PENDING);
    server->busy_refusals = 0;
    server->busy_logged_ms = now;
}

/* Records the outcome, logs it, and answers a failure. Returns true when signed in. */
static bool conclude_sign_in(struct control_conn *conn, const char *name, const char *source,
                             bool ok, enum user_role role)
{
    long locked_for = 0;
    bool source_locked = false;

    signin_limits_record(conn->server->signin, source, name, ok, now_ms(), &locked_for,
                         &source_locked);
    if (ok) {
        conn->peer.admin = role == USER_ROLE_ADMIN;
        snprintf(conn->peer.rest_user, sizeof(conn->peer.rest_user), "%s", name);
        return true;
    }
    log_notice("REST sign-in failed for '%s' from %s (via uid %u)", name, source,
               (unsigned)conn->socket_peer.uid);
    if (locked_for && source_locked)
        log_warning("REST sign-ins from %s locked out for %ld s after more than %d failures",
                    source, locked_for, SIGNIN_SOURCE_FAILURES_FREE);
    else if (locked_for)
        log_warning("REST sign-ins for '%s' from %s locked out for %ld s after more than %d "
                    "failures (other sources are not affected)",
                    name, source, locked_for, SIGNIN_NAME_FAILURES_FREE);
    control_reply(conn, json_pack("{s:i, s:s, s:s}", "exit", 4, "error",
                                  "authentication failed: unknown user or wrong password", "auth",
                                  "failed"));
    return false;
}

static void start_next_ldap(struct control_server *server);

static void sign_in_work(void *data)
{
    struct sign_in *job = data;

    if (job->ldap)
        ldap_signin_run(job->ldap);
    else
        users_check_derive(job->check);
}

/*
 * The directory could not be asked: not the user's failure (no lock-out counts it), a 503 that
 * names the directory. Local users are not affected.
 */
static void directory_unavailable(struct control_conn *conn, const char *name, const char *why)
{
    log_warning("REST sign-in for directory user '%s': the LDAP directory cannot be asked: %s",
                name, why);
    control_reply(conn, json_pack("{s:i, s:s, s:s}", "exit", 4, "error",
                                  why && *why ? why : "the LDAP directory cannot be asked", "auth",
                                  "unavailable"));
}

/* A directory user's check is back: remembered when it succeeded, then concluded. */
static void ldap_sign_in_done(struct sign_in *job, struct control_conn *conn, json_t *request)
{
    struct agent *agent = job->server->agent;
    const struct policy *policy = &agent->config->policy;
    enum user_role role = USER_ROLE_VIEWER;
    const char *why = NULL;
    enum ldap_signin_result result = ldap_signin_outcome(job->ldap, policy, &role, &why, NULL);

    if (result == LDAP_SIGNIN_OK)
        ldap_cache_store(job->server->ldap_cache, policy, job->name, job->password, time(NULL),
                         role);
    else if (result == LDAP_SIGNIN_DENIED)
        log_notice("REST sign-in for directory user '%s' refused: %s", job->name, why);
    if (result == LDAP_SIGNIN_UNAVAILABLE) {
        if (conn)
            directory_unavailable(conn, job->name, why);
        sign_in_free(job);
        return;
    }
    if (!conn) {
        signin_limits_record(job->server->signin, job->source, job->name, result == LDAP_SIGNIN_OK,
                             now_ms(), NULL, NULL);
        sign_in_free(job);
        return;
    }
    if (conclude_sign_in(conn, job->name, job->source, result == LDAP_SIGNIN_OK, role)) {
        sign_in_free(job);
        run_command(conn, request);
    } else {
        sign_in_free(job);
    }
}

/* Back on the loop: the request goes on when its client is still there. */
static void sign_in_done(void *data, bool cancelled)
{
    struct sign_in *job = data;
    struct control_conn *conn = job->conn;
    enum user_role role = USER_ROLE_VIEWER;
    json_t *request;
    bool ok;

    if (cancelled || !job->server) {
        sign_in_free(job);
        return;
    }
    signin_limits_release(job->server->signin, job->source);
    if (job->ldap) {
        struct control_server *server = job->server;

        request = json_incref(job->request);
        ldap_sign_in_done(job, conn, request);
        json_decref(request);
        start_next_ldap(server); /* its turn is over */
        return;
    }
    ok = job->server->agent->users && users_check_finish(job->server->agent->users, job->check,
                                                         time(NULL), &role) == USER_CHECK_OK;
    if (!conn) {
        /* The client left. Its failure still counts: hanging up must not dodge a lock-out. */
        signin_limits_record(job->server->signin, job->source, job->name, ok, now_ms(), NULL, NULL);
        sign_in_free(job);
        return;
    }
    request = json_incref(job->request);
    if (conclude_sign_in(conn, job->name, job->source, ok, role)) {
        sign_in_free(job);
        run_command(conn, request);
    } else {
        sign_in_free(job);
    }
    json_decref(request);
}

/* Joins a sign-in to its server's list (detached if the server goes) and its connection. */
static void link_sign_in(struct control_server *server, struct control_conn *conn,
                         struct sign_in *job)
{
    job->next = server->sign_ins;
    if (job->next)
        job->next->prev_next = &job->next;
    job->prev_next = &server->sign_ins;
    server->sign_ins = job;
    conn->sign_in = job;
}

/*
 * Hands a sign-in's work (job->check or job->ldap, set by the caller, whose budget slot it holds)
 * to a worker; the request waits (the connection stays busy) and goes on from sign_in_done().
 */
static void queue_sign_in(struct control_conn *conn, json_t *request, struct sign_in *job,
                          const char *name, const char *source)
{
    struct control_server *server = conn->server;

    /* Whole before it is queued: a worker may take it up at once. */
    job->server = server;
    job->conn = conn;
    job->request = json_incref(request);
    snprintf(job->name, sizeof(job->name), "%s", name);
    snprintf(job->source, sizeof(job->source), "%s", source);
    if (offload_submit(server->agent->offload, sign_in_work, sign_in_done, job) < 0) {
        job->conn = NULL;
        sign_in_free(job);
        signin_limits_release(server->signin, source);
        control_reply_error(conn, 1, "out of memory");
        return;
    }
    link_sign_in(server, conn, job);
}

/*
 * Hands the next waiting directory sign-ins to a worker, one at a time (LDAP_IN_FLIGHT): a
 * directory that accepts connections and never answers holds a worker for ldap_timeout, and
 * the other worker stays free for local users' key derivations (the admins who must get in
 * while the directory is down) and the agent's keys. A waiting sign-in whose client left is
 * dropped; one that a sign-in just before it made known goes on at once.
 */
static void start_next_ldap(struct control_server *server)
{
    struct agent *agent = server->agent;
    const struct policy *policy = &agent->config->policy;
    char helper[PATH_MAX];

    snprintf(helper, sizeof(helper), "%s/certvisor-ldap-check", agent->config->libexec_dir);
    while (server->ldap_in_flight < LDAP_IN_FLIGHT && server->ldap_waiting) {
        struct sign_in *job = server->ldap_waiting;
        struct control_conn *conn = job->conn;
        enum user_role role = USER_ROLE_VIEWER;
        json_t *request;

        server->ldap_waiting = job->waiting_next;
        job->waiting_next = NULL;
        if (!conn || ldap_cache_lookup(server->ldap_cache, policy, job->name, job->password,
                                       time(NULL), &role)) {
            signin_limits_release(server->signin, job->source);
            request = json_incref(job->request);
            if (conn && conclude_sign_in(conn, job->name, job->source, true, role)) {
                sign_in_free(job);
                run_command(conn, request);
            } else {
                sign_in_free(job);
            }
            json_decref(request);
            continue;
        }
        if (ldap_signin_new(policy, agent->certs, helper, job->name, job->password, &job->ldap) <
                0 ||
            offload_submit(agent->offload, sign_in_work, sign_in_done, job) < 0) {
            signin_limits_release(server->signin, job->source);
            control_reply_error(conn, 1, "out of memory");
            sign_in_free(job);
            continue;
        }
        server->ldap_in_flight++;
        job->ldap_counted = true;
    }
}

/*
 * A directory user (ldap_signin_applies): a sign-in remembered lately goes on at once; else it
 * waits its turn (start_next_ldap) for certvisor-ldap-check to ask the directory from a
 * worker, within the same budget as a key derivation.
 */
static void start_ldap_sign_in(struct control_conn *conn, json_t *request, const char *name,
                               const char *password, const char *source, int64_t now)
{
    struct control_server *server = conn->server;
    const struct policy *policy = &server->agent->config->policy;
    enum user_role role = USER_ROLE_VIEWER;
    long retry_after = 1;
    struct sign_in *job, **tail;

    if (ldap_cache_lookup(server->ldap_cache, policy, name, password, time(NULL), &role)) {
        if (conclude_sign_in(conn, name, source, true, role))
            run_command(conn, request);
        return;
    }
    if (signin_limits_take(server->signin, source, now, &retry_after) == SIGNIN_BUSY) {
        note_busy_refusal(server, now);
        reply_throttled(conn, "sign_in_busy", retry_after,
                        "sign-in busy: too many sign-ins at once, try again in %ld s", retry_after);
        return;
    }
    job = calloc(1, sizeof(*job));
    if (!job || !(job->password = strdup(password))) {
        free(job);
        signin_limits_release(server->signin, source);
        control_reply_error(conn, 1, "out of memory");
        return;
    }
    /* Linked to the server and the connection like any sign-in, then queued behind the others. */
    job->server = server;
    job->conn = conn;
    job->request = json_incref(request);
    snprintf(job->name, sizeof(job->name), "%s", name);
    snprintf(job->source, sizeof(job->source), "%s", source);
    link_sign_in(server, conn, job);
    for (tail = &server->ldap_waiting; *tail; tail = &(*tail)->waiting_next)
        ;
    *tail = job;
    start_next_ldap(server);
}

/*
 * A request that carries "as_user": {"name", "password"[, "source"]} acts for
 * that REST user, with the user's role. The key derivation runs on an
 * offload worker; the request waits (the connection stays busy) and goes on
 * from sign_in_done(). Answers the request itself when the sign-in is refused
 * or answered at once.
 */
static void start_sign_in(struct control_conn *conn, json_t *request, json_t *as_user)
{
    struct control_server *server = conn->server;
    struct agent *agent = server->agent;
    const char *name = json_string_value(json_object_get(as_user, "name"));
    const char *password = json_string_value(json_object_get(as_user, "password"));
    enum user_role role = USER_ROLE_VIEWER;
    struct users_check *check = NULL;
    char source[SIGNIN_SOURCE_LEN];
    struct sign_in *job;
    long retry_after = 1;
    int64_t now = now_ms();

    if (!name || !password || strlen(name) >= sizeof(conn->peer.rest_user)) {
        control_reply_error(conn, 2, "as_user needs a string 'name' and 'password'");
        return;
    }
    if (sign_in_source(conn, as_user, source, sizeof(source)) < 0) {
        control_reply_error(conn, 2, "as_user: 'source' must be an IPv4 or IPv6 address");
        return;
    }
    if (signin_limits_check_lock(server->signin, source, name, now, &retry_after) ==
        SIGNIN_LOCKED) {
        reply_throttled(conn, "too_many_failed_sign_ins", retry_after,
                        "too many failed sign-ins from %s: try again in %ld s", source,
                        retry_after);
        return;
    }
    if (ldap_signin_applies(&agent->config->policy, agent->users, name)) {
        start_ldap_sign_in(conn, request, name, password, source, now);
        return;
    }
    if (!agent->users) {
        conclude_sign_in(conn, name, source, false, role);
        return;
    }
    switch (users_check_begin(agent->users, name, password, time(NULL), &role, &check)) {
    case USER_CHECK_OK: /* checked lately: no derivation */
        if (conclude_sign_in(conn, name, source, true, role))
            run_command(conn, request);
        return;
    case USER_CHECK_FAILED:
        control_reply_error(conn, 1, "out of memory");
        return;
    case USER_CHECK_PENDING:
        break;
    }
    /* An unknown name costs a derivation too, so it is counted the same. */
    if (signin_limits_take(server->signin, source, now, &retry_after) == SIGNIN_BUSY) {
        users_check_free(check);
        note_busy_refusal(server, now);
        reply_throttled(conn, "sign_in_busy", retry_after,
                        "sign-in busy: too many sign-ins at once, try again in "
                        "%ld s",
                        retry_after);
        return;
    }
    job = calloc(1, sizeof(*job));
    if (!job) {
        users_check_free(check);
        signin_limits_release(server->signin, source);
        control_reply_error(conn, 1, "out of memory");
        return;
    }
    job->check = check;
    queue_sign_in(conn, request, job, name, source);
}

/* True when word names a secret setting, as "cluster config" or "cluster ldap config" take it. */
static bool names_secret(json_t *word)
{
    char full[80];
    int setting;

    if (!json_is_string(word) || json_string_length(word) > 64)
        return false;
    setting = policy_setting_lookup(json_string_value(word));
    if (setting < 0) {
        snprintf(full, sizeof(full), "ldap_%s", json_string_value(word));
        setting = policy_setting_lookup(full);
    }
    return setting >= 0 && policy_secret((enum policy_setting)setting);
}

/* The arguments as the log may show them: the value after a secret setting's name masked. */
static json_t *loggable_args(json_t *args)
{
    json_t *copy = args ? json_deep_copy(args) : NULL;

    for (size_t i = 0; copy && i + 1 < json_array_size(copy); i++)
        if (names_secret(json_array_get(copy, i)))
            json_array_set_new(copy, ++i, json_string(POLICY_SECRET_SHOWN));
    return copy;
}

/*
 * True when pid is the main process of a running service whose tls section
 * has certificate_auth (the REST API). Only such a service saw the TLS
 * handshake that proved the client holds the certificate's key, so only its
 * word that "this client presented this certificate" is taken. The pid comes
 * from SO_PEERCRED; while the service runs its pid cannot be anyone else's.
 */
static bool peer_is_certificate_auth_service(const struct agent *agent, pid_t pid)
{
    for (size_t i = 0; pid > 0 && i < supervisor_count(agent->supervisor); i++) {
        const struct service *service = supervisor_service(agent->supervisor, i);

        if (service_pid(service) != pid)
            continue;
        for (size_t t = 0; t < service_config_of(service)->n_tls; t++)
            if (service_config_of(service)->tls[t].certificate_auth)
                return true;
    }
    return false;
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
    if (!peer_is_certificate_auth_service(agent, conn->socket_peer.pid)) {
        log_warning("Refused a certificate sign-in from pid %d (uid %u): only the REST API "
                    "service may assert a client certificate",
                    (int)conn->socket_peer.pid, (unsigned)conn->socket_peer.uid);
        control_reply(conn, json_pack("{s:i, s:s, s:s}", "exit", 4, "error",
                                      "certificate sign-in is only taken from the REST API "
                                      "service",
                                      "auth", "failed"));
        return false;
    }
    if (cert_auth_sign_in(&agent->config->policy, agent->certs, agent->users, chain, name,
                          sizeof(name), &role, err, sizeof(err)) < 0) {
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

/* Checks the request's shape and who it acts for, then runs it (perhaps after a sign-in). */
static void dispatch(struct control_conn *conn, json_t *request)
{
    json_t *command = json_object_get(request, "command");
    json_t *args = json_object_get(request, "args");
    json_t *options = json_object_get(request, "options");

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
    if (json_object_get(request, "as_user")) {
        start_sign_in(conn, request, json_object_get(request, "as_user"));
        return;
    }
    if (json_object_get(request, "as_certificate") &&
        !act_by_certificate(conn, json_object_get(request, "as_certificate")))
        return;
    /* A request the REST API forwards for a caller without credentials (a joining node's):
     * whatever the API's own uid may do, it acts as nobody in particular. */
    if (json_is_true(json_object_get(request, "as_anonymous")))
        conn->peer.admin = false;
    run_command(conn, request);
}

/* The request's command, for conn->peer (signed in already when it acts for a REST user). */
static void run_command(struct control_conn *conn, json_t *request)
{
    json_t *command = json_object_get(request, "command");
    json_t *args = json_object_get(request, "args");
    json_t *options = json_object_get(request, "options");
    int index;

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
        json_t *shown = loggable_args(args);
        char *args_text = shown ? json_dumps(shown, JSON_COMPACT) : NULL;
        char who[128];

        json_decref(shown);

        control_peer_describe(&conn->peer, who, sizeof(who));
        log_info("Control: %s (pid %d) requested %s %s", who, (int)conn->peer.pid,
                 json_string_value(command), args_text ? args_text : "[]");
        free(args_text);
    }
    args = args ? json_incref(args) : json_array();
    commands_dispatch(conn->server->agent, conn, (enum control_command)index, args, options);
    json_decref(args);
}

/* close_with() a usage error {"exit": 2, "error", "reason"} after the client's request. */
static void close_with_error(struct control_conn *conn, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void close_with_error(struct control_conn *conn, const char *reason, const char *fmt, ...)
{
    char message[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    close_with(conn, json_pack("{s:i, s:s, s:s}", "exit", 2, "error", message, "reason", reason),
               true);
}

/* The answer to a request over CONTROL_MAX_MESSAGE: what it read is dropped, and the connection
 * closed (the rest of the line could not be told from a next request). */
static void refuse_oversized(struct control_conn *conn)
{
    log_notice("Control: closed a connection of uid %u (pid %d): request exceeds %d bytes",
               (unsigned)conn->socket_peer.uid, (int)conn->socket_peer.pid, CONTROL_MAX_MESSAGE);
    close_with_error(conn, "too_large",
                     "request exceeds %d bytes (the limit of one control message): the "
                     "connection is closed",
                     CONTROL_MAX_MESSAGE);
}

/*
 * Takes up the next complete request, if any and none is being answered.
 * One request per call: the next one is taken up from the loop once this is
 * answered (control_reply()), so a client that pipelines many cannot hold the
 * loop, and nothing here ever runs inside a reply.
 */
static void process_input(struct control_conn *conn)
{
    struct evbuffer *in = bufferevent_get_input(conn->bev);
    char err[256];
    size_t len;
    char *line;
    json_t *request;

    if (conn->busy || conn->closing)
        return;
    line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
    if (!line) {
        /* The read watermark stops reading at one byte over the limit. */
        if (evbuffer_get_length(in) > CONTROL_MAX_MESSAGE)
            refuse_oversized(conn);
        else if (evbuffer_get_length(in) > 0 && !conn->partial_timer)
            arm_request_timer(conn); /* the first bytes of a request: its deadline starts */
        return;
    }
    if (len > CONTROL_MAX_MESSAGE) {
        OPENSSL_clear_free(line, len);
        refuse_oversized(conn);
        return;
    }
    conn->busy = true;
    event_del(conn->timer);
    conn->partial_timer = false;
    if (control_decode(line, len, &request, err, sizeof(err)) < 0) {
        control_reply_error(conn, 2, "%s", err);
    } else {
        dispatch(conn, request);
        json_decref(request);
    }
    /* The line may carry a key or a password (libevent's own buffers are wiped by
     * lib/secure_alloc.c; this copy is freed here, with free(), so it is wiped here). */
    OPENSSL_clear_free(line, len);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    process_input(arg);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct control_conn *conn = arg;
    size_t pending = evbuffer_get_length(bufferevent_get_input(conn->bev));

    (void)fd;
    (void)what;
    if (conn->closing || conn->busy) {
        if (conn->closing)
            conn_free(conn);
        return;
    }
    if (pending == 0) {
        conn_free(conn); /* idle: the client has nothing to say */
        return;
    }
    log_notice("Control: closed a connection of uid %u (pid %d): a request was not completed "
               "within %d s",
               (unsigned)conn->socket_peer.uid, (int)conn->socket_peer.pid,
               CONTROL_PARTIAL_TIMEOUT_S);
    close_with_error(conn, "timeout",
                     "request not completed within %d s of its first byte: the connection is "
                     "closed",
                     CONTROL_PARTIAL_TIMEOUT_S);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct control_conn *conn = arg;

    if (conn->closing) {
        struct evbuffer *in = bufferevent_get_input(bev);

        evbuffer_drain(in, evbuffer_get_length(in));
        conn->input_after_close = true;
        maybe_finish_closing(conn);
        return;
    }
    process_input(conn);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    maybe_finish_closing(arg);
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

/* How many connections that hold a request slot come from uid. */
static size_t conns_of_uid(const struct control_server *server, uid_t uid)
{
    size_t n = 0;

    for (const struct control_conn *c = server->conns; c; c = c->next)
        n += c->counted && c->socket_peer.uid == uid;
    return n;
}

/*
 * Whether a new connection gets a request slot: NULL when it does, else the
 * refusal, which states the limit.
 */
static json_t *admission_refusal(const struct control_server *server, const struct ucred *cred)
{
    char message[256];

    if (server->n_conns >= CONTROL_MAX_CONNECTIONS)
        snprintf(message, sizeof(message),
                 "too many control connections (at most %d in all): try again when fewer are "
                 "open",
                 CONTROL_MAX_CONNECTIONS);
    else if (!peer_is_service(server->agent, cred->pid) &&
             conns_of_uid(server, cred->uid) >= CONTROL_MAX_CONNECTIONS_PER_UID)
        snprintf(message, sizeof(message),
                 "too many control connections from uid %u (at most %d per uid): close some, "
                 "then try again",
                 (unsigned)cred->uid, CONTROL_MAX_CONNECTIONS_PER_UID);
    else
        return NULL;
    return json_pack("{s:i, s:s, s:s}", "exit", 1, "error", message, "reason",
                     "too_many_connections");
}

/* A connected client (taken): admitted with a request slot, or refused with the reason. */
static void take_client(struct control_server *server, int client)
{
    struct control_conn *conn;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    json_t *refusal;

    if (getsockopt(client, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        close(client);
        return;
    }
    refusal = admission_refusal(server, &cred);
    if (refusal && server->n_lingering >= CONTROL_MAX_LINGERING) {
        json_decref(refusal); /* too many refusals waiting already: no words for this one */
        close(client);
        return;
    }
    if (!(conn = calloc(1, sizeof(*conn)))) {
        json_decref(refusal);
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
    conn->resume = event_new(server->agent->base, -1, 0, on_resume, conn);
    conn->timer = event_new(server->agent->base, -1, 0, on_timer, conn);
    if (!conn->bev || !conn->resume || !conn->timer) {
        if (conn->bev)
            bufferevent_free(conn->bev);
        else
            close(client);
        if (conn->resume)
            event_free(conn->resume);
        if (conn->timer)
            event_free(conn->timer);
        json_decref(refusal);
        free(conn);
        return;
    }
    conn->next = server->conns;
    if (conn->next)
        conn->next->prev_next = &conn->next;
    conn->prev_next = &server->conns;
    server->conns = conn;
    conn->counted = !refusal;
    if (conn->counted)
        server->n_conns++;
    else
        server->n_lingering++;
    bufferevent_setcb(conn->bev, on_read, on_write, on_event, conn);
    /* Reading stops one byte over the limit: a longer line is refused, never buffered. */
    bufferevent_setwatermark(conn->bev, EV_READ, 0, CONTROL_MAX_MESSAGE + 1);
    bufferevent_enable(conn->bev, EV_READ);
    if (refusal) {
        log_notice("Control: refused a connection of uid %u (pid %d): %s", (unsigned)cred.uid,
                   (int)cred.pid, json_string_value(json_object_get(refusal, "error")));
        close_with(conn, refusal, false);
        return;
    }
    arm_request_timer(conn);
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
    int client;

    (void)what;
    client = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (client >= 0)
        take_client(arg, client);
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

/*
 * The socket a re-exec handed over (inherited_fd), if it still listens where the
 * configuration says: no client is refused while the agent re-executes. Otherwise it is
 * closed, and a new one is bound.
 */
static bool take_inherited(struct control_server *server, const struct agent_config *config,
                           int inherited_fd, gid_t group)
{
    if (inherited_fd < 0)
        return false;
    if (!net_unix_socket_at(inherited_fd, SOCK_STREAM, config->control_socket) ||
        fcntl(inherited_fd, F_SETFL, fcntl(inherited_fd, F_GETFL) | O_NONBLOCK) < 0) {
        close(inherited_fd);
        return false;
    }
    server->fd = inherited_fd;
    /* The group may have changed with the configuration the new binary read. */
    if (chmod(config->control_socket, 0660) < 0 ||
        chown(config->control_socket, (uid_t)-1, group) < 0)
        log_warning("Cannot set the mode and group of %s: %s", config->control_socket,
                    strerror(errno));
    server->bound_known = fs_identity_of(config->control_socket, &server->bound) == 0;
    return true;
}

static int bind_socket(struct control_server *server, const struct agent_config *config,
                       int inherited_fd, char *err, size_t err_len)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    gid_t group = getegid();

    if (strlen(config->control_socket) >= sizeof(addr.sun_path)) {
        snprintf(err, err_len, "control_socket: path '%s' is too long", config->control_socket);
        return -ENAMETOOLONG;
    }
    if (config->control_group &&
        resolve_group(config->control_group, &group, err, err_len, "control_group") < 0) {
        if (inherited_fd >= 0)
            close(inherited_fd);
        return CV_ECONFIG;
    }
    if (take_inherited(server, config, inherited_fd, group))
        return 0;
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

int control_server_new(struct agent *agent, int inherited_fd, struct control_server **ret_server,
                       char *err, size_t err_len)
{
    struct control_server *server = calloc(1, sizeof(*server));
    int r;

    if (!server) {
        if (inherited_fd >= 0)
            close(inherited_fd);
        return -ENOMEM;
    }
    server->agent = agent;
    server->fd = -1;
    server->path = strdup(agent->config->control_socket);
    if (!server->path || signin_limits_new(&server->signin) < 0 ||
        ldap_cache_new(&server->ldap_cache) < 0) {
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
    r = bind_socket(server, agent->config, inherited_fd, err, err_len);
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

int control_server_fd(const struct control_server *server)
{
    return server->fd;
}

int control_conn_fd(const struct control_conn *conn)
{
    return (int)bufferevent_getfd(conn->bev);
}

/*
 * A connection between requests: nothing read and not yet answered, nothing still to send.
 * What its client sends next waits in the socket, for whichever binary reads it.
 */
static bool conn_between_requests(const struct control_conn *conn)
{
    return conn->counted && !conn->busy && !conn->closing &&
           evbuffer_get_length(bufferevent_get_input(conn->bev)) == 0 &&
           evbuffer_get_length(bufferevent_get_output(conn->bev)) == 0;
}

void control_server_pause(struct control_server *server, const char *why)
{
    struct control_conn *next;

    if (!server->paused)
        event_del(server->accept_event);
    server->paused = true;
    for (struct control_conn *conn = server->conns; conn; conn = next) {
        next = conn->next;
        if (!conn->streaming)
            continue;
        /* The stream's own state goes first (its abandon hook), then the last answer. */
        if (conn->abandon_fn)
            conn->abandon_fn(conn->abandon_data);
        conn->abandon_fn = NULL;
        control_reply(conn, json_pack("{s:i, s:s}", "exit", 0, "ended", why));
    }
}

int control_server_resume(struct control_server *server)
{
    if (!server->paused)
        return 0;
    server->paused = false;
    return event_add(server->accept_event, NULL) < 0 ? -ENOMEM : 0;
}

size_t control_server_unsettled(const struct control_server *server)
{
    size_t n = 0;

    for (const struct control_conn *conn = server->conns; conn; conn = conn->next)
        n += !conn->handed_over && !conn_between_requests(conn);
    return n;
}

size_t control_server_idle_fds(const struct control_server *server, int *fds, size_t max)
{
    size_t n = 0;

    for (const struct control_conn *conn = server->conns; conn && n < max; conn = conn->next)
        if (conn_between_requests(conn))
            fds[n++] = control_conn_fd(conn);
    return n;
}

void control_server_adopt(struct control_server *server, int fd)
{
    int flags = fcntl(fd, F_GETFL);

    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        close(fd);
        return;
    }
    take_client(server, fd);
}

void control_server_free(struct control_server *server)
{
    if (!server)
        return;
    while (server->conns)
        conn_free(server->conns);
    /* Waiting directory sign-ins are on no worker: freed here, not when a worker is done. */
    while (server->ldap_waiting) {
        struct sign_in *job = server->ldap_waiting;

        server->ldap_waiting = job->waiting_next;
        sign_in_free(job);
    }
    while (server->sign_ins)
        sign_in_detach(server->sign_ins);
    signin_limits_free(server->signin);
    ldap_cache_free(server->ldap_cache);
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
