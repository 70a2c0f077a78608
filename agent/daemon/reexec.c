/*
 * Re-executing the agent's binary with its services left as they are (reexec.h).
 *
 * The old binary waits until nothing is half-way (no change being applied, no job on the
 * offload workers, no service starting, stopping or reloading), writes the services' record
 * and its own descriptors into a memfd, clears close-on-exec on what it hands over and
 * executes the binary's path with --reexec-state. The process, its pid and its children
 * stay; only the program changes. A failed execv() changes nothing: the agent answers why
 * and runs on.
 *
 * Handed over: the listening control socket (the agent stops accepting while it settles, so
 * clients queue in its backlog), the notify socket (a service's READY=1 or STATUS= waits in
 * it), the connections of the daemon-reexec requests (the new binary answers them once
 * ready), every other control connection that is between requests (its next request waits
 * in the socket), and a reading end of every output FIFO (a line a service writes meanwhile
 * waits in the pipe instead of meeting EPIPE). So no client is cut: the agent waits for
 * every request under way to be answered, for at most REEXEC_CONN_GRACE_MS once it is
 * otherwise settled (a client that neither finishes its request nor reads its answer is
 * cut then), and ends the streaming ones (tail -f) with a last line that says why.
 */
#include "reexec.h"

#include "apply.h"
#include "control.h"
#include "fsutil.h"
#include "log.h"
#include "notify.h"
#include "offload.h"
#include "reexec_state.h"
#include "service.h"
#include "supervisor.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef CERTVISOR_VERSION
#define CERTVISOR_VERSION "0.0.0"
#endif

#define SETTLE_POLL_MS 20
/* How long, once the agent itself has settled, requests under way may take to be answered. */
#define REEXEC_CONN_GRACE_MS 3000
#define STREAM_ENDED "certvisord is re-executing: run the command again to follow on"

struct reexec_waiter {
    struct reexec *reexec;
    struct control_conn *conn; /* NULL: free, or the client went away */
};

struct reexec {
    struct agent *agent;
    char binary[PATH_MAX]; /* what to execute: the path this binary was started from */
    char **argv;           /* the agent's arguments, without --reexec-state */
    struct event *timer;   /* polls for the agent to settle */
    bool pending;
    uint64_t asked_usec;
    uint64_t settled_usec; /* since when the agent has been settled (0: it is not) */
    struct reexec_waiter waiters[REEXEC_MAX_REPLIES];
    struct reexec_state *received; /* what the previous binary handed over, or NULL */
    char receive_error[512];       /* why it could not be read ("" when it was, or none) */
    bool was_reexec;               /* started with --reexec-state */
    size_t adopted;
};

static void set_cloexec(int fd, bool on)
{
    int flags = fcntl(fd, F_GETFD);

    if (flags >= 0)
        fcntl(fd, F_SETFD, on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC);
}

/* close_range(), or one close() at a time where a filter refuses it (it is in systemd's
 * @basic-io, but an older kernel lacks it). */
static void close_from_to(unsigned first, unsigned last)
{
    long max = sysconf(_SC_OPEN_MAX);

    if (close_range(first, last, 0) == 0)
        return;
    if (max > 0 && (unsigned long)max - 1 < last)
        last = (unsigned)max - 1;
    for (unsigned fd = first; fd <= last; fd++)
        close((int)fd);
}

/* Closes every descriptor from 3 up that is not in keep (n of them, in ascending order). */
static void close_all_but(const int *keep, size_t n)
{
    unsigned first = 3;

    for (size_t i = 0; i < n; i++) {
        if ((unsigned)keep[i] > first)
            close_from_to(first, (unsigned)keep[i] - 1);
        first = (unsigned)keep[i] + 1;
        set_cloexec(keep[i], true);
    }
    close_from_to(first, ~0U);
}

static void receive(struct reexec *reexec, int fd)
{
    static int keep[REEXEC_MAX_FDS]; /* once, before anything else runs: off the stack */
    size_t len = 0, n;
    char *text = NULL;
    int r;

    reexec->was_reexec = true;
    r = lseek(fd, 0, SEEK_SET) < 0 ? -errno : fs_read_all(fd, REEXEC_STATE_MAX_BYTES, &text, &len);
    close(fd);
    reexec->received = calloc(1, sizeof(*reexec->received));
    if (r < 0 || !reexec->received) {
        snprintf(reexec->receive_error, sizeof(reexec->receive_error), "descriptor %d: %s", fd,
                 r == -EFBIG ? "larger than the state can be" : strerror(r < 0 ? -r : ENOMEM));
    } else {
        r = reexec_state_parse(text, len, reexec->received, reexec->receive_error,
                               sizeof(reexec->receive_error));
    }
    free(text);
    if (r < 0 || !reexec->received) {
        free(reexec->received);
        reexec->received = NULL;
        close_all_but(keep, 0); /* whatever it left open, nobody here knows what it is */
        return;
    }
    n = reexec_state_fds(reexec->received, keep);
    close_all_but(keep, n);
}

