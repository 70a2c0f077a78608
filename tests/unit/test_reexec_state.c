/* Unit tests for what a re-exec hands over (reexec_state.c) and the services' record in it
 * (records.c): what is read, and what is refused with which reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fsutil.h"
#include "records.h"
#include "reexec_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DIGEST "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define RECORD(name, pid)                                                                          \
    "{\"name\":\"" name "\",\"pid\":" #pid ",\"start_time\":77,\"state\":\"RUNNING\","             \
    "\"settings\":\"" DIGEST "\",\"loaded_usec\":5,\"restarts\":3}"
#define STATE_HEAD                                                                                 \
    "{\"version\":1,\"binary\":\"/usr/sbin/certvisord\",\"from_version\":\"0.1.0\","               \
    "\"began_usec\":10,\"reexecs\":2,\"started_at\":1764979200,"

static int parse(const char *text, struct reexec_state *state, char *err, size_t len)
{
    return reexec_state_parse(text, strlen(text), state, err, len);
}

static void a_whole_state_is_read(void **unused)
{
    struct reexec_state state;
    char err[256] = "";

    (void)unused;
    assert_int_equal(parse(STATE_HEAD "\"control_fd\":5,\"notify_fd\":6,\"reply_fds\":[9],"
                                      "\"fifo_fds\":[10,11],\"conn_fds\":[12,14],"
                                      "\"services\":{\"version\":1,"
                                      "\"services\":[" RECORD("proxy", 4242) "," RECORD(
                                          "redis", 4240) "],\"operator_stopped\":[\"cm\"]}}",
                           &state, err, sizeof(err)),
                     0);
    assert_string_equal(state.binary, "/usr/sbin/certvisord");
    assert_int_equal(state.reexecs, 2);
    assert_int_equal(state.control_fd, 5);
    assert_int_equal(state.notify_fd, 6);
    assert_int_equal(state.n_reply_fds, 1);
    assert_int_equal(state.n_fifo_fds, 2);
    assert_int_equal(state.n_conn_fds, 2);
    assert_int_equal(state.conn_fds[1], 14);
    assert_int_equal(state.records.n, 2);
    assert_string_equal(state.records.items[0].name, "proxy");
    assert_int_equal(state.records.items[0].pid, 4242);
    assert_int_equal(state.records.items[0].restarts, 3);
    assert_int_equal(state.records.n_operator_stopped, 1);
    assert_string_equal(state.records.operator_stopped[0], "cm");
    reexec_state_free(&state);
}

static void refused(const char *text, const char *reason)
{
    struct reexec_state state;
    char err[256] = "";

    assert_true(parse(text, &state, err, sizeof(err)) < 0);
    if (!strstr(err, reason))
        fail_msg("expected '%s' in '%s'", reason, err);
    assert_null(state.root);
    assert_int_equal(state.control_fd, -1);
}

static void what_is_wrong_is_refused_whole(void **unused)
{
    (void)unused;
    refused("{\"version\":2}", "version 2, this binary reads version 1");
    refused("[1,2", "not JSON");
    refused(STATE_HEAD "\"services\":{\"version\":1,\"services\":[]},\"control_fd\":2}",
            "'control_fd' is not a descriptor number");
    refused(STATE_HEAD "\"services\":{\"version\":1,\"services\":[]},\"control_fd\":7,"
                       "\"fifo_fds\":[8,7]}",
            "a descriptor is named twice");
    refused(STATE_HEAD "\"services\":{\"version\":1,\"services\":[]},\"fifo_fds\":[20],"
                       "\"conn_fds\":[21,20]}",
            "a descriptor is named twice");
    refused(STATE_HEAD "\"services\":{\"version\":1,\"services\":[]},\"conn_fds\":[1]}",
            "'conn_fds' holds something that is not a descriptor number");
    refused(STATE_HEAD "\"services\":{\"version\":1,\"services\":[]},"
                       "\"reply_fds\":[3,4,5,6,7,8,9,10,11]}",
            "'reply_fds' is not a list of at most 8 descriptors");
    refused(STATE_HEAD "\"services\":{\"version\":7,\"services\":[]}}", "not a version 1 record");
    refused("{\"version\":1,\"binary\":\"b\"}", "a field is missing");
}

static void a_malformed_record_is_skipped_and_counted(void **unused)
{
    struct service_records records;
    const char *text = "{\"version\":1,\"services\":[" RECORD(
        "ok", 100) ","
                   "{\"name\":\"low\",\"pid\":1,\"start_time\":1,\"state\":\"RUNNING\","
                   "\"settings\":\"\",\"loaded_usec\":0},"
                   "{\"name\":\"digest\",\"pid\":5,\"start_time\":1,\"state\":\"RUNNING\","
                   "\"settings\":\"XYZ\",\"loaded_usec\":0},"
                   "{\"name\":\"\",\"pid\":5,\"start_time\":1,\"state\":\"RUNNING\","
                   "\"settings\":\"\",\"loaded_usec\":0}, 7,"
                   /* more crashes than restarts: one cannot be the other's part */
                   "{\"name\":\"crashy\",\"pid\":5,\"start_time\":1,\"state\":\"RUNNING\","
                   "\"settings\":\"\",\"loaded_usec\":0,\"restarts\":1,\"crashes\":2},"
                   "{\"name\":\"split\",\"pid\":6,\"start_time\":1,\"state\":\"RUNNING\","
                   "\"settings\":\"\",\"loaded_usec\":0,\"restarts\":5,\"crashes\":2}]}";
    char err[256] = "";

    (void)unused;
    assert_int_equal(service_records_parse(text, strlen(text), &records, err, sizeof(err)), 0);
    assert_int_equal(records.n, 2);
    assert_string_equal(records.items[0].name, "ok");
    assert_int_equal(records.items[0].restarts, 3);
    assert_int_equal(records.items[0].crashes, 0); /* a record of an older agent: none */
    assert_string_equal(records.items[1].name, "split");
    assert_int_equal(records.items[1].crashes, 2);
    assert_int_equal(records.malformed, 5);
    service_records_free(&records);
}

static void a_record_over_its_size_is_refused(void **unused)
{
    struct service_records records;
    size_t len = SERVICE_RECORDS_MAX_BYTES + 1;
    char *text = malloc(len), err[256] = "";

    (void)unused;
    assert_non_null(text);
    memset(text, ' ', len);
    assert_int_equal(service_records_parse(text, len, &records, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "more than the 1048576 allowed"));
    free(text);
}

static void fs_read_all_stops_at_its_limit(void **unused)
{
    int pipe_fds[2];
    size_t len = 0;
    char *text = NULL;

    (void)unused;
    assert_int_equal(pipe(pipe_fds), 0);
    assert_int_equal(write(pipe_fds[1], "0123456789", 10), 10);
    close(pipe_fds[1]);
    assert_int_equal(fs_read_all(pipe_fds[0], 9, &text, &len), -EFBIG);
    close(pipe_fds[0]);
    assert_int_equal(pipe(pipe_fds), 0);
    assert_int_equal(write(pipe_fds[1], "0123456789", 10), 10);
    close(pipe_fds[1]);
    assert_int_equal(fs_read_all(pipe_fds[0], 10, &text, &len), 0);
    assert_int_equal(len, 10);
    assert_string_equal(text, "0123456789");
    free(text);
    close(pipe_fds[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_whole_state_is_read),
        cmocka_unit_test(what_is_wrong_is_refused_whole),
        cmocka_unit_test(a_malformed_record_is_skipped_and_counted),
        cmocka_unit_test(a_record_over_its_size_is_refused),
        cmocka_unit_test(fs_read_all_stops_at_its_limit),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
