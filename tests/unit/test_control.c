/*
 * Unit tests for the control socket's framing (agent/control/control.c) on an agent object
 * with no services: a request arriving a byte at a time, requests pipelined in one write
 * and answered in order, a malformed line answered without losing the connection, and a
 * request over the limit refused and the connection closed. A real Unix socket, the real
 * event loop, and the agent's own command table behind it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

#include "agent.h"
#include "config.h"
#include "control.h"
#include "control_proto.h"
#include "offload.h"
#include "supervisor.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct fixture {
    char dir[64];
    struct agent agent;
    int client;
    char in[65536]; /* what the agent sent that is not yet taken as an answer */
    size_t in_used;
};

static void on_changed(void *data)
{
    (void)data;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char path[PATH_MAX], text[PATH_MAX + 64], err[512], *error = NULL;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    struct agent *agent;

    assert_non_null(fx);
    agent = &fx->agent;
    unit_make_tempdir(fx->dir, sizeof(fx->dir), "control");
    snprintf(text, sizeof(text), "prefix = \"%s\"\n", fx->dir);
    unit_write_file(fx->dir, "certvisor.conf", text);
    snprintf(path, sizeof(path), "%s/conf.d", fx->dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/certvisor.conf", fx->dir);
    if (config_load(path, NULL, &agent->config, &error) != 0 ||
        config_make_directories(agent->config, &error) != 0)
        fail_msg("the test's configuration: %s", error ? error : "(no message)");
    agent->base = event_base_new();
    assert_non_null(agent->base);
    assert_int_equal(supervisor_new(agent->base, agent->config, false,
                                    (struct supervisor_observer){on_changed, NULL},
                                    &agent->supervisor),
                     0);
    assert_int_equal(offload_new(agent->base, 1, &agent->offload), 0);
    if (control_server_new(agent, -1, &agent->control, err, sizeof(err)) < 0)
        fail_msg("control_server_new: %s", err);
    assert_int_equal(control_server_start(agent->control), 0);

    fx->client = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(fx->client >= 0);
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", agent->config->control_socket);
    assert_int_equal(connect(fx->client, (struct sockaddr *)&addr, sizeof(addr)), 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    struct agent *agent = &fx->agent;

    if (fx->client >= 0)
        close(fx->client);
    control_server_free(agent->control);
    offload_free(agent->offload);
    supervisor_free(agent->supervisor);
    event_base_free(agent->base);
    config_free(agent->config);
    unit_remove_tree(fx->dir);
    free(fx);
    return 0;
}

/* Runs whatever the loop has ready, a few times. */
static void pump(struct fixture *fx)
{
    for (int i = 0; i < 4; i++)
        event_base_loop(fx->agent.base, EVLOOP_NONBLOCK);
}

/* Writes all of len bytes, running the loop whenever the socket is full. */
static void send_all(struct fixture *fx, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fx->client, data, len);

        if (n < 0) {
            assert_int_equal(errno, EAGAIN);
            pump(fx);
            continue;
        }
        data += n;
        len -= (size_t)n;
    }
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * The next answer (one line, decoded), running the loop meanwhile; NULL when the agent
 * closed the connection first. Fails the test after 5 s without either.
 */
static json_t *next_answer(struct fixture *fx)
{
    char *buf = fx->in;
    size_t used = fx->in_used;
    double deadline = now() + 5;

    for (;;) {
        char *eol = memchr(buf, '\n', used);

        if (eol) {
            json_t *message = json_loadb(buf, (size_t)(eol - buf), 0, NULL);
            size_t rest = used - (size_t)(eol + 1 - buf);

            memmove(buf, eol + 1, rest);
            fx->in_used = rest;
            assert_non_null(message);
            return message;
        }
        pump(fx);
        ssize_t n = read(fx->client, buf + used, sizeof(fx->in) - used);

        /* A close with input unread ends in ECONNRESET rather than EOF, after the data. */
        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            fx->in_used = 0;
            return NULL;
        }
        if (n > 0) {
            used += (size_t)n;
            fx->in_used = used;
            continue;
        }
        assert_int_equal(errno, EAGAIN);
        if (now() > deadline)
            fail_msg("no answer from the control socket within 5 s");
        usleep(1000);
    }
}

