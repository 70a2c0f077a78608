/* RESP2, the Redis protocol: an incremental request parser and the reply writers. */
#include "resp.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A "*<count>\r\n" or "$<len>\r\n" header longer than this is not one (Redis's own limit). */
#define RESP_HEADER_MAX 32

void resp_parser_init(struct resp_parser *parser, const struct resp_limits *limits)
{
    memset(parser, 0, sizeof(*parser));
    parser->limits = *limits;
    if (parser->limits.max_args > RESP_MAX_ARGS || parser->limits.max_args == 0)
        parser->limits.max_args = RESP_MAX_ARGS;
    parser->count = -1;
}

/* Ready for the next request; the limits stay, and so does the request just returned. */
static void parser_reset(struct resp_parser *parser)
{
    parser->pos = 0;
    parser->count = -1;
}

static int protocol_error(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int protocol_error(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    return -EPROTO;
}

/* Parses the decimal number of text[0, len): digits, with a '-' in front allowed. */
static bool parse_number(const char *text, size_t len, long long *ret_value)
{
    bool negative = len > 0 && text[0] == '-';
    long long value = 0;
    size_t i = negative ? 1 : 0;

    if (i == len || len - i > 18) /* 18 digits cannot overflow */
        return false;
    for (; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return false;
        value = value * 10 + (text[i] - '0');
    }
    *ret_value = negative ? -value : value;
    return true;
}

/*
 * Reads the "<c><number>\r\n" header at buf[at]: 1 with its value and the
 * offset after it, 0 when it has not all arrived, -1 when it is too long to
 * be one, -2 when it is not a number.
 */
static int read_header(const char *buf, size_t len, size_t at, long long *ret_value,
                       size_t *ret_next)
{
    const char *cr = memchr(buf + at + 1, '\r', len - at - 1);

    if (!cr)
        return len - at > RESP_HEADER_MAX ? -1 : 0;
    if ((size_t)(cr - buf) + 1 >= len)
        return 0; /* the '\n' is still on its way */
    if (cr[1] != '\n' || !parse_number(buf + at + 1, (size_t)(cr - buf) - at - 1, ret_value))
        return -2;
    *ret_next = (size_t)(cr - buf) + 2;
    return 1;
}

static void finish(struct resp_parser *parser, char *buf, const struct resp_request **ret_request,
                   size_t *ret_used)
{
    for (size_t i = 0; i < parser->req.argc; i++)
        parser->req.argv[i].data = buf + parser->offsets[i];
    *ret_request = &parser->req;
    *ret_used = parser->pos;
}

/* The header of an array request. Returns 1 when it is read, 0 for more bytes, or an error. */
static int parse_array_header(struct resp_parser *parser, const char *buf, size_t len, char *err,
                              size_t err_len)
{
    long long count;
    size_t next;
    int r = read_header(buf, len, 0, &count, &next);

    if (r == 0)
        return 0;
    if (r == -1)
        return protocol_error(err, err_len, "Protocol error: too big mbulk count string");
    if (r < 0 || count > INT32_MAX)
        return protocol_error(err, err_len, "Protocol error: invalid multibulk length");
    if (count > (long long)parser->limits.max_args)
        return protocol_error(err, err_len, "Protocol error: too many arguments (at most %zu)",
                              parser->limits.max_args);
    parser->count = count > 0 ? count : 0; /* "*0" and "*-1" are empty requests, skipped */
    parser->pos = next;
    return 1;
}

/* The next bulk string of an array request. Returns 1 when read, 0 for more bytes, or an error. */
static int parse_bulk(struct resp_parser *parser, char *buf, size_t len, char *err, size_t err_len)
{
    size_t at = parser->pos, start;
    long long bulk_len;
    int r;

    if (at >= len)
        return 0;
    if (buf[at] != '$')
        return protocol_error(err, err_len, "Protocol error: expected '$', got '%c'", buf[at]);
    r = read_header(buf, len, at, &bulk_len, &start);
    if (r == 0)
        return 0;
    if (r == -1)
        return protocol_error(err, err_len, "Protocol error: too big bulk count string");
    if (r < 0 || bulk_len < 0)
        return protocol_error(err, err_len, "Protocol error: invalid bulk length");
    if ((unsigned long long)bulk_len > parser->limits.max_bulk)
        return protocol_error(err, err_len, "Protocol error: argument too long (at most %zu bytes)",
                              parser->limits.max_bulk);
    if (len - start < (size_t)bulk_len + 2)
        return 0;
    if (buf[start + bulk_len] != '\r' || buf[start + bulk_len + 1] != '\n')
        return protocol_error(err, err_len, "Protocol error: expected CRLF after an argument");
    buf[start + bulk_len] = '\0';
    parser->offsets[parser->req.argc] = start;
    parser->req.argv[parser->req.argc++].len = (size_t)bulk_len;
    parser->pos = start + (size_t)bulk_len + 2;
    return 1;
}

static int parse_array(struct resp_parser *parser, char *buf, size_t len,
                       const struct resp_request **ret_request, size_t *ret_used, char *err,
                       size_t err_len)
{
    int r;

    if (parser->count < 0 && (r = parse_array_header(parser, buf, len, err, err_len)) <= 0)
        return r;
    while (parser->req.argc < (size_t)parser->count)
        if ((r = parse_bulk(parser, buf, len, err, err_len)) <= 0)
            return r;
    finish(parser, buf, ret_request, ret_used);
    return 1;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The byte an escape "\c" in double quotes stands for. */
static char unescape(char c)
{
    switch (c) {
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    case 'b':
        return '\b';
    case 'a':
        return '\a';
    default:
        return c;
    }
}

/*
 * Copies the quoted word at line[*r] (on its opening quote) to line[*w],
 * unescaping as redis-server's sdssplitargs() does. Returns false for a quote
 * left open or a closing quote not followed by a blank or the end.
 */
static bool unquote(char *line, size_t end, size_t *r, size_t *w)
{
    char quote = line[(*r)++];

    for (;;) {
        char c;

        if (*r >= end)
            return false;
        c = line[*r];
        if (quote == '"' && c == '\\' && *r + 3 < end && line[*r + 1] == 'x' &&
            hex_value(line[*r + 2]) >= 0 && hex_value(line[*r + 3]) >= 0) {
            line[(*w)++] = (char)(hex_value(line[*r + 2]) * 16 + hex_value(line[*r + 3]));
            *r += 4;
        } else if (c == '\\' && *r + 1 < end && (quote == '"' || line[*r + 1] == '\'')) {
            line[(*w)++] = quote == '"' ? unescape(line[*r + 1]) : '\'';
            *r += 2;
        } else if (c == quote) {
            (*r)++;
            return *r >= end || is_space(line[*r]);
        } else {
            line[(*w)++] = c;
            (*r)++;
        }
    }
}

/*
 * Splits line[0, end) into words in place. Each word is written at or before
 * where it was read, so a word never overwrites one not yet read; each is
 * followed by a NUL, which may land on the blank that ended it.
 */
static int split_inline(struct resp_parser *parser, char *line, size_t end, char *err,
                        size_t err_len)
{
    size_t r = 0, w = 0;

    for (;;) {
        size_t start;

        while (r < end && is_space(line[r]))
            r++;
        if (r >= end)
            return 0;
        if (parser->req.argc == parser->limits.max_args)
            return protocol_error(err, err_len, "Protocol error: too many arguments (at most %zu)",
                                  parser->limits.max_args);
        start = w;
        if (line[r] == '"' || line[r] == '\'') {
            if (!unquote(line, end, &r, &w))
                return protocol_error(err, err_len, "Protocol error: unbalanced quotes in request");
        } else {
            while (r < end && !is_space(line[r]))
                line[w++] = line[r++];
        }
        parser->offsets[parser->req.argc] = start;
        parser->req.argv[parser->req.argc++].len = w - start;
        line[w++] = '\0';
        if (w > r)
            r = w; /* the NUL took the blank that ended the word */
    }
}

static int parse_inline(struct resp_parser *parser, char *buf, size_t len,
                        const struct resp_request **ret_request, size_t *ret_used, char *err,
                        size_t err_len)
{
    char *nl = memchr(buf + parser->pos, '\n', len - parser->pos);
    size_t end;
    int r;

    if (!nl) {
        parser->pos = len; /* scanned: the next call looks only at new bytes */
        if (len > parser->limits.max_inline)
            return protocol_error(err, err_len, "Protocol error: too big inline request");
        return 0;
    }
    end = (size_t)(nl - buf);
    if (end > parser->limits.max_inline)
        return protocol_error(err, err_len, "Protocol error: too big inline request");
    parser->pos = end + 1;
    if (end > 0 && buf[end - 1] == '\r')
        end--;
    if ((r = split_inline(parser, buf, end, err, err_len)) < 0)
        return r;
    finish(parser, buf, ret_request, ret_used);
    return 1;
}

int resp_parse_request(struct resp_parser *parser, char *buf, size_t len,
                       const struct resp_request **ret_request, size_t *ret_used, char *err,
                       size_t err_len)
{
    int r;

    if (parser->pos == 0 && parser->count < 0)
        parser->req.argc = 0; /* a new request */
    if (len == 0)
        return 0;
    /* As in Redis: an array starts with '*', anything else is an inline line. */
    if (buf[0] == '*')
        r = parse_array(parser, buf, len, ret_request, ret_used, err, err_len);
    else
        r = parse_inline(parser, buf, len, ret_request, ret_used, err, err_len);
    if (r != 0)
        parser_reset(parser);
    return r;
}

void resp_buf_free(struct resp_buf *buf)
{
    free(buf->data);
    memset(buf, 0, sizeof(*buf));
}

char *resp_buf_reserve(struct resp_buf *buf, size_t n)
{
    size_t cap;
    char *grown;

    if (buf->failed)
        return NULL;
    if (buf->cap - buf->len >= n)
        return buf->data + buf->len;
    cap = buf->cap ? buf->cap : 256;
    while (cap - buf->len < n) {
        if (cap > SIZE_MAX / 2)
            goto fail;
        cap *= 2;
    }
    grown = realloc(buf->data, cap);
    if (!grown)
        goto fail;
    buf->data = grown;
    buf->cap = cap;
    return buf->data + buf->len;
fail:
    buf->failed = true;
    return NULL;
}

void resp_buf_consume(struct resp_buf *buf, size_t n)
{
    if (n >= buf->len) {
        buf->len = 0;
        return;
    }
    memmove(buf->data, buf->data + n, buf->len - n);
    buf->len -= n;
}

void resp_buf_append(struct resp_buf *buf, const void *data, size_t len)
{
    char *room = len ? resp_buf_reserve(buf, len) : NULL;

    if (room) {
        memcpy(room, data, len);
        buf->len += len;
    }
}

/* The type byte, text with CR and LF turned into spaces, and the line end. */
static void append_line(struct resp_buf *out, char type, const char *text, size_t len)
{
    char *room = resp_buf_reserve(out, len + 3);

    if (!room)
        return;
    room[0] = type;
    for (size_t i = 0; i < len; i++)
        room[1 + i] = text[i] == '\r' || text[i] == '\n' ? ' ' : text[i];
    memcpy(room + 1 + len, "\r\n", 2);
    out->len += len + 3;
}

/* A header line: type and number ("*3\r\n", "$-1\r\n", ":42\r\n"). */
static void append_number(struct resp_buf *out, char type, long long value)
{
    char line[32];
    int n = snprintf(line, sizeof(line), "%c%lld\r\n", type, value);

    resp_buf_append(out, line, (size_t)n);
}

void resp_add_simple(struct resp_buf *out, const char *text)
{
    append_line(out, '+', text, strlen(text));
}

void resp_add_error(struct resp_buf *out, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    append_line(out, '-', text, (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
}

void resp_add_bulk(struct resp_buf *out, const void *data, size_t len)
{
    append_number(out, '$', (long long)len);
    resp_buf_append(out, data, len);
    resp_buf_append(out, "\r\n", 2);
}

void resp_add_bulk_string(struct resp_buf *out, const char *text)
{
    resp_add_bulk(out, text, strlen(text));
}

void resp_add_bulk_number(struct resp_buf *out, long long value)
{
    char text[24];
    int n = snprintf(text, sizeof(text), "%lld", value);

    resp_add_bulk(out, text, (size_t)n);
}

void resp_add_integer(struct resp_buf *out, long long value)
{
    append_number(out, ':', value);
}

void resp_add_array(struct resp_buf *out, size_t n)
{
    append_number(out, '*', (long long)n);
}

void resp_add_null_bulk(struct resp_buf *out)
{
    resp_buf_append(out, "$-1\r\n", 5);
}

void resp_add_null_array(struct resp_buf *out)
{
    resp_buf_append(out, "*-1\r\n", 5);
}
