/* Unit tests for the RESP2 request parser and reply writers (lib/resp.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "resp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const struct resp_limits limits = {.max_args = 4, .max_bulk = 16, .max_inline = 32};

/* Parses text (copied: the parser writes into its buffer). Returns what the parser returned. */
static int parse(const char *text, char *buf, size_t size, const struct resp_request **req,
                 size_t *used, char *err)
{
    struct resp_parser *parser = malloc(sizeof(*parser));
    size_t len = strlen(text);
    int r;

    assert_non_null(parser);
    assert_true(len <= size);
    memcpy(buf, text, len);
    resp_parser_init(parser, &limits);
    r = resp_parse_request(parser, buf, len, req, used, err, 256);
    /* The request lives in the parser: keep a copy the test can read after the free. */
    if (r == 1) {
        static struct resp_request copy;

        copy = **req;
        *req = &copy;
    }
    free(parser);
    return r;
}

static void assert_arg(const struct resp_request *req, size_t i, const char *expected)
{
    assert_true(i < req->argc);
    assert_int_equal(req->argv[i].len, strlen(expected));
    assert_memory_equal(req->argv[i].data, expected, strlen(expected));
    assert_int_equal(req->argv[i].data[req->argv[i].len], '\0');
}

static void parses_an_array_request(void **state)
{
    const char *text = "*3\r\n$8\r\nSENTINEL\r\n$7\r\nmasters\r\n$0\r\n\r\nPING\r\n";
    const struct resp_request *req;
    char buf[128], err[256];
    size_t used;

    (void)state;
    assert_int_equal(parse(text, buf, sizeof(buf), &req, &used, err), 1);
    assert_int_equal(req->argc, 3);
    assert_arg(req, 0, "SENTINEL");
    assert_arg(req, 1, "masters");
    assert_arg(req, 2, "");
    assert_int_equal(used, strlen(text) - strlen("PING\r\n")); /* the next request stays */
}

/* Bytes arriving one at a time give the same request, and nothing before the last byte. */
static void parses_a_request_arriving_byte_by_byte(void **state)
{
    const char *texts[] = {"*2\r\n$4\r\nPING\r\n$5\r\nhello\r\n", "PING \"a b\"\r\n"};

    (void)state;
    for (size_t t = 0; t < 2; t++) {
        struct resp_parser parser;
        const struct resp_request *req = NULL;
        size_t len = strlen(texts[t]), used = 0;
        char *buf = NULL, err[256];
        int r = 0;

        resp_parser_init(&parser, &limits);
        for (size_t n = 1; n <= len; n++) {
            /* A new buffer each time: the parser must not keep pointers into the old one. */
            char *grown = malloc(n);

            assert_non_null(grown);
            if (buf)
                memcpy(grown, buf, n - 1);
            grown[n - 1] = texts[t][n - 1];
            free(buf);
            buf = grown;
            r = resp_parse_request(&parser, buf, n, &req, &used, err, sizeof(err));
            if (n < len)
                assert_int_equal(r, 0);
        }
        assert_int_equal(r, 1);
        assert_int_equal(used, len);
        assert_int_equal(req->argc, 2);
        assert_arg(req, 0, "PING");
        assert_arg(req, 1, t == 0 ? "hello" : "a b");
        free(buf);
    }
}

static void answers_pipelined_requests_one_at_a_time(void **state)
{
    char buf[] = "PING\r\n*1\r\n$4\r\nPING\r\nPING x\n";
    struct resp_parser parser;
    const struct resp_request *req;
    size_t at = 0, used, count = 0, len = sizeof(buf) - 1;
    char err[256];

    (void)state;
    resp_parser_init(&parser, &limits);
    while (at < len &&
           resp_parse_request(&parser, buf + at, len - at, &req, &used, err, sizeof(err)) == 1) {
        assert_arg(req, 0, "PING");
        at += used;
        count++;
    }
    assert_int_equal(count, 3);
    assert_int_equal(at, sizeof(buf) - 1);
}

static void splits_inline_requests_as_redis_does(void **state)
{
    const struct resp_request *req;
    char buf[128], err[256];
    size_t used;

    (void)state;
    assert_int_equal(parse("  SET \"a\\x41\\n\" 'it\\'s'  x\n", buf, sizeof(buf), &req, &used, err),
                     1);
    assert_int_equal(req->argc, 4);
    assert_arg(req, 0, "SET");
    assert_arg(req, 1, "aA\n");
    assert_arg(req, 2, "it's");
    assert_arg(req, 3, "x");
    assert_int_equal(parse("\r\n", buf, sizeof(buf), &req, &used, err), 1);
    assert_int_equal(req->argc, 0); /* a blank line: nothing to answer */
    assert_int_equal(used, 2);
    assert_int_equal(parse("\"\"\r\n", buf, sizeof(buf), &req, &used, err), 1);
    assert_int_equal(req->argc, 1);
    assert_arg(req, 0, "");
}

