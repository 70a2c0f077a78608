/*
 * Fuzzes the control protocol's framing: the input is what the agent's end of the socket sends,
 * read by the real client (lib/control_client.c) line by line and decoded by control_decode().
 */
#include "control_client.h"
#include "control_proto.h"
#include "cv_error.h"
#include "fuzz_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* What the socket buffers hold at once: the agent's end writes all before the client reads. */
#define FUZZ_CONTROL_MAX_INPUT (128 * 1024)

static int listen_fd = -1;
static char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

static void start_listening(void)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int size = 4 * FUZZ_CONTROL_MAX_INPUT;

    if ((size_t)snprintf(socket_path, sizeof(socket_path), "%s/control.sock", fuzz_tmpdir()) >=
        sizeof(socket_path))
        fuzz_fail("temp dir path too long for a unix socket");
    memcpy(addr.sun_path, socket_path, strlen(socket_path) + 1);
    listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(listen_fd, 4) < 0)
        fuzz_fail("cannot listen on the control socket");
    (void)setsockopt(listen_fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

/* What the client makes of a request it decoded: the command table's matching, as the agent. */
static void look_up(json_t *message)
{
    json_t *command = json_object_get(message, "command"), *args = json_object_get(message, "args");
    char *argv[64];
    int argc = 0, consumed = 0;

    if (json_is_string(command))
        (void)control_command_lookup(json_string_value(command));
    if (!json_is_array(args))
        return;
    for (size_t i = 0; i < json_array_size(args) && argc < 64; i++)
        if (json_is_string(json_array_get(args, i)))
            argv[argc++] = (char *)json_string_value(json_array_get(args, i));
    if (control_command_match(argc, argv, &consumed) >= 0)
        FUZZ_CHECK(consumed >= 1 && consumed <= argc);
}

/* A decoded message encodes to one line that decodes to an equal message. */
static void round_trip(json_t *message)
{
    char err[256];
    size_t len = 0;
    char *line = control_encode(message, &len);
    json_t *again = NULL;

    FUZZ_CHECK(line && len >= 1 && line[len - 1] == '\n');
    FUZZ_CHECK(memchr(line, '\n', len - 1) == NULL);
    FUZZ_CHECK(control_decode(line, len - 1, &again, err, sizeof(err)) == 0);
    FUZZ_CHECK(json_equal(message, again));
    json_decref(again);
    free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct control_client *client = NULL;
    size_t done = 0;
    int agent_fd, r;

    if (size > FUZZ_CONTROL_MAX_INPUT)
        return 0;
    if (listen_fd < 0)
        start_listening();
    if (control_client_open(socket_path, &client) < 0)
        fuzz_fail("control_client_open");
    agent_fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (agent_fd < 0)
        fuzz_fail("accept");
    while (done < size) {
        ssize_t n = send(agent_fd, data + done, size - done, MSG_NOSIGNAL);

        if (n <= 0)
            fuzz_fail("send");
        done += (size_t)n;
    }
    shutdown(agent_fd, SHUT_WR);
    for (;;) {
        json_t *message = NULL;

        r = control_client_receive(client, &message);
        if (r == CV_ENO_AGENT || r == CV_ETOO_LONG || r == -ENOMEM)
            break;
        if (r < 0) {
            FUZZ_CHECK(r == CV_EPROTOCOL);
            continue; /* a malformed line: the next one is read all the same */
        }
        FUZZ_CHECK(json_is_object(message));
        look_up(message);
        round_trip(message);
        json_decref(message);
    }
    close(agent_fd);
    control_client_close(client);
    return 0;
}
