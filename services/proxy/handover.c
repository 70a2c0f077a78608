/* Handing the listening sockets to a new proxy binary (handover.h). */
#include "handover.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* A listener set holds one socket per worker; more than this many is not a proxy's. */
#define HANDOVER_MAX_FDS 4096

extern char **environ;

static int ready_fd = -1; /* the new process's end of the old one's pipe */
static bool inherited;

struct handover {
    pid_t child;
    int ready_fd; /* read end: a byte once the child serves, EOF if it died first */
    struct event *ready_ev;
    void (*on_ready)(void *data);
    void *data;
};

/* --- the new process --- */

static int parse_fd(const char *text, char **end)
{
    long fd;

    errno = 0;
    fd = strtol(text, end, 10);
    return errno || *end == text || fd < 3 || fd > 1 << 20 ? -1 : (int)fd;
}

/* A listening TCP socket's set in table (made when missing). */
static struct listener_set *set_for(struct listener_table *table, int fd)
{
    struct net_address address = {.len = sizeof(address.addr)};
    int listening = 0;
    socklen_t len = sizeof(listening);
    struct listener_set *set;

    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || !listening ||
        getsockname(fd, (struct sockaddr *)&address.addr, &address.len) < 0)
        return NULL;
    set = listeners_find(table, &address);
    if (!set && (set = listener_set_new(table, &address))) {
        set->next = table->sets;
        table->sets = set;
    }
    return set;
}

/* Gives each set one socket per worker: a thread count that grew gets new ones. */
static int complete_sets(struct listener_table *table, char *err, size_t err_len)
{
    for (struct listener_set *set = table->sets; set; set = set->next) {
        int r = listeners_open_missing(table, set);

        if (r < 0) {
            snprintf(err, err_len, "cannot listen on %s: %s", set->name, strerror(-r));
            return r;
        }
    }
    return 0;
}

int handover_inherit(struct listener_table *table, char *err, size_t err_len)
{
    const char *list = getenv(HANDOVER_LISTEN_ENV), *ready = getenv(HANDOVER_READY_ENV);
    char *end = NULL;
    int taken = 0;

    if (!list)
        return 0;
    inherited = true;
    if (ready) {
        ready_fd = parse_fd(ready, &end);
        if (ready_fd >= 0)
            fcntl(ready_fd, F_SETFD, FD_CLOEXEC);
    }
    for (const char *p = list; *p;) {
        int fd = parse_fd(p, &end);
        struct listener_set *set;
        size_t w = 0;

        if (fd < 0 || (*end != ',' && *end != '\0') || taken >= HANDOVER_MAX_FDS) {
            snprintf(err, err_len, "%s: '%s' is not a list of descriptors", HANDOVER_LISTEN_ENV,
                     list);
            return -EINVAL;
        }
        p = *end ? end + 1 : end;
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        set = set_for(table, fd);
        while (set && w < table->n_workers && set->fds[w] >= 0)
            w++;
        if (!set || w == table->n_workers) {
            close(fd); /* not a listener, or one more than the workers need */
            continue;
        }
        set->fds[w] = fd;
        taken++;
    }
    unsetenv(HANDOVER_LISTEN_ENV);
    unsetenv(HANDOVER_READY_ENV);
    return complete_sets(table, err, err_len) < 0 ? -EIO : taken;
}

bool handover_inherited(void)
{
    return inherited;
}

void handover_tell_ready(void)
{
    if (ready_fd < 0)
        return;
    if (write(ready_fd, "1", 1) != 1)
        log_warning("Cannot tell the previous process to drain: %s", strerror(errno));
    close(ready_fd);
    ready_fd = -1;
}

/* --- the old process --- */

static void on_ready_pipe(evutil_socket_t fd, short what, void *arg)
{
    struct handover *h = arg;
    char byte;
    ssize_t n = read(fd, &byte, 1);
    int status = 0;

    (void)what;
    if (n < 0 && errno == EAGAIN)
        return;
    event_del(h->ready_ev);
    if (n == 1) {
        log_notice("The new process (pid %d) serves: draining this one", (int)h->child);
        h->on_ready(h->data);
        return;
    }
    /* EOF: it exited (or exec failed) before serving. */
    if (waitpid(h->child, &status, 0) == h->child && WIFEXITED(status))
        log_error("The new process (pid %d) exited with status %d before serving: this one "
                  "goes on serving",
                  (int)h->child, WEXITSTATUS(status));
    else
        log_error("The new process (pid %d) ended before serving: this one goes on serving",
                  (int)h->child);
    close(h->ready_fd);
    event_free(h->ready_ev);
    h->ready_ev = NULL;
    h->ready_fd = -1;
    h->child = 0;
}