int reexec_new(int argc, char **argv, int state_fd, struct reexec **ret_reexec)
{
    struct reexec *reexec = calloc(1, sizeof(*reexec));
    int used = 0;

    if (!reexec || !(reexec->argv = calloc((size_t)argc + 1, sizeof(char *)))) {
        free(reexec);
        return -ENOMEM;
    }
    fs_own_binary(reexec->binary, sizeof(reexec->binary));
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--reexec-state") == 0) {
            i++; /* and its value */
            continue;
        }
        if (strncmp(argv[i], "--reexec-state=", 15) == 0)
            continue;
        reexec->argv[used++] = argv[i];
    }
    if (state_fd >= 0)
        receive(reexec, state_fd);
    *ret_reexec = reexec;
    return 0;
}

/* --- the old binary: waiting to settle, then handing over --- */

static void answer_all(struct reexec *reexec, const char *why)
{
    for (size_t i = 0; i < REEXEC_MAX_REPLIES; i++) {
        struct control_conn *conn = reexec->waiters[i].conn;

        reexec->waiters[i].conn = NULL;
        if (conn)
            control_reply_error(conn, 1, "%s", why);
    }
}

/* Nothing half-way that an exec would cut: a change, an offloaded job, a transition. */
static bool agent_settled(const struct agent *agent)
{
    if (!apply_idle(agent) || !offload_idle(agent->offload))
        return false;
    for (size_t i = 0; i < supervisor_count(agent->supervisor); i++) {
        struct service_snapshot now;

        service_snapshot(supervisor_service(agent->supervisor, i), &now);
        /* A service waiting to retry is steady: it starts again under the new binary. */
        if (now.state == SERVICE_BACKOFF)
            continue;
        if (now.start_pending || now.stop_pending || now.change_pending || now.reloading ||
            now.state == SERVICE_STARTING || now.state == SERVICE_STOPPING)
            return false;
    }
    return true;
}

/* A reading end of every output FIFO, into fds; returns how many. */
static size_t hold_fifos(const char *dir_path, int *fds, size_t max)
{
    DIR *dir = dir_path ? opendir(dir_path) : NULL;
    struct dirent *entry;
    size_t n = 0;

    if (!dir)
        return 0;
    while (n < max && (entry = readdir(dir))) {
        int fd;

        if (entry->d_type != DT_FIFO)
            continue;
        fd = openat(dirfd(dir), entry->d_name, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0)
            fds[n++] = fd;
    }
    closedir(dir);
    return n;
}

struct handover {
    int memfd;
    int reply_fds[REEXEC_MAX_REPLIES];
    size_t n_reply;
    int fifo_fds[REEXEC_MAX_FIFOS];
    size_t n_fifo;
    int conn_fds[REEXEC_MAX_CONNS];
    size_t n_conn;
    int control_fd, notify_fd;
};

static void handover_close(struct handover *h)
{
    if (h->memfd >= 0)
        close(h->memfd);
    for (size_t i = 0; i < h->n_reply; i++)
        close(h->reply_fds[i]);
    for (size_t i = 0; i < h->n_fifo; i++)
        close(h->fifo_fds[i]);
    for (size_t i = 0; i < h->n_conn; i++)
        close(h->conn_fds[i]);
    /* The agent's own sockets stay its own: close-on-exec again. */
    set_cloexec(h->control_fd, true);
    set_cloexec(h->notify_fd, true);
}

static json_t *fd_array(const int *fds, size_t n)
{
    json_t *list = json_array();

    for (size_t i = 0; list && i < n; i++)
        json_array_append_new(list, json_integer(fds[i]));
    return list;
}

