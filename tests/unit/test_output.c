/* Unit tests for output capture: line splitting, the tail buffer, followers and log rotation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

#include "notify.h"
#include "output.h"

#include <event2/event.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE_MAX_BYTES 8192 /* OUTPUT_LINE_MAX in output.c */
#define MAX_CAPTURED 64

struct fixture {
    char dir[64];
    char out_path[PATH_MAX];
    char err_path[PATH_MAX];
    struct event_base *base;
    struct service_config config; /* only name and the targets; strings owned here */
    struct output_settings settings;
    struct output *output;
};

struct captured {
    int n;
    int ended; /* end-of-output calls (line NULL) */
    enum output_stream_id stream[MAX_CAPTURED];
    char *line[MAX_CAPTURED];
    size_t len[MAX_CAPTURED];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    assert_non_null(fx);
    unit_make_tempdir(fx->dir, sizeof(fx->dir), "output");
    snprintf(fx->out_path, sizeof(fx->out_path), "%s/svc.log", fx->dir);
    snprintf(fx->err_path, sizeof(fx->err_path), "%s/svc.err", fx->dir);
    fx->base = event_base_new();
    assert_non_null(fx->base);
    fx->config.name = (char *)"svc";
    fx->config.stdout_target.kind = OUTPUT_FILE;
    fx->config.stdout_target.path = fx->out_path;
    fx->config.stderr_target.kind = OUTPUT_FILE;
    fx->config.stderr_target.path = fx->err_path;
    fx->settings.journal_available = false;
    fx->settings.max_bytes = 0;
    fx->settings.backups = 3;
    fx->settings.tail_lines = 50;
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

static void start(struct fixture *fx)
{
    char err[256] = "";
    int r = output_new(fx->base, &fx->config, &fx->settings, &fx->output, err, sizeof(err));

    if (r != 0)
        print_error("output_new: %d %s\n", r, err);
    assert_int_equal(r, 0);
    assert_non_null(fx->output);
}

/* Runs the loop until neither pipe holds unread bytes. */
static void drain(struct fixture *fx)
{
    for (int round = 0; round < 1000; round++) {
        int pending = 0;

        for (int s = OUTPUT_STDOUT; s <= OUTPUT_STDERR; s++) {
            int fd = output_child_fd(fx->output, (enum output_stream_id)s);
            int n = 0;

            if (fd >= 0 && ioctl(fd, FIONREAD, &n) == 0)
                pending += n;
        }
        if (pending == 0)
            return;
        event_base_loop(fx->base, EVLOOP_NONBLOCK);
    }
    fail_msg("the output pipes were not drained");
}

/* Writes data as the service would, then lets the agent read it. */
static void emit(struct fixture *fx, enum output_stream_id stream, const char *data, size_t len)
{
    int fd = output_child_fd(fx->output, stream);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    drain(fx);
}

static void say(struct fixture *fx, enum output_stream_id stream, const char *text)
{
    emit(fx, stream, text, strlen(text));
}

static void capture(void *data, enum output_stream_id stream, const char *line, size_t len)
{
    struct captured *c = data;

    if (!line) { /* the output went away: counted, not captured */
        c->ended++;
        return;
    }

    assert_true(c->n < MAX_CAPTURED);
    c->stream[c->n] = stream;
    c->line[c->n] = strndup(line, len);
    c->len[c->n] = len;
    c->n++;
}

static void captured_reset(struct captured *c)
{
    for (int i = 0; i < c->n; i++)
        free(c->line[i]);
    memset(c, 0, sizeof(*c));
}

/* Checks the captured lines against a NULL-terminated list of texts. */
static void assert_lines(const struct captured *c, const char *const *expected)
{
    int i = 0;

    for (; expected[i]; i++) {
        assert_true(i < c->n);
        assert_string_equal(c->line[i], expected[i]);
    }
    assert_int_equal(c->n, i);
}

static void assert_tail(const struct fixture *fx, int n, int filter, const char *const *expected)
{
    struct captured c = {0};

    output_tail(fx->output, n, filter, capture, &c);
    assert_lines(&c, expected);
    captured_reset(&c);
}

#define LINES(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NO_LINES ((const char *const[]){NULL})

static char *read_file(const char *path, size_t *ret_len)
{
    FILE *f = fopen(path, "r");
    char *text;
    long len;

    if (!f)
        return NULL;
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    len = ftell(f);
    rewind(f);
    text = calloc(1, (size_t)len + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    if (ret_len)
        *ret_len = (size_t)len;
    return text;
}

static void assert_file_equal(const char *path, const char *expected)
{
    char *text = read_file(path, NULL);

    if (!text)
        fail_msg("%s does not exist", path);
    assert_string_equal(text, expected);
    free(text);
}

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* --- the tail buffer --- */

static void tail_returns_the_last_lines_in_order(void **state)
{
    struct fixture *fx = *state;

    start(fx);
    assert_tail(fx, -1, -1, NO_LINES);
    say(fx, OUTPUT_STDOUT, "one\ntwo\nthree\nfour\n");
    assert_tail(fx, 2, -1, LINES("three", "four"));
    assert_tail(fx, 1, -1, LINES("four"));
    assert_tail(fx, -1, -1, LINES("one", "two", "three", "four")); /* negative: all kept */
    assert_tail(fx, 0, -1, NO_LINES);
    assert_tail(fx, 100, -1, LINES("one", "two", "three", "four"));
}

static void empty_lines_are_lines(void **state)
{
    struct fixture *fx = *state;

    start(fx);
    say(fx, OUTPUT_STDOUT, "a\n\nb\n\n");
    assert_tail(fx, -1, -1, LINES("a", "", "b", ""));
}

static void tail_filters_by_stream(void **state)
{
    struct fixture *fx = *state;
    struct captured c = {0};

    start(fx);
    say(fx, OUTPUT_STDOUT, "out 1\n");
    say(fx, OUTPUT_STDERR, "err 1\n");
    say(fx, OUTPUT_STDOUT, "out 2\n");
    say(fx, OUTPUT_STDERR, "err 2\n");
    say(fx, OUTPUT_STDOUT, "out 3\n");
    output_tail(fx->output, -1, -1, capture, &c);
    assert_lines(&c, LINES("out 1", "err 1", "out 2", "err 2", "out 3"));
    assert_int_equal(c.stream[0], OUTPUT_STDOUT);
    assert_int_equal(c.stream[1], OUTPUT_STDERR);
    assert_int_equal(c.stream[4], OUTPUT_STDOUT);
    captured_reset(&c);
    assert_tail(fx, -1, OUTPUT_STDOUT, LINES("out 1", "out 2", "out 3"));
    assert_tail(fx, -1, OUTPUT_STDERR, LINES("err 1", "err 2"));
    assert_tail(fx, 2, OUTPUT_STDOUT, LINES("out 2", "out 3"));
    assert_tail(fx, 1, OUTPUT_STDERR, LINES("err 2"));
    assert_tail(fx, 2, -1, LINES("err 2", "out 3"));
}

static void a_partial_line_is_completed_by_the_next_write(void **state)
{
    struct fixture *fx = *state;

    start(fx);
    say(fx, OUTPUT_STDOUT, "hel");
    assert_tail(fx, -1, -1, NO_LINES);
    say(fx, OUTPUT_STDOUT, "lo");
    assert_tail(fx, -1, -1, NO_LINES);
    say(fx, OUTPUT_STDOUT, " world\nsecond ");
    assert_tail(fx, -1, -1, LINES("hello world"));
    say(fx, OUTPUT_STDOUT, "line\n");
    assert_tail(fx, -1, -1, LINES("hello world", "second line"));
}

static void partial_lines_are_kept_per_stream(void **state)
{
    struct fixture *fx = *state;

    start(fx);
    say(fx, OUTPUT_STDOUT, "out-");
    say(fx, OUTPUT_STDERR, "err-");
    say(fx, OUTPUT_STDOUT, "end\n");
    say(fx, OUTPUT_STDERR, "end\n");
    assert_tail(fx, -1, OUTPUT_STDOUT, LINES("out-end"));
    assert_tail(fx, -1, OUTPUT_STDERR, LINES("err-end"));
}

static void a_long_line_without_a_newline_is_split(void **state)
{
    struct fixture *fx = *state;
    size_t len = 2 * LINE_MAX_BYTES + 100;
    char *data = malloc(len);
    struct captured c = {0};

    start(fx);
    assert_non_null(data);
    for (size_t i = 0; i < len; i++)
        data[i] = (char)('a' + i % 26);
    emit(fx, OUTPUT_STDOUT, data, len);
    output_tail(fx->output, -1, -1, capture, &c);
    assert_int_equal(c.n, 2); /* the last 100 bytes wait for more */
    assert_int_equal(c.len[0], LINE_MAX_BYTES);
    assert_memory_equal(c.line[0], data, LINE_MAX_BYTES);
    assert_int_equal(c.len[1], LINE_MAX_BYTES);
    assert_memory_equal(c.line[1], data + LINE_MAX_BYTES, LINE_MAX_BYTES);
    captured_reset(&c);
    say(fx, OUTPUT_STDOUT, "!\n");
    output_tail(fx->output, 1, -1, capture, &c);
    assert_int_equal(c.len[0], 101);
    assert_memory_equal(c.line[0], data + 2 * LINE_MAX_BYTES, 100);
    assert_int_equal(c.line[0][100], '!');
    captured_reset(&c);
    free(data);
}

static void a_partial_line_that_grows_too_long_is_split(void **state)
{
    struct fixture *fx = *state;
    char *data = malloc(LINE_MAX_BYTES);
    struct captured c = {0};

    start(fx);
    assert_non_null(data);
    memset(data, 'x', LINE_MAX_BYTES);
    say(fx, OUTPUT_STDOUT, "abc");
    emit(fx, OUTPUT_STDOUT, data, LINE_MAX_BYTES); /* "abc" + 8189 x fill the line */
    output_tail(fx->output, -1, -1, capture, &c);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.len[0], LINE_MAX_BYTES);
    assert_memory_equal(c.line[0], "abcxxx", 6);
    captured_reset(&c);
    say(fx, OUTPUT_STDOUT, "\n"); /* ends the 3 x left over */
    assert_tail(fx, 1, -1, LINES("xxx"));
    free(data);
}

static void a_line_of_exactly_the_maximum_is_one_line(void **state)
{
    struct fixture *fx = *state;
    char *data = malloc(LINE_MAX_BYTES + 1);
    struct captured c = {0};

    start(fx);
    assert_non_null(data);
    memset(data, 'y', LINE_MAX_BYTES);
    data[LINE_MAX_BYTES] = '\n';
    emit(fx, OUTPUT_STDOUT, data, LINE_MAX_BYTES + 1);
    say(fx, OUTPUT_STDOUT, "next\n");
    output_tail(fx->output, -1, -1, capture, &c);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.len[0], LINE_MAX_BYTES);
    assert_string_equal(c.line[1], "next");
    captured_reset(&c);
    free(data);
}

