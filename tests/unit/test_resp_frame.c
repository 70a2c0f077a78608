/* Unit tests for the RESP framers a proxy routes with (lib/resp.c): replies and requests. */
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

/* Replies of every type, as Redis writes them, each one value. */
static const char *const replies[] = {
    "+OK\r\n",
    "-ERR wrong number of arguments\r\n",
    ":42\r\n",
    ":-7\r\n",
    "$5\r\nhello\r\n",
    "$0\r\n\r\n",
    "$-1\r\n",
    "*-1\r\n",
    "*0\r\n",
    "$4\r\n\r\n\r\n\r\n", /* line breaks inside a payload are payload */
    "*3\r\n$3\r\nfoo\r\n$-1\r\n:1\r\n",
    "*2\r\n*2\r\n:1\r\n*1\r\n$1\r\na\r\n*0\r\n", /* nested, with an empty array inside */
    "*2\r\n-ERR inside\r\n+QUEUED\r\n",
    "%2\r\n+a\r\n:1\r\n+b\r\n*1\r\n:2\r\n", /* RESP3 */
    "~2\r\n#t\r\n_\r\n",
    ",3.14\r\n",
    "(3492890328409238509324850943850943825024385\r\n",
    "=15\r\ntxt:Some string\r\n",
    "!21\r\nSYNTAX invalid syntax\r\n",
    "|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*1\r\n:2\r\n", /* attribute, then value */
    ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
};
#define N_REPLIES (sizeof(replies) / sizeof(replies[0]))

/* All replies back to back, with the offset where each one ends. */
static char *stream(size_t *ret_len, size_t *ends)
{
    size_t len = 0;
    char *all;

    for (size_t i = 0; i < N_REPLIES; i++)
        len += strlen(replies[i]);
    all = malloc(len + 1);
    assert_non_null(all);
    len = 0;
    for (size_t i = 0; i < N_REPLIES; i++) {
        memcpy(all + len, replies[i], strlen(replies[i]));
        len += strlen(replies[i]);
        ends[i] = len;
    }
    *ret_len = len;
    return all;
}

/* Feeds buf in chunks starting at the given cuts; records where values ended. */
static size_t frame_in_chunks(const char *buf, size_t len, const size_t *cuts, size_t n_cuts,
                              size_t *found, unsigned char *firsts)
{
    struct resp_framer f;
    size_t n_found = 0, at = 0;

    resp_framer_init(&f);
    for (size_t c = 0; c <= n_cuts; c++) {
        size_t end = c < n_cuts ? cuts[c] : len;

        while (at < end) {
            size_t used;
            int r = resp_framer_feed(&f, buf + at, end - at, &used);

            assert_true(r == 0 || r == 1);
            assert_true(used > 0 && used <= end - at);
            at += used;
            if (r == 1) {
                firsts[n_found] = f.first;
                found[n_found++] = at;
            } else {
                assert_int_equal(at, end);
            }
        }
    }
    return n_found;
}

static void frames_every_type_at_every_split(void **state)
{
    size_t ends[N_REPLIES], found[N_REPLIES + 1], len;
    unsigned char firsts[N_REPLIES + 1];
    char *all = stream(&len, ends);

    (void)state;
    for (size_t cut = 0; cut <= len; cut++) {
        size_t n = frame_in_chunks(all, len, &cut, 1, found, firsts);

        assert_int_equal(n, N_REPLIES);
        assert_memory_equal(found, ends, sizeof(ends));
        for (size_t i = 0; i < N_REPLIES; i++)
            assert_int_equal(firsts[i], (unsigned char)replies[i][0]);
    }
    free(all);
}

static void frames_one_byte_at_a_time(void **state)
{
    size_t ends[N_REPLIES], found[N_REPLIES + 1], len;
    unsigned char firsts[N_REPLIES + 1];
    char *all = stream(&len, ends);
    size_t *cuts = malloc(len * sizeof(*cuts));

    (void)state;
    assert_non_null(cuts);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    assert_int_equal(frame_in_chunks(all, len, cuts, len, found, firsts), N_REPLIES);
    assert_memory_equal(found, ends, sizeof(ends));
    free(cuts);
    free(all);
}

static void a_large_bulk_string_in_pieces(void **state)
{
    size_t size = 3 * 1024 * 1024, header, len, at = 0, used;
    char *buf = malloc(size + 64);
    struct resp_framer f;
    int r = 0;

    (void)state;
    assert_non_null(buf);
    header = (size_t)sprintf(buf, "$%zu\r\n", size);
    memset(buf + header, '\r', size); /* payload bytes that look like line ends */
    memcpy(buf + header + size, "\r\n", 2);
    len = header + size + 2;
    resp_framer_init(&f);
    while (at < len) {
        size_t piece = len - at < 16384 ? len - at : 16384;

        r = resp_framer_feed(&f, buf + at, piece, &used);
        assert_int_equal(used, piece);
        at += used;
        assert_int_equal(r, at == len ? 1 : 0);
    }
    assert_int_equal(r, 1);
    free(buf);
}

static int feed_all(const char *text)
{
    struct resp_framer f;
    size_t used;

    resp_framer_init(&f);
    return resp_framer_feed(&f, text, strlen(text), &used);
}