/* The state, in a memfd at offset 0; 0 or a negative errno. */
static int write_state(struct reexec *reexec, struct handover *h)
{
    struct agent *agent = reexec->agent;
    json_t *records = supervisor_records(agent->supervisor), *state;
    char *text = NULL;
    int r;

    state =
        json_pack("{s:i, s:s, s:s, s:I, s:I, s:I, s:i, s:i, s:o, s:o, s:o, s:o*}", "version",
                  REEXEC_STATE_VERSION, "binary", reexec->binary, "from_version", CERTVISOR_VERSION,
                  "began_usec", (json_int_t)monotonic_usec(), "reexecs", (json_int_t)agent->reexecs,
                  "started_at", (json_int_t)agent->started_at, "control_fd", h->control_fd,
                  "notify_fd", h->notify_fd, "reply_fds", fd_array(h->reply_fds, h->n_reply),
                  "fifo_fds", fd_array(h->fifo_fds, h->n_fifo), "conn_fds",
                  fd_array(h->conn_fds, h->n_conn), "services", records);
    if (state)
        text = json_dumps(state, JSON_COMPACT);
    json_decref(state);
    if (!text)
        return -ENOMEM;
    h->memfd = memfd_create("certvisord-state", MFD_CLOEXEC);
    if (h->memfd < 0)
        r = -errno;
    else if ((r = fs_write_all(h->memfd, text, strlen(text))) == 0 &&
             lseek(h->memfd, 0, SEEK_SET) < 0)
        r = -errno;
    free(text);
    return r;
}

/* Copies of fds (n of them) into out, close-on-exec until the exec itself; returns how many. */
static size_t dup_all(const int *fds, size_t n, int *out)
{
    size_t copied = 0;

    for (size_t i = 0; i < n; i++) {
        int fd = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);

        if (fd >= 0)
            out[copied++] = fd;
    }
    return copied;
}

static void exec_now(struct reexec *reexec)
{
    struct agent *agent = reexec->agent;
    static struct handover h; /* large (the connection and FIFO lists): off the stack */
    int idle[REEXEC_MAX_CONNS];
    size_t n_idle, cut = control_server_unsettled(agent->control);
    char fd_text[16], why[PATH_MAX + 128];
    char **argv;
    size_t argc = 0;
    int r;

    memset(&h, 0, sizeof(h));
    h.memfd = -1;
    h.control_fd = control_server_fd(agent->control);
    h.notify_fd = notify_server_fd(agent->notify);
    if (cut)
        log_warning("Re-exec: %zu control connection%s still in the middle of a request after "
                    "%d ms %s cut",
                    cut, cut == 1 ? " was" : "s were", REEXEC_CONN_GRACE_MS,
                    cut == 1 ? "is" : "are");

    supervisor_write_records(agent->supervisor); /* the fallback, should the state not do */
    for (size_t i = 0; i < REEXEC_MAX_REPLIES; i++)
        if (reexec->waiters[i].conn) {
            int fd = fcntl(control_conn_fd(reexec->waiters[i].conn), F_DUPFD_CLOEXEC, 3);

            if (fd >= 0)
                h.reply_fds[h.n_reply++] = fd;
        }
    n_idle = control_server_idle_fds(agent->control, idle, REEXEC_MAX_CONNS);
    h.n_conn = dup_all(idle, n_idle, h.conn_fds);
    h.n_fifo = hold_fifos(supervisor_output_dir(agent->supervisor), h.fifo_fds, REEXEC_MAX_FIFOS);
    r = write_state(reexec, &h);
    while (reexec->argv[argc])
        argc++;
    argv = calloc(argc + 3, sizeof(char *));
    if (r < 0 || !argv) {
        snprintf(why, sizeof(why), "cannot hand the state over: %s; the agent runs on unchanged",
                 strerror(r < 0 ? -r : ENOMEM));
        goto failed;
    }
    memcpy(argv, reexec->argv, argc * sizeof(char *));
    snprintf(fd_text, sizeof(fd_text), "%d", h.memfd);
    argv[argc] = "--reexec-state";
    argv[argc + 1] = fd_text;
    agent_reload_started(agent); /* RELOADING=1: the new binary sends READY=1 */
    log_notice("Re-executing %s (this is version %s, pid %d): %zu services keep running",
               reexec->binary, CERTVISOR_VERSION, (int)getpid(),
               supervisor_count(agent->supervisor));
    set_cloexec(h.memfd, false);
    set_cloexec(h.control_fd, false);
    set_cloexec(h.notify_fd, false);
    for (size_t i = 0; i < h.n_reply; i++)
        set_cloexec(h.reply_fds[i], false);
    for (size_t i = 0; i < h.n_fifo; i++)
        set_cloexec(h.fifo_fds[i], false);
    for (size_t i = 0; i < h.n_conn; i++)
        set_cloexec(h.conn_fds[i], false);
    execv(reexec->binary, argv);
    snprintf(why, sizeof(why), "cannot execute %s: %s; the agent runs on unchanged", reexec->binary,
             strerror(errno));
    agent_reload_finished(agent);
failed:
    free(argv);
    handover_close(&h);
    log_error("Re-exec failed: %s", why);
    control_server_resume(agent->control);
    answer_all(reexec, why);
}