static void the_tail_bound_drops_the_oldest_lines(void **state)
{
    struct fixture *fx = *state;

    fx->settings.tail_lines = 3;
    start(fx);
    say(fx, OUTPUT_STDOUT, "l1\nl2\n");
    assert_tail(fx, -1, -1, LINES("l1", "l2"));
    say(fx, OUTPUT_STDERR, "l3\nl4\n");
    assert_tail(fx, -1, -1, LINES("l2", "l3", "l4"));
    say(fx, OUTPUT_STDOUT, "l5\nl6\nl7\n");
    assert_tail(fx, -1, -1, LINES("l5", "l6", "l7"));
    assert_tail(fx, 10, -1, LINES("l5", "l6", "l7"));
    assert_tail(fx, -1, OUTPUT_STDERR, NO_LINES);
}

static void the_tail_is_bounded_in_bytes_too(void **state)
{
    struct fixture *fx = *state;
    char line[8001];
    struct captured c = {0};

    fx->settings.tail_lines = 200;
    start(fx);
    for (int i = 0; i < 10; i++) {
        memset(line, 'a' + i, 8000);
        line[8000] = '\n';
        emit(fx, OUTPUT_STDOUT, line, sizeof(line));
    }
    /* 64 KiB hold eight lines of 8000 bytes: the two oldest are gone */
    output_tail(fx->output, -1, -1, capture, &c);
    assert_int_equal(c.n, 8);
    assert_int_equal(c.line[0][0], 'c');
    assert_int_equal(c.line[7][0], 'j');
    captured_reset(&c);
}

