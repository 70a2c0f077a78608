/* A blocking client for the agent's control socket, used by certvisorctl and the services. */
#include "control_client.h"

#include "control_proto.h"
#include "cv_error.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct control_client {
    int fd;
    char *buf; /* bytes received but not yet returned as messages */
    size_t len;
    size_t cap;
    bool sent; /* a request went out: a closed connection now may have cut its answer */
};

int control_client_open(const char *path, struct control_client **ret_client)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    struct control_client *client;
    int fd;

    if (strlen(path) >= sizeof(addr.sun_path))
        return -ENAMETOOLONG;
    memcpy(addr.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int err = errno;

        close(fd);
        return (err == ENOENT || err == ECONNREFUSED) ? CV_ENO_AGENT : -err;
    }
    client = calloc(1, sizeof(*client));
    if (!client) {
        close(fd);
        return -ENOMEM;
    }
    client->fd = fd;
    *ret_client = client;
    return 0;
}

void control_client_close(struct control_client *client)
{
    if (!client)
        return;
    close(client->fd);
    if (client->buf)
        OPENSSL_clear_free(client->buf, client->cap);
    free(client);
}

int control_client_send(struct control_client *client, const json_t *request)
{
    size_t len, done = 0;
    char *line = control_encode(request, &len);

    if (!line)
        return -ENOMEM;
    while (done < len) {
        ssize_t n = send(client->fd, line + done, len - done, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = errno;

            OPENSSL_clear_free(line, len);
            /* The line did not get through whole: the agent acts on whole lines only. */
            return err == EPIPE ? CV_ENO_AGENT : -err;
        }
        done += (size_t)n;
    }
    OPENSSL_clear_free(line, len);
    client->sent = true;
    return 0;
}

/* Returns the length of the first line in the buffer, or -1 when none is complete. */
static ssize_t buffered_line_length(const struct control_client *client)
{
    const char *nl = client->len ? memchr(client->buf, '\n', client->len) : NULL;

    return nl ? nl - client->buf : -1;
}

int control_client_receive(struct control_client *client, json_t **ret_message)
{
    char err[256];
    ssize_t line_len;
    int r;

    while ((line_len = buffered_line_length(client)) < 0) {
        ssize_t n;

        if (client->len > CONTROL_MAX_MESSAGE)
            return CV_ETOO_LONG;
        if (client->cap - client->len < 4096) {
            size_t cap = client->cap ? client->cap * 2 : 8192;
            char *buf = realloc(client->buf, cap);

            if (!buf)
                return -ENOMEM;
            client->buf = buf;
            client->cap = cap;
        }
        n = recv(client->fd, client->buf + client->len, client->cap - client->len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == ECONNRESET)
            n = 0; /* the agent died with unread input: the same as a close */
        if (n < 0)
            return -errno;
        if (n == 0)
            return client->sent ? -ECONNRESET : CV_ENO_AGENT;
        client->len += (size_t)n;
    }
    r = control_decode(client->buf, (size_t)line_len, ret_message, err, sizeof(err));
    memmove(client->buf, client->buf + line_len + 1, client->len - (size_t)line_len - 1);
    client->len -= (size_t)line_len + 1;
    return r;
}