/* Gives up waiting: the agent accepts again and the waiting requests hear why. */
static void abandon(struct reexec *reexec, const char *why)
{
    reexec->pending = false;
    control_server_resume(reexec->agent->control);
    answer_all(reexec, why);
}

static void on_settle_timer(evutil_socket_t fd, short what, void *arg)
{
    struct reexec *reexec = arg;
    struct timeval poll = {0, SETTLE_POLL_MS * 1000};
    char why[256];
    uint64_t now = monotonic_usec();

    (void)fd;
    (void)what;
    if (!reexec->pending)
        return;
    if (reexec->agent->shutting_down) {
        abandon(reexec, "the agent is shutting down: no re-exec");
        return;
    }
    /* Again at every poll: a tail -f asked for meanwhile is ended too. */
    control_server_pause(reexec->agent->control, STREAM_ENDED);
    if (!agent_settled(reexec->agent)) {
        reexec->settled_usec = 0;
        if (now - reexec->asked_usec < REEXEC_SETTLE_TIMEOUT_S * 1000000ull) {
            evtimer_add(reexec->timer, &poll);
            return;
        }
        snprintf(why, sizeof(why),
                 "the agent did not settle within %d s (a change, or a service's start, stop or "
                 "reload, was still under way): nothing was changed; try again",
                 REEXEC_SETTLE_TIMEOUT_S);
        log_error("Re-exec abandoned: %s", why);
        abandon(reexec, why);
        return;
    }
    if (!reexec->settled_usec)
        reexec->settled_usec = now;
    if (control_server_unsettled(reexec->agent->control) > 0 &&
        now - reexec->settled_usec < REEXEC_CONN_GRACE_MS * 1000ull) {
        evtimer_add(reexec->timer, &poll);
        return;
    }
    reexec->pending = false;
    exec_now(reexec);
}

static void waiter_gone(void *data)
{
    struct reexec_waiter *waiter = data;

    waiter->conn = NULL;
}

static int request(struct agent *agent, struct control_conn *conn, char *err, size_t err_len)
{
    struct reexec *reexec = agent->reexec;
    struct reexec_waiter *slot = NULL;
    struct timeval now = {0, 0};

    if (agent->shutting_down) {
        snprintf(err, err_len, "the agent is shutting down: no re-exec");
        return -ESHUTDOWN;
    }
    if (!agent->control || !agent->notify) {
        snprintf(err, err_len, "the agent is still starting: try again once it is ready");
        return -EAGAIN;
    }
    if (reexec->binary[0] == '\0' || access(reexec->binary, X_OK) < 0) {
        snprintf(err, err_len,
                 "cannot execute %s: %s; nothing was changed (is the package "
                 "installed?)",
                 reexec->binary[0] ? reexec->binary : "the agent's binary",
                 reexec->binary[0] ? strerror(errno) : "its path is unknown");
        return -ENOEXEC;
    }
    if (conn) {
        for (size_t i = 0; i < REEXEC_MAX_REPLIES && !slot; i++)
            if (!reexec->waiters[i].conn)
                slot = &reexec->waiters[i];
        if (!slot) {
            snprintf(err, err_len,
                     "%d re-exec requests are waiting already: try again once "
                     "they are answered",
                     REEXEC_MAX_REPLIES);
            return -EBUSY;
        }
        slot->reexec = reexec;
        slot->conn = conn;
        control_on_abandon(conn, waiter_gone, slot);
        control_conn_hand_over(conn);
    }
    if (!reexec->pending) {
        char who[160] = "SIGUSR2";

        if (conn)
            control_peer_describe(control_conn_peer(conn), who, sizeof(who));
        reexec->pending = true;
        reexec->asked_usec = monotonic_usec();
        reexec->settled_usec = 0;
        /* From now on new clients wait in the backlog, which the new binary takes over. */
        control_server_pause(agent->control, STREAM_ENDED);
        log_notice("Re-exec of %s asked by %s: waiting for the agent to settle", reexec->binary,
                   who);
        evtimer_add(reexec->timer, &now);
    }
    return 0;
}