static void zero_tail_lines_keeps_nothing(void **state)
{
    struct fixture *fx = *state;

    fx->settings.tail_lines = 0;
    start(fx);
    say(fx, OUTPUT_STDOUT, "gone\n");
    assert_tail(fx, -1, -1, NO_LINES);
    assert_file_equal(fx->out_path, "gone\n");
}

/* --- followers --- */

static void followers_get_the_lines_of_their_streams(void **state)
{
    struct fixture *fx = *state;
    struct captured both = {0}, errors = {0};

    start(fx);
    say(fx, OUTPUT_STDOUT, "before\n");
    assert_int_equal(output_follow(fx->output, -1, capture, &both), 0);
    assert_int_equal(output_follow(fx->output, OUTPUT_STDERR, capture, &errors), 0);
    assert_int_equal(both.n, 0); /* following does not replay the tail */
    say(fx, OUTPUT_STDOUT, "o1\no2");
    say(fx, OUTPUT_STDERR, "e1\n");
    say(fx, OUTPUT_STDOUT, "\n");
    assert_lines(&both, LINES("o1", "e1", "o2"));
    assert_int_equal(both.stream[1], OUTPUT_STDERR);
    assert_lines(&errors, LINES("e1"));

    output_unfollow(fx->output, capture, &both);
    say(fx, OUTPUT_STDOUT, "o3\n");
    say(fx, OUTPUT_STDERR, "e2\n");
    assert_lines(&both, LINES("o1", "e1", "o2"));
    assert_lines(&errors, LINES("e1", "e2"));
    output_unfollow(fx->output, capture, &errors);
    output_unfollow(fx->output, capture, &errors); /* not following: nothing happens */
    say(fx, OUTPUT_STDERR, "e3\n");
    assert_lines(&errors, LINES("e1", "e2"));
    assert_tail(fx, -1, -1, LINES("before", "o1", "e1", "o2", "o3", "e2", "e3"));
    captured_reset(&both);
    captured_reset(&errors);
}

