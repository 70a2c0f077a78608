/* The NOTIFY_SOCKET the agent owns: systemd's datagram protocol, credited by SO_PASSCRED. */
#include "notify.h"

#include "fsutil.h"
#include "netutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/*
 * systemd takes 4 KiB; certvisor also takes a service's CERTVISOR_STATS line
 * (a JSON object of up to 64 KiB, service.h) with the usual fields beside it.
 */
#define NOTIFY_MAX_MESSAGE (64 * 1024 + 4096)

struct notify_server {
    int fd;
    char *path;
    struct event *event;
    char *buf; /* NOTIFY_MAX_MESSAGE + 1 bytes: too much for the stack of a callback */
    notify_fn fn;
    void *data;
    struct fs_identity bound; /* the socket file this server made */
    bool bound_known;
};

/* Closes descriptors a sender attached (FDSTORE=1 and the like): the agent keeps none. */
static void close_passed_fds(struct msghdr *msg)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int *fds = (int *)CMSG_DATA(c);
            size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

            for (size_t i = 0; i < n; i++)
                close(fds[i]);
        }
    }
}

static pid_t sender_of(struct msghdr *msg)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
            c->cmsg_len == CMSG_LEN(sizeof(struct ucred))) {
            struct ucred cred;

            memcpy(&cred, CMSG_DATA(c), sizeof(cred));
            return cred.pid;
        }
    }
    return 0;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct notify_server *server = arg;
    char *buf = server->buf;
    union {
        struct cmsghdr align;
        char space[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 16)];
    } control;

    (void)what;
    for (;;) {
        struct iovec iov = {buf, NOTIFY_MAX_MESSAGE};
        struct msghdr msg = {.msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = &control,
                             .msg_controllen = sizeof(control)};
        ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
        pid_t sender;

        if (n < 0)
            return; /* EAGAIN: drained */
        close_passed_fds(&msg);
        sender = sender_of(&msg);
        /* Truncated messages and ones without credentials are dropped, as systemd does. */
        if (n > NOTIFY_MAX_MESSAGE || (msg.msg_flags & MSG_CTRUNC) || sender <= 0)
            continue;
        buf[n] = '\0';
        server->fn(server->data, sender, buf);
    }
}

void notify_server_read_pending(struct notify_server *server)
{
    if (server)
        on_readable(server->fd, EV_READ, server);
}

/* The socket a re-exec handed over, if it is still bound where the configuration says: a
 * service's notification sent meanwhile waits in it instead of being lost. */
static bool take_inherited(struct notify_server *server, int inherited_fd, const char *path)
{
    int one = 1;

    if (inherited_fd < 0)
        return false;
    if (!net_unix_socket_at(inherited_fd, SOCK_DGRAM, path) ||
        setsockopt(inherited_fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0 ||
        fcntl(inherited_fd, F_SETFL, fcntl(inherited_fd, F_GETFL) | O_NONBLOCK) < 0) {
        close(inherited_fd);
        return false;
    }
    server->fd = inherited_fd;
    return true;
}

int notify_server_new(struct event_base *base, const char *path, int inherited_fd, notify_fn fn,
                      void *data, struct notify_server **ret_server)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    struct notify_server *server;
    int one = 1, r;

    if (strlen(path) >= sizeof(addr.sun_path) || !(server = calloc(1, sizeof(*server)))) {
        if (inherited_fd >= 0)
            close(inherited_fd);
        return strlen(path) >= sizeof(addr.sun_path) ? -ENAMETOOLONG : -ENOMEM;
    }
    server->fd = -1;
    server->fn = fn;
    server->data = data;
    server->path = strdup(path);
    server->buf = malloc(NOTIFY_MAX_MESSAGE + 1);
    if (!server->path || !server->buf) {
        if (inherited_fd >= 0)
            close(inherited_fd);
        r = -ENOMEM;
        goto fail;
    }
    if (!take_inherited(server, inherited_fd, path)) {
        server->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (server->fd < 0) {
            r = -errno;
            goto fail;
        }
        memcpy(addr.sun_path, path, strlen(path) + 1);
        unlink(path);
        if (setsockopt(server->fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0 ||
            bind(server->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
            r = -errno;
            goto fail;
        }
    }
    /* Services run as other users and must be able to send; what they send is
     * only believed for their own processes, by the kernel's credentials. */
    if (chmod(path, 0666) < 0) {
        r = -errno;
        goto fail;
    }
    server->bound_known = fs_identity_of(path, &server->bound) == 0;
    server->event = event_new(base, server->fd, EV_READ | EV_PERSIST, on_readable, server);
    if (!server->event || event_add(server->event, NULL) < 0) {
        r = -ENOMEM;
        goto fail;
    }
    *ret_server = server;
    return 0;
fail:
    notify_server_free(server);
    return r;
}

int notify_server_fd(const struct notify_server *server)
{
    return server->fd;
}

void notify_server_free(struct notify_server *server)
{
    if (!server)
        return;
    if (server->event)
        event_free(server->event);
    if (server->fd >= 0) {
        close(server->fd);
        if (server->bound_known)
            fs_unlink_if_same(server->path, &server->bound);
    }
    free(server->path);
    free(server->buf);
    free(server);
}

const char *notify_field(const char *message, const char *key, size_t *ret_len)
{
    size_t key_len = strlen(key);

    for (const char *line = message; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);

        if (len > key_len && strncmp(line, key, key_len) == 0 && line[key_len] == '=') {
            *ret_len = len - key_len - 1;
            return line + key_len + 1;
        }
        line = end ? end + 1 : NULL;
    }
    return NULL;
}
