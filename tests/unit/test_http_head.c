/*
 * Unit tests for lib/http_head.c: where a head ends, splitting it into lines, request and status
 * lines, Content-Length, list values, and what each kind of malformed head is refused with.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "http_head.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MAX_HEADERS 8

static char text[16384];
static struct http_header slots[MAX_HEADERS];

/* Copies a complete head into text and splits it; returns what http_head_parse returned. */
static int parse(const char *head_text, struct http_head *head)
{
    size_t len = strlen(head_text);

    assert_true(len < sizeof(text));
    memcpy(text, head_text, len);
    assert_int_equal(http_head_length(text, len), len);
    return http_head_parse(text, len, slots, MAX_HEADERS, head);
}

static void the_end_of_a_head_is_found_only_once_it_came(void **state)
{
    (void)state;
    assert_int_equal(http_head_length("GET / HTTP/1.1\r\nHost: a\r\n", 25), 0);
    assert_int_equal(http_head_length("GET / HTTP/1.1\r\n\r", 17), 0);
    assert_int_equal(http_head_length("GET / HTTP/1.1\r\n\r\nextra", 23), 18);
    assert_int_equal(http_head_length("GET / HTTP/1.0\n\nbody", 20), 16);
    assert_int_equal(http_head_length("GET / HTTP/1.0\n\r\nbody", 21), 17);
    assert_int_equal(http_head_length("", 0), 0);
    /* A limit shorter than the head hides its end: the caller's size limit is what counts. */
    assert_int_equal(http_head_length("GET / HTTP/1.1\r\n\r\n", 10), 0);
}

static void a_request_head_is_split_into_its_parts(void **state)
{
    struct http_request_line line;
    struct http_head head;

    (void)state;
    assert_int_equal(parse("PUT /v1/x?dry_run=true&a=%20 HTTP/1.1\r\nHost: a\r\n"
                           "Accept:  */*  \r\nX-Empty:\r\nhost: second\r\n\r\n",
                           &head),
                     0);
    assert_int_equal(head.n_headers, 4);
    assert_string_equal(http_head_header(&head, "HOST"), "a");
    assert_string_equal(http_head_header(&head, "accept"), "*/*");
    assert_string_equal(http_head_header(&head, "x-empty"), "");
    assert_null(http_head_header(&head, "content-length"));
    assert_int_equal(http_head_request_line(&head, &line), 0);
    assert_string_equal(line.method, "PUT");
    assert_string_equal(line.path, "/v1/x");
    assert_string_equal(line.query, "dry_run=true&a=%20");
    assert_int_equal(line.minor_version, 1);
    assert_int_equal(parse("HEAD /metrics HTTP/1.0\n\n", &head), 0);
    assert_int_equal(head.n_headers, 0);
    assert_int_equal(http_head_request_line(&head, &line), 0);
    assert_string_equal(line.query, "");
    assert_int_equal(line.minor_version, 0);
}

static void bad_request_lines_are_refused(void **state)
{
    static const struct {
        const char *head;
        int error;
    } cases[] = {
        {"GET /metrics HTTP/2.0\r\n\r\n", -EPROTONOSUPPORT},
        {"GET /metrics HTTP/1.2\r\n\r\n", -EPROTONOSUPPORT},
        {"GET /metrics HTTP/1.x\r\n\r\n", -EBADMSG},
        {"GET /metrics HTTP/1.10\r\n\r\n", -EBADMSG},
        {"GET /metrics http/1.1\r\n\r\n", -EBADMSG},
        {"GET /metrics HTTP/1.1 x\r\n\r\n", -EBADMSG},
        {"GET  /metrics HTTP/1.1\r\n\r\n", -EBADMSG},
        {"GET metrics HTTP/1.1\r\n\r\n", -EBADMSG},
        {"GET http://a/ HTTP/1.1\r\n\r\n", -EBADMSG},
        {"G(T /metrics HTTP/1.1\r\n\r\n", -EBADMSG},
        {" GET / HTTP/1.1\r\n\r\n", -EBADMSG},
        {"GET /a\x7f HTTP/1.1\r\n\r\n", -EBADMSG},
        {"GET /\r\n\r\n", -EBADMSG},
        {"\r\n\r\n", -EBADMSG},
    };
    struct http_request_line line;
    struct http_head head;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int r = parse(cases[i].head, &head);

        if (r == 0)
            r = http_head_request_line(&head, &line);
        if (r != cases[i].error)
            fail_msg("case %zu: %d, expected %d", i, r, cases[i].error);
    }
}

static void bad_header_lines_are_refused(void **state)
{
    static const char *const cases[] = {
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",           /* a blank before the colon */
        "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", /* obs-fold */
        "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",      /* not a field */
        "GET / HTTP/1.1\r\n: empty name\r\n\r\n",       /* no name */
        "GET / HTTP/1.1\r\nHo(st: a\r\n\r\n",           /* not a token */
        "GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n",        /* a control character */
        "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",         /* a bare CR */
        "GET / HTTP/1.1\r\nHost: a\x7f\r\n\r\n",        /* DEL */
    };
    struct http_head head;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (parse(cases[i], &head) != -EBADMSG)
            fail_msg("case %zu was not refused", i);
}

static void a_nul_anywhere_is_refused(void **state)
{
    static const char head_text[] = "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n";
    struct http_head head;

    (void)state;
    memcpy(text, head_text, sizeof(head_text) - 1);
    assert_int_equal(http_head_parse(text, sizeof(head_text) - 1, slots, MAX_HEADERS, &head),
                     -EBADMSG);
}