static void refuses_what_is_not_resp(void **state)
{
    char deep[4 * (RESP_FRAME_MAX_DEPTH + 1) + 1] = "";

    (void)state;
    assert_int_equal(feed_all("?what\r\n"), -EPROTO);
    assert_int_equal(feed_all("$abc\r\n"), -EPROTO);
    assert_int_equal(feed_all("$-2\r\n"), -EPROTO);
    assert_int_equal(feed_all("*-5\r\n"), -EPROTO);
    assert_int_equal(feed_all("$\r\n"), -EPROTO);
    assert_int_equal(feed_all("$3\r\nabcd\r\n"), -EPROTO); /* no CR after the payload */
    assert_int_equal(feed_all(":1\r\r"), -EPROTO);
    assert_int_equal(feed_all("$99999999999999999999\r\n"), -EPROTO);
    assert_int_equal(feed_all("%-1\r\n"), -EPROTO); /* only RESP2's $ and * have nulls of -1 */
    for (size_t i = 0; i <= RESP_FRAME_MAX_DEPTH; i++)
        strcat(deep, "*1\r\n");
    assert_int_equal(feed_all(deep), -EPROTO);
    /* An incomplete value is not an error: it waits. */
    assert_int_equal(feed_all("*2\r\n:1\r\n"), 0);
    assert_int_equal(feed_all("$5\r\nhel"), 0);
}

/* --- requests ------------------------------------------------------------------------------- */

static const char set_request[] = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\r\nl\r\n";

static void frames_a_request_at_every_length(void **state)
{
    size_t len = strlen(set_request), used;
    struct resp_request_framer f;
    struct resp_request_info info;

    (void)state;
    /* A fresh framer at each length, and one framer that comes back with more each time. */
    resp_request_framer_init(&f);
    for (size_t n = 0; n < len; n++) {
        struct resp_request_framer fresh;

        resp_request_framer_init(&fresh);
        assert_int_equal(resp_frame_request(&fresh, set_request, n, 1024, &info, &used), 0);
        assert_int_equal(resp_frame_request(&f, set_request, n, 1024, &info, &used), 0);
    }
    assert_int_equal(resp_frame_request(&f, set_request, len, 1024, &info, &used), 1);
    assert_int_equal(used, len);
    assert_int_equal(info.argc, 3);
    assert_string_equal(info.name, "set");
    assert_false(info.has_block);
}

static void frames_pipelined_requests_one_by_one(void **state)
{
    const char *text = "*1\r\n$4\r\nPiNg\r\n*0\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPI";
    size_t len = strlen(text), at = 0, used;
    struct resp_request_framer f;
    struct resp_request_info info;

    (void)state;
    resp_request_framer_init(&f);
    assert_int_equal(resp_frame_request(&f, text, len, 1024, &info, &used), 1);
    assert_string_equal(info.name, "ping");
    at += used;
    assert_int_equal(resp_frame_request(&f, text + at, len - at, 1024, &info, &used), 1);
    assert_int_equal(info.argc, 0); /* "*0": Redis ignores it */
    at += used;
    assert_int_equal(resp_frame_request(&f, text + at, len - at, 1024, &info, &used), 1);
    assert_string_equal(info.name, "get");
    assert_int_equal(info.argc, 2);
    at += used;
    assert_int_equal(resp_frame_request(&f, text + at, len - at, 1024, &info, &used), 0);
}

static int frame_once(const char *text, size_t max, struct resp_request_info *info)
{
    struct resp_request_framer f;
    size_t used;

    resp_request_framer_init(&f);
    return resp_frame_request(&f, text, strlen(text), max, info, &used);
}

static void notes_block_and_long_names(void **state)
{
    struct resp_request_info info;

    (void)state;
    assert_int_equal(
        frame_once("*4\r\n$5\r\nXREAD\r\n$5\r\nbLoCk\r\n$1\r\n0\r\n$7\r\nSTREAMS\r\n", 1024, &info),
        1);
    assert_string_equal(info.name, "xread");
    assert_true(info.has_block);
    assert_int_equal(frame_once("*2\r\n$5\r\nBLOCK\r\n$1\r\nx\r\n", 1024, &info), 1);
    assert_false(info.has_block); /* the name itself is not an argument */
    assert_int_equal(frame_once("*1\r\n$30\r\nabcdefghijabcdefghijabcdefghij\r\n", 1024, &info), 1);
    assert_string_equal(info.name, "");
}

static void refuses_what_it_cannot_frame(void **state)
{
    struct resp_request_info info;

    (void)state;
    assert_int_equal(frame_once("PING\r\n", 1024, &info), -EPROTO);                /* inline */
    assert_int_equal(frame_once("*1\r\n:1\r\n", 1024, &info), -EPROTO);            /* not bulk */
    assert_int_equal(frame_once("*1\r\n$3\r\nabcd\r\n", 1024, &info), -EPROTO);    /* no CRLF */
    assert_int_equal(frame_once("*x\r\n", 1024, &info), -EPROTO);                  /* count */
    assert_int_equal(frame_once("*1\r\n$-1\r\n", 1024, &info), -EPROTO);           /* null */
    assert_int_equal(frame_once("*1\r\n*1\r\n$1\r\na\r\n", 1024, &info), -EPROTO); /* nested */
    assert_int_equal(frame_once("*1\r\n$2000\r\n", 1024, &info), -E2BIG);          /* too big */
    assert_int_equal(frame_once("*1000\r\n", 1024, &info), -E2BIG);                /* too many */
    assert_int_equal(frame_once("*111111111111111111111111\r\n", 1024, &info), -EPROTO);
    assert_int_equal(frame_once("*1111111111111111111111111111111111111", 1024, &info), -EPROTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(frames_every_type_at_every_split),
        cmocka_unit_test(frames_one_byte_at_a_time),
        cmocka_unit_test(a_large_bulk_string_in_pieces),
        cmocka_unit_test(refuses_what_is_not_resp),
        cmocka_unit_test(frames_a_request_at_every_length),
        cmocka_unit_test(frames_pipelined_requests_one_by_one),
        cmocka_unit_test(notes_block_and_long_names),
        cmocka_unit_test(refuses_what_it_cannot_frame),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