struct quitter {
    struct output *output;
    int calls;
};

static void unfollow_on_first_line(void *data, enum output_stream_id stream, const char *line,
                                   size_t len)
{
    struct quitter *q = data;

    (void)stream;
    (void)line;
    (void)len;
    q->calls++;
    output_unfollow(q->output, unfollow_on_first_line, q);
}

static void a_follower_may_unfollow_itself_from_its_callback(void **state)
{
    struct fixture *fx = *state;
    struct quitter q = {0};
    struct captured other = {0};

    start(fx);
    q.output = fx->output;
    assert_int_equal(output_follow(fx->output, -1, capture, &other), 0);
    assert_int_equal(output_follow(fx->output, -1, unfollow_on_first_line, &q), 0);
    say(fx, OUTPUT_STDOUT, "a\nb\nc\n");
    assert_int_equal(q.calls, 1);
    assert_lines(&other, LINES("a", "b", "c"));
    captured_reset(&other);
    output_unfollow(fx->output, capture, &other); /* 'other' dies with this function */
}

static void followers_hear_the_end_when_the_output_goes(void **state)
{
    struct fixture *fx = *state;
    struct captured c = {0};

    start(fx);
    assert_int_equal(output_follow(fx->output, -1, capture, &c), 0);
    say(fx, OUTPUT_STDOUT, "last\n");
    output_free(fx->output);
    fx->output = NULL;
    assert_int_equal(c.ended, 1);
    assert_lines(&c, LINES("last"));
    captured_reset(&c);
}

/* --- log files --- */

static void log_files_get_the_bytes_as_written(void **state)
{
    struct fixture *fx = *state;

    start(fx);
    say(fx, OUTPUT_STDOUT, "out 1\npart");
    say(fx, OUTPUT_STDERR, "err 1\n");
    say(fx, OUTPUT_STDOUT, "ial\n");
    assert_file_equal(fx->out_path, "out 1\npartial\n");
    assert_file_equal(fx->err_path, "err 1\n");
}

static void both_streams_may_share_one_file(void **state)
{
    struct fixture *fx = *state;

    fx->config.stderr_target.path = fx->out_path;
    start(fx);
    say(fx, OUTPUT_STDOUT, "out\n");
    say(fx, OUTPUT_STDERR, "err\n");
    say(fx, OUTPUT_STDOUT, "out again\n");
    assert_file_equal(fx->out_path, "out\nerr\nout again\n");
    assert_false(exists(fx->err_path));
}

