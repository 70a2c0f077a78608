/* One CONFIG SET to a redis-server over RESP on its plain port, bounded by a deadline. */
#include "config_set.h"

#include "netutil.h"
#include "resp.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A reply line longer than this is not one CONFIG SET gives. */
#define REPLY_MAX 4096

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits until fd is ready for events or the deadline passes. Returns 0 or -ETIMEDOUT/-errno. */
static int wait_for(int fd, short events, double deadline)
{
    struct pollfd pfd = {.fd = fd, .events = events};
    double left;
    int n;

    do {
        left = deadline - now_seconds();
        if (left <= 0)
            return -ETIMEDOUT;
        n = poll(&pfd, 1, (int)(left * 1000) + 1);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    return n == 0 ? -ETIMEDOUT : 0;
}

static int send_all(int fd, const char *data, size_t len, double deadline)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);

        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            int r = wait_for(fd, POLLOUT, deadline);

            if (r < 0)
                return r;
            continue;
        }
        if (n < 0)
            return -errno;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The replies as they arrive: two pipelined replies may come in one read. */
struct reply_reader {
    char buf[REPLY_MAX];
    size_t len;
};

/*
 * Takes the next reply line (up to its CRLF) from the reader into line
 * (NUL-terminated, without the CRLF), reading more when needed. Returns 0 or -errno.
 */
static int read_line(int fd, struct reply_reader *reader, char *line, size_t size, double deadline)
{
    while (1) {
        char *crlf = memmem(reader->buf, reader->len, "\r\n", 2);
        ssize_t n;

        if (crlf) {
            size_t line_len = (size_t)(crlf - reader->buf);

            if (line_len >= size)
                return -EMSGSIZE;
            memcpy(line, reader->buf, line_len);
            line[line_len] = '\0';
            reader->len -= line_len + 2;
            memmove(reader->buf, crlf + 2, reader->len);
            return 0;
        }
        if (reader->len == sizeof(reader->buf))
            return -EMSGSIZE;
        n = read(fd, reader->buf + reader->len, sizeof(reader->buf) - reader->len);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            int r = wait_for(fd, POLLIN, deadline);

            if (r < 0)
                return r;
            continue;
        }
        if (n < 0)
            return -errno;
        if (n == 0)
            return -ECONNRESET;
        reader->len += (size_t)n;
    }
}

static int connect_to(const char *host, int port, double deadline, char *err, size_t err_len)
{
    struct net_address address;
    int fd, in_progress = 0, r;

    r = net_address_resolve(host, port, &address, err, err_len);
    if (r < 0)
        return r;
    fd = net_connect(&address, &in_progress);
    if (fd >= 0 && in_progress) {
        r = wait_for(fd, POLLOUT, deadline);
        if (r == 0)
            r = net_connect_result(fd);
        if (r < 0) {
            close(fd);
            fd = r;
        }
    }
    if (fd < 0)
        snprintf(err, err_len, "cannot connect to redis-server on %s:%d: %s", host, port,
                 strerror(-fd));
    return fd;
}

/* AUTH [user] password, pipelined before the CONFIG SET. */
static void add_auth(struct resp_buf *request, const struct redis_target *target)
{
    resp_add_array(request, target->user ? 3 : 2);
    resp_add_bulk_string(request, "AUTH");
    if (target->user)
        resp_add_bulk_string(request, target->user);
    resp_add_bulk_string(request, target->password);
}

int redis_config_set(const struct redis_target *target, const char *const *pairs, size_t n_pairs,
                     double timeout_seconds, char *err, size_t err_len)
{
    const char *host = target->host;
    int port = target->port;
    double deadline = now_seconds() + timeout_seconds;
    struct resp_buf request = {0};
    struct reply_reader reader = {.len = 0};
    char reply[REPLY_MAX];
    int fd, r;

    if (target->password)
        add_auth(&request, target);
    /* A request is an array of bulk strings: the same bytes as a reply of that shape. */
    resp_add_array(&request, 2 + n_pairs);
    resp_add_bulk_string(&request, "CONFIG");
    resp_add_bulk_string(&request, "SET");
    for (size_t i = 0; i < n_pairs; i++)
        resp_add_bulk_string(&request, pairs[i]);
    if (request.failed) {
        resp_buf_free(&request);
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    fd = connect_to(host, port, deadline, err, err_len);
    if (fd < 0) {
        resp_buf_free(&request);
        return -1;
    }
    r = send_all(fd, request.data, request.len, deadline);
    OPENSSL_cleanse(request.data, request.len); /* it may hold the password */
    resp_buf_free(&request);
    if (r == 0 && target->password) {
        r = read_line(fd, &reader, reply, sizeof(reply), deadline);
        if (r == 0 && reply[0] == '-') {
            close(fd);
            snprintf(err, err_len, "AUTH refused: %s", reply + 1);
            return 1;
        }
    }
    if (r == 0)
        r = read_line(fd, &reader, reply, sizeof(reply), deadline);
    close(fd);
    if (r < 0) {
        snprintf(err, err_len, "no answer to CONFIG SET from redis-server on %s:%d: %s%s", host,
                 port, strerror(-r), r == -ETIMEDOUT ? " (is it busy, or is this its port?)" : "");
        return -1;
    }
    if (strcmp(reply, "+OK") == 0)
        return 0;
    if (reply[0] == '-') {
        snprintf(err, err_len, "%s", reply + 1);
        return 1;
    }
    snprintf(err, err_len, "unexpected reply to CONFIG SET from %s:%d: %.200s", host, port, reply);
    return -1;
}