void reexec_on_signal(struct agent *agent)
{
    char err[PATH_MAX + 128];

    if (request(agent, NULL, err, sizeof(err)) < 0)
        log_error("Received SIGUSR2, but cannot re-execute: %s", err);
}

int reexec_attach(struct reexec *reexec, struct agent *agent)
{
    reexec->agent = agent;
    agent->reexec = reexec;
    agent->hooks.reexec = request;
    reexec->timer = evtimer_new(agent->base, on_settle_timer, reexec);
    if (!reexec->timer)
        return -ENOMEM;
    if (reexec->received) {
        agent->reexecs = reexec->received->reexecs + 1;
        agent->started_at = (time_t)reexec->received->started_at;
        log_notice("Re-executed from version %s as %s (version %s): taking over %zu service "
                   "process%s",
                   reexec->received->version, reexec->binary, CERTVISOR_VERSION,
                   reexec->received->records.n, reexec->received->records.n == 1 ? "" : "es");
    } else if (reexec->was_reexec) {
        log_error("Cannot read the state the previous binary handed over (%s): adopting its "
                  "services from the record in the run directory instead",
                  reexec->receive_error);
    }
    return 0;
}

/* --- the new binary --- */

static int take_fd(int *fd)
{
    int taken = *fd;

    *fd = -1;
    return taken;
}

int reexec_take_control_fd(struct reexec *reexec)
{
    return reexec->received ? take_fd(&reexec->received->control_fd) : -1;
}

int reexec_take_notify_fd(struct reexec *reexec)
{
    return reexec->received ? take_fd(&reexec->received->notify_fd) : -1;
}

int reexec_take_conn_fd(struct reexec *reexec)
{
    struct reexec_state *state = reexec->received;

    return state && state->n_conn_fds ? state->conn_fds[--state->n_conn_fds] : -1;
}

const struct service_records *reexec_records(const struct reexec *reexec)
{
    return reexec->received ? &reexec->received->records : NULL;
}

void reexec_adopted(struct reexec *reexec, size_t adopted)
{
    struct reexec_state *state = reexec->received;

    reexec->adopted = adopted;
    if (!state)
        return;
    for (size_t i = 0; i < state->n_fifo_fds; i++)
        close(state->fifo_fds[i]);
    state->n_fifo_fds = 0;
}

void reexec_ready(struct reexec *reexec)
{
    struct reexec_state *state = reexec ? reexec->received : NULL;
    json_t *answer;
    char *text;

    if (!state || state->n_reply_fds == 0)
        return;
    answer = json_pack("{s:i, s:i, s:s, s:s, s:s, s:I, s:I, s:f}", "exit", 0, "pid", (int)getpid(),
                       "binary", reexec->binary, "version", CERTVISOR_VERSION, "from_version",
                       state->version, "kept", (json_int_t)reexec->adopted, "reexecs",
                       (json_int_t)reexec->agent->reexecs, "took_ms",
                       (double)(monotonic_usec() - state->began_usec) / 1000.0);
    text = answer ? json_dumps(answer, JSON_COMPACT) : NULL;
    json_decref(answer);
    for (size_t i = 0; i < state->n_reply_fds; i++) {
        /* One short line into a socket whose client waits for it: it fits its buffer. */
        if (text && (fs_write_all(state->reply_fds[i], text, strlen(text)) < 0 ||
                     fs_write_all(state->reply_fds[i], "\n", 1) < 0))
            log_warning("Cannot answer a daemon-reexec request: %s", strerror(errno));
        close(state->reply_fds[i]);
    }
    state->n_reply_fds = 0;
    free(text);
}

void reexec_free(struct reexec *reexec)
{
    if (!reexec)
        return;
    if (reexec->received) {
        static int fds[REEXEC_MAX_FDS];
        size_t n = reexec_state_fds(reexec->received, fds);

        for (size_t i = 0; i < n; i++)
            close(fds[i]);
        reexec_state_free(reexec->received);
        free(reexec->received);
    }
    if (reexec->timer)
        event_free(reexec->timer);
    free(reexec->argv);
    free(reexec);
}