static void a_null_target_has_no_pipe(void **state)
{
    struct fixture *fx = *state;

    fx->config.stdout_target.kind = OUTPUT_NULL;
    start(fx);
    assert_int_equal(output_child_fd(fx->output, OUTPUT_STDOUT), -1);
    assert_true(output_child_fd(fx->output, OUTPUT_STDERR) >= 0);
    say(fx, OUTPUT_STDERR, "only errors\n");
    assert_tail(fx, -1, -1, LINES("only errors"));
    assert_false(exists(fx->out_path));
}

static void auto_without_a_journal_writes_the_file(void **state)
{
    struct fixture *fx = *state;

    fx->config.stdout_target.kind = OUTPUT_AUTO;
    start(fx);
    say(fx, OUTPUT_STDOUT, "to the file\n");
    assert_file_equal(fx->out_path, "to the file\n");
}

/* Fills line (61 bytes) with 59 copies of c, a newline and a NUL. */
static const char *line_of(char *line, char c)
{
    memset(line, c, 59);
    line[59] = '\n';
    line[60] = '\0';
    return line;
}

static void log_files_rotate_at_max_bytes_keeping_backups(void **state)
{
    struct fixture *fx = *state;
    char path[PATH_MAX + 8];
    char line[61];
    struct captured c = {0};

    fx->settings.max_bytes = 100;
    fx->settings.backups = 2;
    start(fx);
    /* 60-byte writes: each one after the first would pass 100 bytes, so it rotates first */
    say(fx, OUTPUT_STDOUT, line_of(line, 'A'));
    assert_file_equal(fx->out_path, line);
    say(fx, OUTPUT_STDOUT, line_of(line, 'B'));
    say(fx, OUTPUT_STDOUT, line_of(line, 'C'));
    say(fx, OUTPUT_STDOUT, line_of(line, 'D'));
    assert_file_equal(fx->out_path, line_of(line, 'D'));
    snprintf(path, sizeof(path), "%s.1", fx->out_path);
    assert_file_equal(path, line_of(line, 'C'));
    snprintf(path, sizeof(path), "%s.2", fx->out_path);
    assert_file_equal(path, line_of(line, 'B'));
    snprintf(path, sizeof(path), "%s.3", fx->out_path);
    assert_false(exists(path)); /* A was dropped */
    /* the tail is not affected by rotation */
    output_tail(fx->output, -1, -1, capture, &c);
    assert_int_equal(c.n, 4);
    assert_int_equal(c.len[0], 59);
    assert_int_equal(c.line[0][0], 'A');
    assert_int_equal(c.line[3][0], 'D');
    captured_reset(&c);
    /* the stderr file is separate and never grew */
    assert_file_equal(fx->err_path, "");
}

static void writes_below_max_bytes_do_not_rotate(void **state)
{
    struct fixture *fx = *state;
    char path[PATH_MAX + 8];

    fx->settings.max_bytes = 10;
    fx->settings.backups = 1;
    start(fx);
    say(fx, OUTPUT_STDOUT, "12345\n");
    say(fx, OUTPUT_STDOUT, "6789\n"); /* 11 bytes: 6 + 5 > 10, rotates */
    say(fx, OUTPUT_STDOUT, "ab\n");   /* 5 + 3 <= 10: appended */
    assert_file_equal(fx->out_path, "6789\nab\n");
    snprintf(path, sizeof(path), "%s.1", fx->out_path);
    assert_file_equal(path, "12345\n");
}

static void an_existing_log_file_counts_toward_max_bytes(void **state)
{
    struct fixture *fx = *state;
    char path[PATH_MAX + 8];
    FILE *f = fopen(fx->out_path, "w");

    assert_non_null(f);
    fputs("old old old old old old old old\n", f); /* 32 bytes */
    fclose(f);
    fx->settings.max_bytes = 40;
    fx->settings.backups = 1;
    start(fx);
    say(fx, OUTPUT_STDOUT, "new line 1\n");
    assert_file_equal(fx->out_path, "new line 1\n");
    snprintf(path, sizeof(path), "%s.1", fx->out_path);
    assert_file_equal(path, "old old old old old old old old\n");
}