static int exit_of(const json_t *answer)
{
    return (int)json_integer_value(json_object_get(answer, "exit"));
}

static const char *error_of(const json_t *answer)
{
    const char *error = json_string_value(json_object_get(answer, "error"));

    return error ? error : "";
}

static const char STATUS[] = "{\"command\":\"status\",\"args\":[]}\n";
static const char PID_NOSUCH[] = "{\"command\":\"pid\",\"args\":[\"nosuch\"]}\n";

static void a_request_arriving_a_byte_at_a_time_is_answered(void **state)
{
    struct fixture *fx = *state;
    json_t *answer;

    for (size_t i = 0; i < sizeof(STATUS) - 1; i++) {
        send_all(fx, &STATUS[i], 1);
        pump(fx);
    }
    answer = next_answer(fx);
    assert_non_null(answer);
    assert_int_equal(exit_of(answer), 0);
    json_decref(answer);
}

static void pipelined_requests_are_answered_in_order(void **state)
{
    struct fixture *fx = *state;
    char both[sizeof(PID_NOSUCH) + sizeof(STATUS)];
    json_t *first, *second;

    snprintf(both, sizeof(both), "%s%s", PID_NOSUCH, STATUS);
    send_all(fx, both, strlen(both));
    first = next_answer(fx);
    second = next_answer(fx);
    assert_non_null(first);
    assert_non_null(second);
    assert_int_not_equal(exit_of(first), 0);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(first, "items"), 0), "name")),
                        "nosuch");
    assert_int_equal(exit_of(second), 0);
    json_decref(first);
    json_decref(second);
}

static void a_malformed_line_is_answered_and_the_connection_kept(void **state)
{
    struct fixture *fx = *state;
    json_t *answer;

    send_all(fx, "this is not json\n", 17);
    answer = next_answer(fx);
    assert_non_null(answer);
    assert_int_equal(exit_of(answer), 2);
    json_decref(answer);
    send_all(fx, STATUS, sizeof(STATUS) - 1);
    answer = next_answer(fx);
    assert_non_null(answer);
    assert_int_equal(exit_of(answer), 0);
    json_decref(answer);
}

static void a_request_over_the_limit_is_refused_and_the_connection_closed(void **state)
{
    struct fixture *fx = *state;
    size_t len = CONTROL_MAX_MESSAGE + 4096;
    char *big = malloc(len);
    json_t *answer;

    assert_non_null(big);
    memset(big, 'x', len); /* no newline: the agent must not wait for one */
    /* The agent stops reading past the limit, so the last bytes may never be taken:
     * send what it reads, then look for its answer. */
    double deadline = now() + 10;

    for (size_t sent = 0; sent < len && now() < deadline;) {
        ssize_t n = write(fx->client, big + sent, len - sent);

        if (n > 0)
            sent += (size_t)n;
        else if (n < 0 && errno != EAGAIN)
            break; /* the agent closed: its answer is in the socket already */
        pump(fx);
        if (n < 0 && sent > CONTROL_MAX_MESSAGE)
            break;
    }
    free(big);
    answer = next_answer(fx);
    assert_non_null(answer);
    assert_int_not_equal(exit_of(answer), 0);
    assert_non_null(strstr(error_of(answer), "request exceeds"));
    json_decref(answer);
    assert_null(next_answer(fx)); /* then the connection ends */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_request_arriving_a_byte_at_a_time_is_answered, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(pipelined_requests_are_answered_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(a_malformed_line_is_answered_and_the_connection_kept, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            a_request_over_the_limit_is_refused_and_the_connection_closed, setup, teardown),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
