/*
 * Fuzzes the HTTP head parser (lib/http_head.c) that the HTTP server reads requests with and the
 * console's client reads the REST API's answers with. The first byte sets the number of header
 * slots (1 to 64) and whether the start line is read as a request line or a status line; the
 * rest is what arrived on the socket. Whatever is accepted must hold only what the parser
 * promises (tokens for names, clean values, a target in origin form, a status in range), lie
 * inside the copy it was parsed in, and parse the same once written out again.
 */
#include "fuzz_util.h"
#include "http_head.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The server's largest head (the REST API's 16 KiB) with room to spare. */
#define FUZZ_MAX_HEAD (64 * 1024)
#define FUZZ_MAX_SLOTS 64

static bool inside(const char *p, const char *text, size_t len)
{
    return p >= text && p <= text + len;
}

static bool clean_value(const char *value)
{
    size_t len = strlen(value);

    if (len &&
        (value[0] == ' ' || value[0] == '\t' || value[len - 1] == ' ' || value[len - 1] == '\t'))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)value[i];

        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return false;
    }
    return true;
}

static void check_fields(const struct http_head *head, const char *text, size_t len, unsigned slots)
{
    FUZZ_CHECK(head->n_headers <= slots);
    FUZZ_CHECK(inside(head->start_line, text, len));
    FUZZ_CHECK(!strpbrk(head->start_line, "\r\n"));
    for (unsigned i = 0; i < head->n_headers; i++) {
        const struct http_header *h = &head->headers[i];

        FUZZ_CHECK(inside(h->name, text, len) && inside(h->value, text, len));
        FUZZ_CHECK(http_is_token(h->name, strlen(h->name)));
        FUZZ_CHECK(clean_value(h->value));
        FUZZ_CHECK(http_head_header(head, h->name) != NULL);
    }
}

/* Writes the parsed head out (malloc'd, *ret_len bytes) the way a sender would. */
static char *write_out(const struct http_head *head, size_t *ret_len)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);

    FUZZ_CHECK(f);
    fprintf(f, "%s\r\n", head->start_line);
    for (unsigned i = 0; i < head->n_headers; i++)
        fprintf(f, "%s: %s\r\n", head->headers[i].name, head->headers[i].value);
    fputs("\r\n", f);
    FUZZ_CHECK(fclose(f) == 0);
    *ret_len = len;
    return out;
}

/* The head written out again parses to the same lines. */
static void check_round_trip(const struct http_head *head, unsigned slots)
{
    struct http_header again_slots[FUZZ_MAX_SLOTS];
    struct http_head again;
    size_t len;
    char *out = write_out(head, &len), *copy;

    FUZZ_CHECK(http_head_length(out, len) == len);
    copy = malloc(len + 1);
    FUZZ_CHECK(copy);
    memcpy(copy, out, len);
    FUZZ_CHECK(http_head_parse(copy, len, again_slots, slots, &again) == 0);
    FUZZ_CHECK(strcmp(again.start_line, head->start_line) == 0);
    FUZZ_CHECK(again.n_headers == head->n_headers);
    for (unsigned i = 0; i < head->n_headers; i++) {
        FUZZ_CHECK(strcmp(again.headers[i].name, head->headers[i].name) == 0);
        FUZZ_CHECK(strcmp(again.headers[i].value, head->headers[i].value) == 0);
    }
    free(copy);
    free(out);
}

static void check_request_line(struct http_head *head)
{
    struct http_request_line line;
    int r = http_head_request_line(head, &line);

    FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -EPROTONOSUPPORT);
    if (r < 0)
        return;
    FUZZ_CHECK(http_is_token(line.method, strlen(line.method)));
    FUZZ_CHECK(line.path[0] == '/');
    FUZZ_CHECK(line.minor_version == 0 || line.minor_version == 1);
    for (const char *p = line.path; *p; p++)
        FUZZ_CHECK((unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f && *p != '?');
    for (const char *p = line.query; *p; p++)
        FUZZ_CHECK((unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f);
}

static void check_status_line(const struct http_head *head)
{
    int status = 0, r = http_head_status_line(head, &status);

    FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -EPROTONOSUPPORT);
    if (r == 0)
        FUZZ_CHECK(status >= 100 && status <= 599);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_header slots_array[FUZZ_MAX_SLOTS];
    struct http_head head;
    unsigned slots;
    bool request;
    uint64_t length = 0;
    size_t len;
    char *text;
    int r;

    if (size < 1)
        return 0;
    slots = 1 + data[0] % FUZZ_MAX_SLOTS;
    request = data[0] & 0x80;
    data++;
    size--;
    len = http_head_length((const char *)data, size < FUZZ_MAX_HEAD ? size : FUZZ_MAX_HEAD);
    FUZZ_CHECK(len <= size);
    if (!len)
        return 0;
    FUZZ_CHECK(data[len - 1] == '\n');
    /* Exactly len + 1 bytes, as the parser is promised: ASan sees a step past them. */
    text = malloc(len + 1);
    FUZZ_CHECK(text);
    memcpy(text, data, len);
    r = http_head_parse(text, len, slots_array, slots, &head);
    FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -E2BIG);
    if (r == 0) {
        check_fields(&head, text, len, slots);
        check_round_trip(&head, slots);
        r = http_head_content_length(&head, &length);
        FUZZ_CHECK(r == 0 || r == 1 || r == -EBADMSG);
        FUZZ_CHECK(length < 1000000000000000000ULL);
        if (request)
            check_request_line(&head);
        else
            check_status_line(&head);
    }
    free(text);
    return 0;
}
