/* Regression tests for output capture bugs found and fixed: long lines, descriptor 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

#include "output.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE_MAX_BYTES 8192 /* OUTPUT_LINE_MAX in output.c */

struct fixture {
    char dir[64];
    char out_path[PATH_MAX];
    struct event_base *base;
    struct service_config config;
    struct output_settings settings;
    struct output *output;
};

struct captured {
    int n;
    int ended; /* end-of-output calls (line NULL) */
    size_t len[16];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    assert_non_null(fx);
    unit_make_tempdir(fx->dir, sizeof(fx->dir), "output");
    snprintf(fx->out_path, sizeof(fx->out_path), "%s/svc.log", fx->dir);
    fx->base = event_base_new();
    assert_non_null(fx->base);
    fx->config.name = (char *)"svc";
    fx->config.stdout_target.kind = OUTPUT_FILE;
    fx->config.stdout_target.path = fx->out_path;
    fx->config.stderr_target.kind = OUTPUT_FILE;
    fx->config.stderr_target.path = fx->out_path;
    fx->settings.tail_lines = 50;
    fx->settings.backups = 1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    output_free(fx->output);
    event_base_free(fx->base);
    unit_remove_tree(fx->dir);
    free(fx);
    return 0;
}

static void capture(void *data, enum output_stream_id stream, const char *line, size_t len)
{
    struct captured *c = data;

    if (!line) { /* the output went away: counted, not captured */
        c->ended++;
        return;
    }

    (void)stream;
    (void)line;
    assert_true(c->n < 16);
    c->len[c->n++] = len;
}

static void emit(struct fixture *fx, const char *data, size_t len)
{
    int fd = output_child_fd(fx->output, OUTPUT_STDOUT);
    int pending = 1;

    assert_int_equal(write(fd, data, len), (ssize_t)len);
    for (int round = 0; round < 1000 && pending > 0; round++) {
        event_base_loop(fx->base, EVLOOP_NONBLOCK);
        assert_int_equal(ioctl(fd, FIONREAD, &pending), 0);
    }
}

/*
 * Was a bug in agent/supervise/output.c consume(): OUTPUT_LINE_MAX ("longer lines are split") is
 * only applied when the rest of the chunk has no newline. When the newline arrives in the same
 * read, the whole line is delivered: up to one 64 KiB read per line into the tail buffer and to
 * followers. Input: 10000 'z' then '\n' in one write. Expected: lines of 8192 and 1808 bytes.
 * It used to give: one line of 10000 bytes.
 */
static void a_long_line_ending_in_the_same_write_is_split(void **state)
{
    struct fixture *fx = *state;
    static char data[10001];
    struct captured c = {0};
    char err[256];

    memset(data, 'z', 10000);
    data[10000] = '\n';
    assert_int_equal(
        output_new(fx->base, &fx->config, &fx->settings, &fx->output, err, sizeof(err)), 0);
    emit(fx, data, 10001);
    output_tail(fx->output, -1, -1, capture, &c);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.len[0], LINE_MAX_BYTES);
    assert_int_equal(c.len[1], 10000 - LINE_MAX_BYTES);
}

/*
 * Was a bug in agent/supervise/output.c output_new()/output_free(): the streams come from calloc(),
 * so their read_fd, write_fd and journal_fd are 0 until stream_setup() sets them to -1. When the
 * stdout stream fails (pipe2() fails with EMFILE, or an allocation fails before the streams are set
 * up), output_free() runs "if (fd >= 0) close(fd)" on the untouched stderr stream and closes
 * descriptor 0 three times: the agent loses its stdin, and the next open() or accept() is
 * handed descriptor 0. Expected: descriptor 0 still open and unchanged. It used to give: closed.
 */
static void a_failed_output_new_leaves_descriptor_zero_alone(void **state)
{
    struct fixture *fx = *state;
    struct rlimit saved, tight;
    struct stat before, after;
    char err[256] = "";
    int lowest, r;

    if (fcntl(0, F_GETFD) < 0)
        assert_int_equal(open("/dev/null", O_RDONLY), 0);
    assert_int_equal(fstat(0, &before), 0);
    lowest = dup(0);
    assert_true(lowest > 0);
    close(lowest);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    tight = saved;
    tight.rlim_cur = (rlim_t)lowest; /* no descriptor is free below the limit */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &tight), 0);
    r = output_new(fx->base, &fx->config, &fx->settings, &fx->output, err, sizeof(err));
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
    assert_int_equal(r, -EMFILE);
    assert_non_null(strstr(err, "cannot create the output pipe"));
    fx->output = NULL;
    assert_int_not_equal(fcntl(0, F_GETFD), -1);
    assert_int_equal(fstat(0, &after), 0);
    assert_true(after.st_ino == before.st_ino && after.st_dev == before.st_dev);
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(a_long_line_ending_in_the_same_write_is_split),
        TEST(a_failed_output_new_leaves_descriptor_zero_alone),
    };
    return cmocka_run_group_tests_name("output_regressions", tests, NULL, NULL);
}