/* environ with the two hand-over variables, built before fork (the child only execs). */
static char **handover_env(const char *fds, int pipe_fd)
{
    size_t n = 0, used = 0;
    char **env;

    while (environ[n])
        n++;
    env = calloc(n + 3, sizeof(char *));
    if (!env)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], HANDOVER_LISTEN_ENV "=", strlen(HANDOVER_LISTEN_ENV) + 1) != 0 &&
            strncmp(environ[i], HANDOVER_READY_ENV "=", strlen(HANDOVER_READY_ENV) + 1) != 0)
            env[used++] = environ[i];
    if (asprintf(&env[used++], "%s=%s", HANDOVER_LISTEN_ENV, fds) < 0 ||
        asprintf(&env[used], "%s=%d", HANDOVER_READY_ENV, pipe_fd) < 0) {
        free(env);
        return NULL;
    }
    return env;
}

/* The listening sockets as "5,6,7", and every one of them in fds (HANDOVER_MAX_FDS at most). */
static char *listener_list(const struct listener_table *table, int *fds, size_t *n)
{
    size_t len = 1;
    char *text;

    *n = 0;
    for (const struct listener_set *set = table->sets; set; set = set->next)
        for (size_t w = 0; w < table->n_workers && *n < HANDOVER_MAX_FDS; w++)
            if (set->fds[w] >= 0)
                fds[(*n)++] = set->fds[w];
    text = malloc(*n * 12 + 1);
    if (!text)
        return NULL;
    text[0] = '\0';
    for (size_t i = 0; i < *n; i++)
        len += (size_t)snprintf(text + len - 1, 13, "%s%d", i ? "," : "", fds[i]);
    return text;
}

int handover_begin(struct handover **handover, struct event_base *base, const char *binary,
                   char *const *argv, const struct listener_table *table,
                   void (*on_ready)(void *data), void *data)
{
    static int fds[HANDOVER_MAX_FDS];
    struct handover *h = *handover;
    char *list = NULL, **env = NULL;
    int pipe_fds[2] = {-1, -1}, r = 0;
    size_t n = 0;

    if (h && h->child)
        return -EALREADY;
    if (!h && !(h = *handover = calloc(1, sizeof(*h))))
        return -ENOMEM;
    h->on_ready = on_ready;
    h->data = data;
    list = listener_list(table, fds, &n);
    if (!list || pipe2(pipe_fds, O_CLOEXEC) < 0 || !(env = handover_env(list, pipe_fds[1]))) {
        r = list ? -errno : -ENOMEM;
        goto out;
    }
    h->child = fork();
    if (h->child == 0) {
        /* Only async-signal-safe calls from here: the parent has threads. */
        for (size_t i = 0; i < n; i++)
            fcntl(fds[i], F_SETFD, 0);
        fcntl(pipe_fds[1], F_SETFD, 0);
        execve(binary, argv, env);
        _exit(127);
    }
    if (h->child < 0) {
        r = -errno;
        h->child = 0;
        goto out;
    }
    h->ready_fd = pipe_fds[0];
    pipe_fds[0] = -1;
    h->ready_ev = event_new(base, h->ready_fd, EV_READ | EV_PERSIST, on_ready_pipe, h);
    if (!h->ready_ev || event_add(h->ready_ev, NULL) < 0)
        log_error("Cannot watch the new process: it serves beside this one");
    log_notice("Handing %zu listening socket%s over to a new process (pid %d) of %s", n,
               n == 1 ? "" : "s", (int)h->child, binary);
out:
    if (pipe_fds[0] >= 0)
        close(pipe_fds[0]);
    if (pipe_fds[1] >= 0)
        close(pipe_fds[1]);
    if (env) {
        for (size_t i = 0; env[i]; i++)
            if (strncmp(env[i], "CERTVISOR_PROXY_", 16) == 0 &&
                (strncmp(env[i], HANDOVER_LISTEN_ENV "=", strlen(HANDOVER_LISTEN_ENV) + 1) == 0 ||
                 strncmp(env[i], HANDOVER_READY_ENV "=", strlen(HANDOVER_READY_ENV) + 1) == 0))
                free(env[i]);
        free(env);
    }
    free(list);
    return r;
}

void handover_free(struct handover *handover)
{
    if (!handover)
        return;
    if (handover->ready_ev)
        event_free(handover->ready_ev);
    if (handover->ready_fd > 0)
        close(handover->ready_fd);
    free(handover);
}
