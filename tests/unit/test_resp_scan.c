/*
 * Unit tests for the streaming request scanner (lib/resp.c, resp_scan): what a proxy that copies
 * a client's bytes passes, holds, drops and refuses, however the bytes are split.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "resp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The most a scanner may make its caller hold (a head of headers, a name and a subcommand). */
#define HELD_MAX 256

/*
 * The proxy's side, simulated: bytes that pass go to out, held ones wait, dropped ones vanish,
 * and a refused request becomes "<REFUSED name sub>" in its place.
 */
struct sim {
    struct resp_scanner scanner;
    char *out, *pending;
    size_t out_len, pending_len;
    bool garbage;
    size_t heads, max_held;
};

static void sim_init(struct sim *m)
{
    memset(m, 0, sizeof(*m));
    resp_scanner_init(&m->scanner);
}

static void sim_free(struct sim *m)
{
    free(m->out);
    free(m->pending);
}

static void append(char **buf, size_t *len, const char *data, size_t n)
{
    *buf = realloc(*buf, *len + n + 1);
    assert_non_null(*buf);
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
}

/* The test's policy: SHUTDOWN, DEBUG and CONFIG SET (CONFIG with a subcommand unknown too). */
static bool refused(const struct resp_scanner *s)
{
    const struct resp_request_info *info = &s->info;

    if (strcmp(info->name, "shutdown") == 0 || strcmp(info->name, "debug") == 0)
        return true;
    return strcmp(info->name, "config") == 0 && (s->sub_unknown || strcmp(info->sub, "set") == 0);
}

/* Releases what pending holds beyond the scanner's held bytes. */
static void release(struct sim *m)
{
    size_t keep = m->scanner.held;

    assert_true(keep <= m->pending_len);
    append(&m->out, &m->out_len, m->pending, m->pending_len - keep);
    memmove(m->pending, m->pending + m->pending_len - keep, keep);
    m->pending_len = keep;
}

static void sim_feed(struct sim *m, const char *data, size_t len)
{
    size_t pos = 0;

    while (pos < len) {
        size_t used = 99;
        int r = resp_scan(&m->scanner, data + pos, len - pos, &used);

        if (r == -EPROTO) {
            assert_int_equal(used, 0);
            assert_false(m->garbage); /* reported once */
            m->garbage = true;
            continue;
        }
        assert_true(r == RESP_SCAN_PASS || r == RESP_SCAN_HEAD || r == RESP_SCAN_DROP);
        assert_true(used >= 1 && used <= len - pos);
        if (r != RESP_SCAN_DROP)
            append(&m->pending, &m->pending_len, data + pos, used);
        pos += used;
        if (r == RESP_SCAN_HEAD) {
            m->heads++;
            if (refused(&m->scanner)) {
                char mark[80];
                size_t n = resp_scan_refuse(&m->scanner);

                assert_true(n <= m->pending_len);
                m->pending_len -= n;
                append(&m->out, &m->out_len, m->pending, m->pending_len);
                m->pending_len = 0;
                snprintf(mark, sizeof(mark), "<REFUSED %s%s%s>", m->scanner.info.name,
                         *m->scanner.info.sub ? " " : "", m->scanner.info.sub);
                append(&m->out, &m->out_len, mark, strlen(mark));
            }
        }
        if (m->scanner.held > m->max_held)
            m->max_held = m->scanner.held;
        release(m);
    }
}

/* What the stream becomes, fed in pieces of chunk bytes (0: whole). */
static char *filtered(const char *data, size_t len, size_t chunk, size_t *ret_held)
{
    struct sim m;
    char *out;

    sim_init(&m);
    for (size_t at = 0; at < len;) {
        size_t n = chunk && chunk < len - at ? chunk : len - at;

        sim_feed(&m, data + at, n);
        at += n;
    }
    append(&m.out, &m.out_len, "", 0);
    if (m.pending_len) {
        /* An incomplete request at the end: shown, so that tests see it was held. */
        append(&m.out, &m.out_len, "[", 1);
        append(&m.out, &m.out_len, m.pending, m.pending_len);
        append(&m.out, &m.out_len, "]", 1);
    }
    if (ret_held)
        *ret_held = m.max_held;
    out = m.out;
    m.out = NULL;
    sim_free(&m);
    return out;
}

/* Checks that data becomes want, whole, in every split in two, and one byte at a time. */
static void expect_len(const char *data, size_t len, const char *want)
{
    size_t held;
    char *got = filtered(data, len, 0, &held);

    assert_string_equal(got, want);
    assert_true(held <= HELD_MAX);
    free(got);
    for (size_t chunk = 1; chunk <= len && chunk <= 64; chunk++) {
        got = filtered(data, len, chunk, &held);
        if (strcmp(got, want) != 0)
            fail_msg("in pieces of %zu: got \"%s\", want \"%s\"", chunk, got, want);
        assert_true(held <= HELD_MAX);
        free(got);
    }
}