static void more_header_lines_than_slots_are_refused(void **state)
{
    char head_text[1024];
    size_t at = (size_t)snprintf(head_text, sizeof(head_text), "GET / HTTP/1.1\r\n");
    struct http_head head;

    (void)state;
    for (int i = 0; i < MAX_HEADERS; i++)
        at += (size_t)snprintf(head_text + at, sizeof(head_text) - at, "X-%d: y\r\n", i);
    snprintf(head_text + at, sizeof(head_text) - at, "\r\n");
    assert_int_equal(parse(head_text, &head), 0);
    assert_int_equal(head.n_headers, MAX_HEADERS);
    snprintf(head_text + at, sizeof(head_text) - at, "X-last: y\r\n\r\n");
    assert_int_equal(parse(head_text, &head), -E2BIG);
}

static void status_lines_are_read(void **state)
{
    static const struct {
        const char *head;
        int result, status;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\n\r\n", 0, 200},
        {"HTTP/1.0 404 Not Found\r\n\r\n", 0, 404},
        {"HTTP/1.1 204\r\n\r\n", 0, 204},
        {"HTTP/1.1 100 \r\n\r\n", 0, 100},
        {"HTTP/1.1 599 Odd\r\n\r\n", 0, 599},
        {"HTTP/2 200 OK\r\n\r\n", -EBADMSG, 0},
        {"HTTP/2.0 200 OK\r\n\r\n", -EPROTONOSUPPORT, 0},
        {"HTTP/1.1 099 Low\r\n\r\n", -EBADMSG, 0},
        {"HTTP/1.1 600 High\r\n\r\n", -EBADMSG, 0},
        {"HTTP/1.1 20 Short\r\n\r\n", -EBADMSG, 0},
        {"HTTP/1.1 2000 Long\r\n\r\n", -EBADMSG, 0},
        {"HTTP/1.1 200OK\r\n\r\n", -EBADMSG, 0},
        {"HTTP/1.1 200 O\x01K\r\n\r\n", -EBADMSG, 0},
        {"SSH-2.0-OpenSSH\r\n\r\n", -EBADMSG, 0},
    };
    struct http_head head;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int status = 0, r = parse(cases[i].head, &head);

        if (r == 0)
            r = http_head_status_line(&head, &status);
        if (r != cases[i].result || (r == 0 && status != cases[i].status))
            fail_msg("case %zu: %d (status %d), expected %d (%d)", i, r, status, cases[i].result,
                     cases[i].status);
    }
}

static void content_length_is_digits_and_agrees_with_itself(void **state)
{
    static const struct {
        const char *fields;
        int result;
        uint64_t length;
    } cases[] = {
        {"", 0, 0},
        {"Content-Length: 12\r\n", 1, 12},
        {"content-length: 0\r\n", 1, 0},
        {"Content-Length: 7\r\nCONTENT-LENGTH: 7\r\n", 1, 7},
        {"Content-Length: 999999999999999999\r\n", 1, 999999999999999999ULL},
        {"Content-Length: 1000000000000000000\r\n", -EBADMSG, 0}, /* 19 digits */
        {"Content-Length: 3\r\nContent-Length: 4\r\n", -EBADMSG, 0},
        {"Content-Length: 1x\r\n", -EBADMSG, 0},
        {"Content-Length: -1\r\n", -EBADMSG, 0},
        {"Content-Length: +1\r\n", -EBADMSG, 0},
        {"Content-Length: 1 2\r\n", -EBADMSG, 0},
        {"Content-Length:\r\n", -EBADMSG, 0},
    };
    char head_text[512];
    struct http_head head;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t length = 4242;
        int r;

        snprintf(head_text, sizeof(head_text), "HTTP/1.1 200 OK\r\n%s\r\n", cases[i].fields);
        assert_int_equal(parse(head_text, &head), 0);
        r = http_head_content_length(&head, &length);
        if (r != cases[i].result)
            fail_msg("case %zu: %d, expected %d", i, r, cases[i].result);
        /* An out-parameter is set on success only. */
        assert_true(length == (r == 1 ? cases[i].length : 4242));
    }
}

static void list_values_and_tokens(void **state)
{
    (void)state;
    assert_true(http_list_has("close", "close"));
    assert_true(http_list_has("x, Close", "close"));
    assert_true(http_list_has(" keep-alive ,upgrade", "KEEP-ALIVE"));
    assert_false(http_list_has("closed", "close"));
    assert_false(http_list_has("", "close"));
    assert_false(http_list_has(",,,", "close"));
    assert_true(http_is_token("X-Echo", 6));
    assert_true(http_is_token("!#$%&'*+-.^_`|~09az", 19));
    assert_false(http_is_token("", 0));
    assert_false(http_is_token("a b", 3));
    assert_false(http_is_token("a:b", 3));
    assert_false(http_is_token("\xc3\xa9", 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_end_of_a_head_is_found_only_once_it_came),
        cmocka_unit_test(a_request_head_is_split_into_its_parts),
        cmocka_unit_test(bad_request_lines_are_refused),
        cmocka_unit_test(bad_header_lines_are_refused),
        cmocka_unit_test(a_nul_anywhere_is_refused),
        cmocka_unit_test(more_header_lines_than_slots_are_refused),
        cmocka_unit_test(status_lines_are_read),
        cmocka_unit_test(content_length_is_digits_and_agrees_with_itself),
        cmocka_unit_test(list_values_and_tokens),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