static void skips_empty_arrays(void **state)
{
    const struct resp_request *req;
    char buf[64], err[256];
    size_t used;

    (void)state;
    assert_int_equal(parse("*0\r\nPING\r\n", buf, sizeof(buf), &req, &used, err), 1);
    assert_int_equal(req->argc, 0);
    assert_int_equal(used, 4);
    assert_int_equal(parse("*-1\r\n", buf, sizeof(buf), &req, &used, err), 1);
    assert_int_equal(req->argc, 0);
}

static void refuses_malformed_requests_with_redis_words(void **state)
{
    static const struct {
        const char *text;
        const char *message;
    } cases[] = {
        {"*x\r\n", "Protocol error: invalid multibulk length"},
        {"*1\r\nx\r\n", "Protocol error: expected '$', got 'x'"},
        {"*1\r\n$x\r\n", "Protocol error: invalid bulk length"},
        {"*1\r\n$-3\r\n", "Protocol error: invalid bulk length"},
        {"*1\r\n$2\r\nabcd\r\n", "Protocol error: expected CRLF after an argument"},
        {"\"open\r\n", "Protocol error: unbalanced quotes in request"},
        {"\"a\"b\r\n", "Protocol error: unbalanced quotes in request"},
        {"*1111111111111111111111111111111111", "Protocol error: too big mbulk count string"},
        {"*1\r\n$1111111111111111111111111111111111", "Protocol error: too big bulk count string"},
        /* As long, with its CR come and its LF not yet (found by tests/fuzz/fuzz_resp.c). */
        {"*1111111111111111111111111111111111\r", "Protocol error: too big mbulk count string"},
        {"*1\r\n$1111111111111111111111111111111111\r",
         "Protocol error: too big bulk count string"},
    };
    const struct resp_request *req;
    char buf[64], err[256];
    size_t used;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(parse(cases[i].text, buf, sizeof(buf), &req, &used, err), -EPROTO);
        assert_string_equal(err, cases[i].message);
    }
}

static void refuses_requests_over_the_limits(void **state)
{
    const struct resp_request *req;
    char buf[128], err[256];
    size_t used;

    (void)state;
    assert_int_equal(parse("*5\r\n", buf, sizeof(buf), &req, &used, err), -EPROTO);
    assert_string_equal(err, "Protocol error: too many arguments (at most 4)");
    assert_int_equal(parse("a b c d e\r\n", buf, sizeof(buf), &req, &used, err), -EPROTO);
    assert_string_equal(err, "Protocol error: too many arguments (at most 4)");
    assert_int_equal(parse("*1\r\n$17\r\n", buf, sizeof(buf), &req, &used, err), -EPROTO);
    assert_string_equal(err, "Protocol error: argument too long (at most 16 bytes)");
    /* An inline line too long is refused before its end arrives, and when it has. */
    assert_int_equal(parse("PING 0123456789012345678901234567", buf, sizeof(buf), &req, &used, err),
                     -EPROTO);
    assert_string_equal(err, "Protocol error: too big inline request");
    assert_int_equal(
        parse("PING 012345678901234567890123456789\r\n", buf, sizeof(buf), &req, &used, err),
        -EPROTO);
    assert_string_equal(err, "Protocol error: too big inline request");
    /* At the limits exactly: accepted. */
    assert_int_equal(parse("*4\r\n$16\r\n0123456789abcdef\r\n$0\r\n\r\n$0\r\n\r\n$0\r\n\r\n", buf,
                           sizeof(buf), &req, &used, err),
                     1);
    assert_int_equal(req->argc, 4);
}

static void writes_replies(void **state)
{
    static const char expected[] = "+OK\r\n"
                                   "-ERR bad  thing 7\r\n"
                                   "*3\r\n"
                                   "$5\r\nhe\r\nl\r\n"
                                   "$-1\r\n"
                                   "$5\r\n12000\r\n"
                                   ":-42\r\n"
                                   "*-1\r\n";
    struct resp_buf out = {0};

    (void)state;
    resp_add_simple(&out, "OK");
    resp_add_error(&out, "ERR bad\r\nthing %d", 7); /* a line break cannot end the reply */
    resp_add_array(&out, 3);
    resp_add_bulk(&out, "he\r\nl", 5); /* bulk strings carry any byte */
    resp_add_null_bulk(&out);
    resp_add_bulk_number(&out, 12000);
    resp_add_integer(&out, -42);
    resp_add_null_array(&out);
    assert_false(out.failed);
    assert_int_equal(out.len, sizeof(expected) - 1);
    assert_memory_equal(out.data, expected, out.len);
    resp_buf_consume(&out, 5);
    assert_memory_equal(out.data, "-ERR", 4);
    resp_buf_consume(&out, out.len + 1);
    assert_int_equal(out.len, 0);
    resp_buf_free(&out);
    assert_null(out.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_an_array_request),
        cmocka_unit_test(parses_a_request_arriving_byte_by_byte),
        cmocka_unit_test(answers_pipelined_requests_one_at_a_time),
        cmocka_unit_test(splits_inline_requests_as_redis_does),
        cmocka_unit_test(skips_empty_arrays),
        cmocka_unit_test(refuses_malformed_requests_with_redis_words),
        cmocka_unit_test(refuses_requests_over_the_limits),
        cmocka_unit_test(writes_replies),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