static void no_backups_truncates_in_place(void **state)
{
    struct fixture *fx = *state;
    char path[PATH_MAX + 8];

    fx->settings.max_bytes = 8;
    fx->settings.backups = 0;
    start(fx);
    say(fx, OUTPUT_STDOUT, "first\n");
    say(fx, OUTPUT_STDOUT, "second\n");
    assert_file_equal(fx->out_path, "second\n");
    snprintf(path, sizeof(path), "%s.1", fx->out_path);
    assert_false(exists(path));
}

static void a_single_write_larger_than_max_bytes_is_kept_whole(void **state)
{
    struct fixture *fx = *state;
    char path[PATH_MAX + 8];

    fx->settings.max_bytes = 4;
    fx->settings.backups = 1;
    start(fx);
    say(fx, OUTPUT_STDOUT, "longer than four\n");
    assert_file_equal(fx->out_path, "longer than four\n");
    snprintf(path, sizeof(path), "%s.1", fx->out_path);
    assert_false(exists(path)); /* an empty file is never rotated */
}

/* --- notify_field --- */

static void assert_field(const char *message, const char *key, const char *expected)
{
    size_t len = 12345;
    const char *value = notify_field(message, key, &len);

    if (!expected) {
        assert_null(value);
        return;
    }
    assert_non_null(value);
    assert_int_equal(len, strlen(expected));
    assert_memory_equal(value, expected, len);
}

static void notify_field_finds_values_on_their_lines(void **state)
{
    const char *message = "READY=1\nSTATUS=Loading: 50% done\nMAINPID=4242\nERRNO=0";

    (void)state;
    assert_field(message, "READY", "1");
    assert_field(message, "STATUS", "Loading: 50% done");
    assert_field(message, "MAINPID", "4242");
    assert_field(message, "ERRNO", "0"); /* the last line needs no newline */
    assert_field(message, "RELOADING", NULL);
}

static void notify_field_matches_whole_keys_only(void **state)
{
    (void)state;
    assert_field("READYX=1\nREADY=2\n", "READY", "2");
    assert_field("XREADY=1\n", "READY", NULL);
    assert_field("READY\n", "READY", NULL);
    assert_field("ready=1\n", "READY", NULL);
    assert_field("STATUS=a=b\n", "STATUS", "a=b");
}

static void notify_field_edge_cases(void **state)
{
    (void)state;
    assert_field("", "READY", NULL);
    assert_field("STATUS=\nREADY=1\n", "STATUS", "");
    assert_field("\n\nREADY=1\n\n", "READY", "1");
    assert_field("READY=1\nREADY=0\n", "READY", "1"); /* the first one wins */
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(tail_returns_the_last_lines_in_order),
        TEST(empty_lines_are_lines),
        TEST(tail_filters_by_stream),
        TEST(a_partial_line_is_completed_by_the_next_write),
        TEST(partial_lines_are_kept_per_stream),
        TEST(a_long_line_without_a_newline_is_split),
        TEST(a_partial_line_that_grows_too_long_is_split),
        TEST(a_line_of_exactly_the_maximum_is_one_line),
        TEST(the_tail_bound_drops_the_oldest_lines),
        TEST(the_tail_is_bounded_in_bytes_too),
        TEST(zero_tail_lines_keeps_nothing),
        TEST(followers_get_the_lines_of_their_streams),
        TEST(a_follower_may_unfollow_itself_from_its_callback),
        TEST(followers_hear_the_end_when_the_output_goes),
        TEST(log_files_get_the_bytes_as_written),
        TEST(both_streams_may_share_one_file),
        TEST(a_null_target_has_no_pipe),
        TEST(auto_without_a_journal_writes_the_file),
        TEST(log_files_rotate_at_max_bytes_keeping_backups),
        TEST(writes_below_max_bytes_do_not_rotate),
        TEST(an_existing_log_file_counts_toward_max_bytes),
        TEST(no_backups_truncates_in_place),
        TEST(a_single_write_larger_than_max_bytes_is_kept_whole),
        cmocka_unit_test(notify_field_finds_values_on_their_lines),
        cmocka_unit_test(notify_field_matches_whole_keys_only),
        cmocka_unit_test(notify_field_edge_cases),
    };
    return cmocka_run_group_tests_name("output", tests, NULL, NULL);
}