static void expect(const char *data, const char *want)
{
    expect_len(data, strlen(data), want);
}

/* For literals with NUL bytes in them. */
#define EXPECT_BYTES(literal, want) expect_len(literal, sizeof(literal) - 1, want)

static void passes_ordinary_requests(void **state)
{
    (void)state;
    expect("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
           "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    expect("PING\r\nGET k\r\n", "PING\r\nGET k\r\n");
    expect("*2\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n", "*2\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n");
    expect("*1\r\n$6\r\nconfig\r\n", "*1\r\n$6\r\nconfig\r\n");
    /* Empty requests are passed: Redis skips them. */
    expect("*0\r\n*-1\r\n\r\n\n", "*0\r\n*-1\r\n\r\n\n");
    /* An incomplete request is held (all of it: its head is not known). */
    expect("PING\r\n*2\r\n$3\r\nGET", "PING\r\n[*2\r\n$3\r\nGET]");
    /* ... but once its head is known it passes, payload and all. */
    expect("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc");
}

static void refuses_arrays(void **state)
{
    (void)state;
    expect("*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n", "<REFUSED shutdown nosave>");
    expect("*1\r\n$8\r\nshutdown\r\n", "<REFUSED shutdown>");
    expect("*4\r\n$6\r\nconfig\r\n$3\r\nSet\r\n$4\r\nsave\r\n$0\r\n\r\n", "<REFUSED config set>");
    /* The bytes before and after go on, in order. */
    expect("*1\r\n$4\r\nPING\r\n*1\r\n$5\r\nDEBUG\r\n*1\r\n$4\r\nPING\r\n",
           "*1\r\n$4\r\nPING\r\n<REFUSED debug>*1\r\n$4\r\nPING\r\n");
    /* Redis skips the byte after a header's CR and the two after an argument unread. */
    expect("*1\rX$8\rYshutdownAB*1\r\n$4\r\nPING\r\n", "<REFUSED shutdown>*1\r\n$4\r\nPING\r\n");
    /* A name ends at a NUL byte for Redis's lookup: the subcommand then counts as any. */
    EXPECT_BYTES("*3\r\n$10\r\nconfig\0junk\r\n$3\r\nget\r\n$1\r\nx\r\n", "<REFUSED config>");
    EXPECT_BYTES("*2\r\n$40\r\nshutdown\0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n$1\r\nx\r\n",
                 "<REFUSED shutdown>");
    /* ... and so does a subcommand. */
    EXPECT_BYTES("*3\r\n$6\r\nconfig\r\n$30\r\nset\0bbbbbbbbbbbbbbbbbbbbbbbbbb\r\n$1\r\nx\r\n",
                 "<REFUSED config set>");
}

static void refuses_inline_commands_with_quotes(void **state)
{
    (void)state;
    expect("shutdown nosave\r\n", "<REFUSED shutdown nosave>");
    expect("\"shutdown\" nosave\r\nPING\r\n", "<REFUSED shutdown nosave>PING\r\n");
    expect("sh\"utdown\"\n", "<REFUSED shutdown>");
    expect("'SHUT''\n", "'SHUT''\n"); /* a closing quote followed by a quote: garbage */
    expect("'shut\\'down'\r\n", "'shut\\'down'\r\n"); /* shut'down */
    expect("\"\\x53hutdown\" x\r\n", "<REFUSED shutdown x>");
    expect("\"\\x4\" x\r\n", "\"\\x4\" x\r\n");   /* not an escape: x4 */
    expect("\"de\\bug\"\r\n", "\"de\\bug\"\r\n"); /* de<backspace>ug */
    expect("\"de\\bug\"\r\n\"d\\ebug\"\r\n", "\"de\\bug\"\r\n<REFUSED debug>");
    expect("CONFIG SET maxmemory 1\r\n", "<REFUSED config set>");
    expect("\"\" shutdown\r\n", "\"\" shutdown\r\n"); /* the name is empty */
    /* Blanks the held head does not need are dropped (one of each run is kept). */
    expect("   config  \t  get   x\r\n", " config get   x\r\n");
    expect("  \t CONFIG \r\r  SET x y\r\n", "<REFUSED config set>");
    expect("\t\r\n", "\t\n"); /* an empty line stays one */
    /* An unbalanced quote is garbage: from there on every byte passes (Redis closes). */
    expect("\"shutdown\r\nSHUTDOWN\r\n", "\"shutdown\r\nSHUTDOWN\r\n");
}

static void drops_a_refused_request_whatever_its_size(void **state)
{
    size_t n = 3 * 1024 * 1024, held;
    char *data = malloc(n + 200), *got;
    int at;

    (void)state;
    assert_non_null(data);
    at = sprintf(data, "*4\r\n$6\r\nconfig\r\n$3\r\nset\r\n$1\r\nk\r\n$%zu\r\n", n);
    memset(data + at, 'v', n);
    at += (int)n;
    at += sprintf(data + at, "\r\n*1\r\n$4\r\nPING\r\n");
    for (size_t chunk = 0; chunk <= 16384; chunk += 4096) {
        got = filtered(data, (size_t)at, chunk, &held);
        assert_string_equal(got, "<REFUSED config set>*1\r\n$4\r\nPING\r\n");
        assert_true(held <= HELD_MAX);
        free(got);
    }
    /* An allowed one passes whole, and the scanner holds nothing of its payload. */
    memcpy(data + 8, "CONFIG", 6);
    memcpy(data + 8 + 6 + 2 + 4, "get", 3);
    got = filtered(data, (size_t)at, 16384, &held);
    assert_int_equal(strlen(got), (size_t)at);
    assert_memory_equal(got, data, (size_t)at);
    assert_true(held <= HELD_MAX);
    free(got);
    free(data);
}

static void decides_long_names_without_holding_them(void **state)
{
    char data[4096];
    size_t held;
    int at = sprintf(data, "*2\r\n$3000\r\n");
    char *got;

    (void)state;
    memset(data + at, 'a', 3000);
    at += 3000;
    at += sprintf(data + at, "\r\n$1\r\nx\r\n");
    got = filtered(data, (size_t)at, 7, &held);
    assert_int_equal(strlen(got), (size_t)at);
    assert_true(held <= HELD_MAX);
    free(got);
    /* Inline: a long word, and many blanks after a name. */
    memset(data, 'b', 3000);
    memcpy(data + 3000, " x\r\n", 5);
    got = filtered(data, strlen(data), 5, &held);
    assert_string_equal(got, data);
    assert_true(held <= HELD_MAX);
    free(got);
    strcpy(data, "config");
    memset(data + 6, ' ', 3000);
    strcpy(data + 3006, "set x y\r\n");
    got = filtered(data, strlen(data), 100, &held);
    assert_string_equal(got, "<REFUSED config set>");
    assert_true(held <= HELD_MAX);
    free(got);
}

static void garbage_passes_unless_inside_a_refused_request(void **state)
{
    (void)state;
    expect("*x\r\nSHUTDOWN\r\n", "*x\r\nSHUTDOWN\r\n");
    expect("*1\r\n$-1\r\nSHUTDOWN\r\n", "*1\r\n$-1\r\nSHUTDOWN\r\n");
    expect("*2\r\n$3\r\nGET\r\n!!!\r\n", "*2\r\n$3\r\nGET\r\n!!!\r\n");
    /* Inside a refused request the server would have refused the rest: it never sees it. */
    expect("*3\r\n$8\r\nshutdown\r\n$1\r\nx\r\n!!!\r\nSHUTDOWN\r\n", "<REFUSED shutdown x>");
}

static void reports_heads(void **state)
{
    struct resp_scanner s;
    size_t used;
    const char *req = "*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$9\r\nmaxmemory\r\n";

    (void)state;
    resp_scanner_init(&s);
    assert_int_equal(resp_scan(&s, req, strlen(req), &used), RESP_SCAN_HEAD);
    assert_string_equal(s.info.name, "config");
    assert_string_equal(s.info.sub, "get");
    assert_int_equal(s.info.argc, 3);
    assert_false(s.sub_unknown);
    assert_int_equal(used, strlen("*3\r\n$6\r\nCONFIG\r\n$3\r\nGET"));
    assert_int_equal(s.held, 0);
    assert_int_equal(resp_scan(&s, req + used, strlen(req) - used, &used), RESP_SCAN_PASS);
    assert_int_equal(used, strlen("\r\n$9\r\nmaxmemory\r\n"));
    /* Inline: the words read so far. */
    req = "get key\r\n";
    assert_int_equal(resp_scan(&s, req, strlen(req), &used), RESP_SCAN_HEAD);
    assert_string_equal(s.info.name, "get");
    assert_string_equal(s.info.sub, "key");
    assert_int_equal(s.info.argc, 2);
    assert_int_equal(used, strlen("get key\r"));
    assert_int_equal(resp_scan_refuse(&s), used);
    assert_int_equal(resp_scan(&s, req + used, strlen(req) - used, &used), RESP_SCAN_DROP);
    assert_int_equal(used, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(passes_ordinary_requests),
        cmocka_unit_test(refuses_arrays),
        cmocka_unit_test(refuses_inline_commands_with_quotes),
        cmocka_unit_test(drops_a_refused_request_whatever_its_size),
        cmocka_unit_test(decides_long_names_without_holding_them),
        cmocka_unit_test(garbage_passes_unless_inside_a_refused_request),
        cmocka_unit_test(reports_heads),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
