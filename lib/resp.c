/* RESP2, the Redis protocol: an incremental request parser and the reply writers. */
#include "resp.h"

#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
    /* Too long whether its '\n' came or not: how the bytes arrive must not change the verdict. */
    if ((size_t)(cr - buf) - at > RESP_HEADER_MAX)
        return -1;
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
            OPENSSL_hexchar2int((unsigned char)line[*r + 2]) >= 0 &&
            OPENSSL_hexchar2int((unsigned char)line[*r + 3]) >= 0) {
            line[(*w)++] = (char)(OPENSSL_hexchar2int((unsigned char)line[*r + 2]) * 16 +
                                  OPENSSL_hexchar2int((unsigned char)line[*r + 3]));
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

/* --- framing -------------------------------------------------------------------------------- */

enum {
    FRAME_TYPE,    /* the type byte of the next value */
    FRAME_LINE,    /* a line's text, up to its CR */
    FRAME_LINE_LF, /* the LF after a line's CR */
    FRAME_SIGN,    /* the first character of a length: '-' or a digit */
    FRAME_DIGITS,  /* a length's digits, up to its CR */
    FRAME_NUM_LF,  /* the LF after a length's CR */
    FRAME_BULK,    /* a bulk string's payload */
    FRAME_BULK_CR, /* the CR after it */
    FRAME_BULK_LF, /* and its LF */
};

void resp_framer_init(struct resp_framer *framer)
{
    memset(framer, 0, sizeof(*framer));
}

static bool is_line_type(char c)
{
    /* simple string, error, integer; RESP3's double, null, boolean, big number */
    return c == '+' || c == '-' || c == ':' || c == ',' || c == '_' || c == '#' || c == '(';
}

static bool is_bulk_type(char c)
{
    /* bulk string; RESP3's verbatim string and blob error */
    return c == '$' || c == '=' || c == '!';
}

static bool is_aggregate_type(char c)
{
    /* array; RESP3's set, push, map and attribute */
    return c == '*' || c == '~' || c == '>' || c == '%' || c == '|';
}

/* A value (or a null, or an empty aggregate) ended. Returns true when the top-level one did. */
static bool frame_value_done(struct resp_framer *f)
{
    f->state = FRAME_TYPE;
    while (f->depth > 0) {
        if (--f->left[f->depth - 1] > 0)
            return false;
        f->depth--;
    }
    return true;
}

/*
 * A length header ended. Returns 1 when it completed the top-level value
 * (a null or an empty aggregate), 0 to go on, -EPROTO for a bad length.
 */
static int frame_header_done(struct resp_framer *f)
{
    long long n = f->negative ? -f->number : f->number;

    if (n == -1 && (f->type == '$' || f->type == '*'))
        return frame_value_done(f) ? 1 : 0; /* RESP2's null bulk string and null array */
    if (n < 0)
        return -EPROTO;
    if (is_bulk_type((char)f->type)) {
        f->bulk_left = n;
        f->state = n > 0 ? FRAME_BULK : FRAME_BULK_CR;
        return 0;
    }
    if (f->type == '%')
        n *= 2;
    else if (f->type == '|')
        n = n * 2 + 1; /* an attribute's map, then the value it describes */
    if (n == 0)
        return frame_value_done(f) ? 1 : 0;
    if (f->depth == RESP_FRAME_MAX_DEPTH)
        return -EPROTO;
    f->left[f->depth++] = n;
    f->state = FRAME_TYPE;
    return 0;
}

/* One byte of a header or line. Returns 1 when the top-level value ended, 0, or -EPROTO. */
static int frame_byte(struct resp_framer *f, char c)
{
    switch (f->state) {
    case FRAME_TYPE:
        if (f->depth == 0)
            f->first = (unsigned char)c;
        f->type = (unsigned char)c;
        f->negative = f->digits = false;
        f->number = 0;
        if (is_line_type(c))
            f->state = FRAME_LINE;
        else if (is_bulk_type(c) || is_aggregate_type(c))
            f->state = FRAME_SIGN;
        else
            return -EPROTO;
        return 0;
    case FRAME_LINE_LF:
    case FRAME_BULK_LF:
        if (c != '\n')
            return -EPROTO;
        return frame_value_done(f) ? 1 : 0;
    case FRAME_SIGN:
        f->state = FRAME_DIGITS;
        if (c == '-') {
            f->negative = true;
            return 0;
        }
        __attribute__((fallthrough)); /* the first digit */
    case FRAME_DIGITS:
        if (c == '\r' && f->digits) {
            f->state = FRAME_NUM_LF;
            return 0;
        }
        if (c < '0' || c > '9' || f->number > (INT64_MAX - 9) / 10)
            return -EPROTO;
        f->number = f->number * 10 + (c - '0');
        f->digits = true;
        return 0;
    case FRAME_NUM_LF:
        return c == '\n' ? frame_header_done(f) : -EPROTO;
    case FRAME_BULK_CR:
        if (c != '\r')
            return -EPROTO;
        f->state = FRAME_BULK_LF;
        return 0;
    default:
        return -EPROTO;
    }
}

int resp_framer_feed(struct resp_framer *f, const char *buf, size_t len, size_t *ret_used)
{
    size_t i = 0;

    while (i < len) {
        int r;

        if (f->state == FRAME_BULK) {
            size_t take = (size_t)f->bulk_left < len - i ? (size_t)f->bulk_left : len - i;

            i += take;
            f->bulk_left -= (long long)take;
            if (f->bulk_left == 0)
                f->state = FRAME_BULK_CR;
            continue;
        }
        if (f->state == FRAME_LINE) {
            const char *cr = memchr(buf + i, '\r', len - i);

            if (!cr) {
                i = len;
                continue;
            }
            i = (size_t)(cr - buf) + 1;
            f->state = FRAME_LINE_LF;
            continue;
        }
        r = frame_byte(f, buf[i++]);
        if (r < 0)
            return r;
        if (r == 1) {
            *ret_used = i;
            return 1;
        }
    }
    *ret_used = len;
    return 0;
}

void resp_request_framer_init(struct resp_request_framer *framer)
{
    memset(framer, 0, sizeof(*framer));
    framer->argc = -1;
}

/*
 * Lower-cases text[0, len) into out (of size) when it fits; "" when it does not. Only the text
 * before a NUL byte counts: Redis finds a command by a hash of the whole name but compares the
 * names in its bucket with strcasecmp(), so "config\0<anything>" runs as CONFIG whenever its hash
 * falls in CONFIG's bucket (one try in a few hundred), and must not pass as a name too long.
 */
static void lower_copy(char *out, size_t size, const char *text, size_t len)
{
    const char *nul = memchr(text, '\0', len);

    if (nul)
        len = (size_t)(nul - text);
    if (len >= size) {
        out[0] = '\0';
        return;
    }
    for (size_t i = 0; i < len; i++)
        out[i] = (char)(text[i] >= 'A' && text[i] <= 'Z' ? text[i] + ('a' - 'A') : text[i]);
    out[len] = '\0';
}

/*
 * A "<type><digits>\r\n" header at buf + at. Returns its length with
 * *ret_value, 0 when incomplete, -EPROTO when it is not one.
 */
static int frame_header(const char *buf, size_t len, size_t at, char type, long long *ret_value)
{
    size_t avail = len - at, end;
    const char *cr;

    if (avail == 0)
        return 0;
    if (buf[at] != type)
        return -EPROTO;
    cr = memchr(buf + at, '\r', avail < RESP_HEADER_MAX ? avail : RESP_HEADER_MAX);
    if (!cr)
        return avail < RESP_HEADER_MAX ? 0 : -EPROTO;
    end = (size_t)(cr - buf);
    if (end + 1 >= len)
        return 0;
    if (buf[end + 1] != '\n' || !parse_number(buf + at + 1, end - at - 1, ret_value))
        return -EPROTO;
    return (int)(end + 2 - at);
}

int resp_frame_request(struct resp_request_framer *f, const char *buf, size_t len, size_t max_len,
                       struct resp_request_info *ret_info, size_t *ret_used)
{
    long long value;
    int n;

    if (f->argc < 0) {
        n = frame_header(buf, len, 0, '*', &value);
        if (n <= 0)
            return n;
        /* At least "$0\r\n\r\n" an argument: a count beyond what max_len holds is too big. */
        if (value > (long long)(max_len / 6))
            return -E2BIG;
        memset(&f->info, 0, sizeof(f->info));
        f->argc = value > 0 ? value : 0; /* Redis ignores "*0" and "*-1" */
        f->index = 0;
        f->pos = (size_t)n;
    }
    while (f->index < f->argc) {
        size_t start;

        n = frame_header(buf, len, f->pos, '$', &value);
        if (n <= 0)
            return n;
        if (value < 0)
            return -EPROTO;
        if ((unsigned long long)value > max_len || f->pos + (size_t)n + (size_t)value + 2 > max_len)
            return -E2BIG;
        start = f->pos + (size_t)n;
        if (len < start + (size_t)value + 2)
            return 0;
        if (buf[start + value] != '\r' || buf[start + value + 1] != '\n')
            return -EPROTO;
        if (f->index == 0)
            lower_copy(f->info.name, sizeof(f->info.name), buf + start, (size_t)value);
        if (f->index == 1)
            lower_copy(f->info.sub, sizeof(f->info.sub), buf + start, (size_t)value);
        if (f->index > 0 && value == 5 && strncasecmp(buf + start, "block", 5) == 0)
            f->info.has_block = true;
        f->pos = start + (size_t)value + 2;
        f->index++;
    }
    f->info.argc = (size_t)f->argc;
    *ret_info = f->info;
    *ret_used = f->pos;
    resp_request_framer_init(f);
    return 1;
}

/* --- scanning a request stream -------------------------------------------------------------- */

enum {
    SCAN_START,     /* the first byte of a request */
    SCAN_COUNT,     /* an array's "*<count>", up to its CR */
    SCAN_COUNT_LF,  /* the byte after that CR, whatever it is (as Redis skips it) */
    SCAN_DOLLAR,    /* the '$' of an argument */
    SCAN_LEN,       /* its length, up to the CR */
    SCAN_LEN_LF,    /* the byte after that CR */
    SCAN_DATA,      /* the argument and its two trailing bytes */
    SCAN_IL_LEAD,   /* inline: blanks before the first word */
    SCAN_IL_WORD,   /* a word outside quotes */
    SCAN_IL_DQ,     /* inside double quotes */
    SCAN_IL_DQ_ESC, /* after a backslash there */
    SCAN_IL_DQ_X,   /* after "\x": maybe a hex escape */
    SCAN_IL_DQ_X1,  /* after "\x" and one hex digit */
    SCAN_IL_SQ,     /* inside single quotes */
    SCAN_IL_SQ_ESC, /* after a backslash there */
    SCAN_IL_CLOSED, /* after a closing quote: a blank or the end must follow */
    SCAN_IL_BLANK,  /* blanks after the name, before the subcommand */
    SCAN_IL_REST,   /* the rest of the line, once the head is known */
    SCAN_PASS_ALL,  /* after garbage: everything passes */
    SCAN_DROP_ALL,  /* after garbage inside a refused request: everything is dropped */
};

/* What one byte did. */
enum {
    STEP_OK,
    STEP_HEAD,    /* the head is known (the request may have ended too: state SCAN_START) */
    STEP_END,     /* the request ended without a head (an empty one) */
    STEP_GARBAGE, /* the byte was not taken */
};

void resp_scanner_init(struct resp_scanner *s)
{
    memset(s, 0, sizeof(*s));
    s->state = SCAN_START;
}

/* A blank of sdssplitargs() between words (isspace() in the C locale); LF ends the line instead. */
static bool scan_blank(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static void word_begin(struct resp_scanner *s)
{
    s->word_active = true;
    s->word_len = 0;
    s->word_nul = s->word_long = false;
}

/*
 * Adds one byte of the argument. Returns true when its text as the server compares it is
 * complete: a NUL byte ended it, or it is longer than any name.
 */
static bool word_add(struct resp_scanner *s, unsigned char c)
{
    if (c == '\0') {
        s->word_nul = true;
        return true;
    }
    if (s->word_len == sizeof(s->word) - 1) {
        s->word_long = true;
        return true;
    }
    s->word[s->word_len++] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    return false;
}

static int head(struct resp_scanner *s, size_t argc)
{
    s->decided = true;
    s->word_active = false;
    if (s->info.argc == 0)
        s->info.argc = argc;
    return STEP_HEAD;
}

/*
 * The name or subcommand is complete; last: no argument follows. Returns STEP_HEAD, or STEP_OK
 * when the name is known and the subcommand is awaited.
 */
static int word_done(struct resp_scanner *s, bool last)
{
    char *out = s->index == 0 ? s->info.name : s->info.sub;

    s->word[s->word_len] = '\0';
    memcpy(out, s->word_long ? "" : s->word, s->word_long ? 1 : s->word_len + 1);
    s->word_active = false;
    if (s->index > 0 || s->word_long || last)
        return head(s, s->index + 1);
    if (s->word_nul) {
        /* What follows a NUL inside the name is part of it: the subcommand may be far away. */
        s->sub_unknown = true;
        return head(s, 1);
    }
    s->index = 1;
    return STEP_OK;
}

/* Starts reading a number of a header (after its '*' or '$'). */
static void number_begin(struct resp_scanner *s, unsigned char state)
{
    s->state = state;
    s->negative = false;
    s->digits = 0;
    s->number = 0;
}

/*
 * One byte of a header's number: 1 at its CR, 0 to go on, -1 for a byte Redis's string2ll()
 * refuses (it takes at most 19 digits and a sign; a bulk length takes no sign).
 */
static int number_byte(struct resp_scanner *s, unsigned char c, bool sign_allowed)
{
    if (c == '\r')
        return s->digits > 0 ? 1 : -1;
    if (c == '-' && sign_allowed && !s->negative && s->digits == 0) {
        s->negative = true;
        return 0;
    }
    if (c < '0' || c > '9' || s->number > (LLONG_MAX - (c - '0')) / 10)
        return -1;
    s->number = s->number * 10 + (c - '0');
    s->digits++;
    return 0;
}

static int step_array(struct resp_scanner *s, unsigned char c)
{
    int r;

    switch (s->state) {
    case SCAN_COUNT:
        r = number_byte(s, c, true);
        if (r < 0)
            return STEP_GARBAGE;
        if (r > 0)
            s->state = SCAN_COUNT_LF;
        return STEP_OK;
    case SCAN_COUNT_LF:
        if (!s->negative && s->number > INT32_MAX)
            return STEP_GARBAGE; /* Redis: invalid multibulk length */
        if (s->negative || s->number == 0) {
            s->state = SCAN_START; /* "*0", "*-1": an empty request, which Redis skips */
            return STEP_END;
        }
        s->args_left = s->number;
        s->info.argc = (size_t)s->number;
        s->state = SCAN_DOLLAR;
        return STEP_OK;
    case SCAN_DOLLAR:
        if (c != '$')
            return STEP_GARBAGE;
        number_begin(s, SCAN_LEN);
        return STEP_OK;
    case SCAN_LEN:
        r = number_byte(s, c, false);
        if (r < 0 || (r > 0 && s->number > LLONG_MAX - 2))
            return STEP_GARBAGE;
        if (r > 0)
            s->state = SCAN_LEN_LF;
        return STEP_OK;
    case SCAN_LEN_LF:
        s->args_left--;
        s->bulk_left = s->number + 2;
        s->state = SCAN_DATA;
        if (s->decided)
            return STEP_OK;
        word_begin(s);
        return s->number == 0 ? word_done(s, s->args_left == 0) : STEP_OK;
    case SCAN_DATA:
        s->bulk_left--;
        if (s->word_active && s->bulk_left >= 2) {
            if (word_add(s, c) || s->bulk_left == 2)
                r = word_done(s, s->args_left == 0);
            else
                r = STEP_OK;
            if (r == STEP_HEAD)
                return r;
        } else if (s->bulk_left == 0) {
            if (s->args_left == 0) {
                s->state = SCAN_START;
                return s->decided ? STEP_OK : STEP_END;
            }
            s->state = SCAN_DOLLAR;
        }
        return STEP_OK;
    default:
        return STEP_GARBAGE;
    }
}

/* Once the head is known mid-line: c was its last byte; the line may have ended with it. */
static int head_in_line(struct resp_scanner *s, unsigned char c, int r)
{
    if (r == STEP_HEAD)
        s->state = c == '\n' ? SCAN_START : SCAN_IL_REST;
    return r;
}

/* One decoded byte of a quoted word. */
static int quoted_add(struct resp_scanner *s, unsigned char c)
{
    if (s->word_active && word_add(s, c))
        return word_done(s, false);
    return STEP_OK;
}

/*
 * A word ended at c (a blank, LF, or a NUL byte, after which sdssplitargs() reads no more
 * arguments; Redis itself never finds the line's end past a NUL, so nothing of it runs).
 */
static int word_end(struct resp_scanner *s, unsigned char c)
{
    bool last = c == '\n' || c == '\0';
    int r = s->word_active ? word_done(s, last) : STEP_OK;

    if (r == STEP_HEAD)
        return head_in_line(s, c, r);
    s->state = SCAN_IL_BLANK; /* c is the first blank of the run, kept */
    return r;
}

static int step_inline(struct resp_scanner *s, unsigned char c);

static int step_dq(struct resp_scanner *s, unsigned char c)
{
    int r;

    switch (c) {
    case '\\':
        s->state = SCAN_IL_DQ_ESC;
        return STEP_OK;
    case '"':
        s->state = SCAN_IL_CLOSED;
        return STEP_OK;
    case '\n':
    case '\0':
        return STEP_GARBAGE; /* unbalanced quotes */
    default:
        r = quoted_add(s, c);
        return head_in_line(s, c, r);
    }
}

static int step_sq(struct resp_scanner *s, unsigned char c)
{
    switch (c) {
    case '\\':
        s->state = SCAN_IL_SQ_ESC;
        return STEP_OK;
    case '\'':
        s->state = SCAN_IL_CLOSED;
        return STEP_OK;
    case '\n':
    case '\0':
        return STEP_GARBAGE;
    default:
        return head_in_line(s, c, quoted_add(s, c));
    }
}

/* Adds the bytes a failed escape stands for, then reads c again in its quotes. */
static int escape_fallback(struct resp_scanner *s, const char *bytes, size_t n, unsigned char c,
                           bool double_quotes)
{
    for (size_t i = 0; i < n; i++) {
        int r = quoted_add(s, (unsigned char)bytes[i]);

        if (r == STEP_HEAD)
            return head_in_line(s, c, r);
    }
    s->state = double_quotes ? SCAN_IL_DQ : SCAN_IL_SQ;
    return double_quotes ? step_dq(s, c) : step_sq(s, c);
}

static int step_inline(struct resp_scanner *s, unsigned char c)
{
    char pending[2];

    switch (s->state) {
    case SCAN_IL_LEAD:
    case SCAN_IL_BLANK:
        if (c == '\n' || c == '\0') {
            if (s->state == SCAN_IL_LEAD && c == '\n') {
                s->state = SCAN_START;
                return STEP_END; /* an empty line */
            }
            if (s->state == SCAN_IL_LEAD) {
                /* No argument before the NUL: nothing of the line can run, so nothing waits. */
                s->decided = true;
                s->state = SCAN_IL_REST;
                return STEP_OK;
            }
            return head_in_line(s, c, head(s, 1));
        }
        if (scan_blank(c))
            return STEP_OK;
        if (s->state == SCAN_IL_LEAD)
            s->index = 0;
        word_begin(s);
        s->state = SCAN_IL_WORD;
        __attribute__((fallthrough));
    case SCAN_IL_WORD:
        switch (c) {
        case ' ':
        case '\t':
        case '\r':
        case '\n':
        case '\0':
            return word_end(s, c);
        case '"':
            s->state = SCAN_IL_DQ;
            return STEP_OK;
        case '\'':
            s->state = SCAN_IL_SQ;
            return STEP_OK;
        default:
            return head_in_line(s, c, quoted_add(s, c));
        }
    case SCAN_IL_DQ:
        return step_dq(s, c);
    case SCAN_IL_DQ_ESC:
        if (c == '\n' || c == '\0')
            return STEP_GARBAGE;
        if (c == 'x') {
            s->state = SCAN_IL_DQ_X;
            return STEP_OK;
        }
        s->state = SCAN_IL_DQ;
        return head_in_line(s, c, quoted_add(s, (unsigned char)unescape((char)c)));
    case SCAN_IL_DQ_X:
        if (OPENSSL_hexchar2int(c) >= 0) {
            s->hex = c;
            s->state = SCAN_IL_DQ_X1;
            return STEP_OK;
        }
        return escape_fallback(s, "x", 1, c, true); /* "\x" then not hex: an 'x' */
    case SCAN_IL_DQ_X1:
        if (OPENSSL_hexchar2int(c) >= 0) {
            s->state = SCAN_IL_DQ;
            return head_in_line(s, c,
                                quoted_add(s, (unsigned char)(OPENSSL_hexchar2int(s->hex) * 16 +
                                                              OPENSSL_hexchar2int(c))));
        }
        pending[0] = 'x';
        pending[1] = (char)s->hex;
        return escape_fallback(s, pending, 2, c, true);
    case SCAN_IL_SQ:
        return step_sq(s, c);
    case SCAN_IL_SQ_ESC:
        if (c == '\'') {
            s->state = SCAN_IL_SQ;
            return head_in_line(s, c, quoted_add(s, '\''));
        }
        return escape_fallback(s, "\\", 1, c, false);
    case SCAN_IL_CLOSED:
        /* A closing quote must be followed by a blank or the end of the line (or a NUL). */
        if (c == '\n' || c == '\0' || scan_blank(c))
            return word_end(s, c);
        return STEP_GARBAGE;
    case SCAN_IL_REST:
        if (c == '\n') {
            s->state = SCAN_START;
            return s->decided ? STEP_OK : STEP_END;
        }
        return STEP_OK;
    default:
        return STEP_GARBAGE;
    }
}

/* One byte; the caller has handled the states that take runs of bytes at once. */
static int scan_step(struct resp_scanner *s, unsigned char c)
{
    if (s->state == SCAN_START) {
        memset(&s->info, 0, sizeof(s->info));
        s->index = 0;
        s->decided = s->sub_unknown = s->word_active = false;
        /* As Redis: a request that starts with '*' is an array, anything else an inline line. */
        if (c == '*') {
            number_begin(s, SCAN_COUNT);
            return STEP_OK;
        }
        s->state = SCAN_IL_LEAD;
        if (scan_blank(c))
            return STEP_OK;
    }
    if (s->state >= SCAN_IL_LEAD)
        return step_inline(s, c);
    return step_array(s, c);
}

/* A blank that the held head of an inline command does not need: a run is kept as its first. */
static bool squeezable(const struct resp_scanner *s, unsigned char c)
{
    return (s->state == SCAN_IL_LEAD || s->state == SCAN_IL_BLANK) && scan_blank(c);
}

/*
 * Bytes of the current state that need no look one at a time: an argument's payload once its
 * head is known (the last byte excepted, which may end the request), and an inline line's rest
 * up to its LF. Returns how many of buf[0, len) it took.
 */
static size_t scan_run(struct resp_scanner *s, const char *buf, size_t len)
{
    if (s->state == SCAN_DATA && !s->word_active && s->bulk_left > 1) {
        size_t take =
            (unsigned long long)(s->bulk_left - 1) < len ? (size_t)(s->bulk_left - 1) : len;

        s->bulk_left -= (long long)take;
        return take;
    }
    if (s->state == SCAN_IL_REST) {
        const char *nl = memchr(buf, '\n', len);

        return nl ? (size_t)(nl - buf) : len;
    }
    return 0;
}

int resp_scan(struct resp_scanner *s, const char *buf, size_t len, size_t *ret_used)
{
    bool drop = s->skipping;
    size_t i = 0;

    if (s->state == SCAN_PASS_ALL || s->state == SCAN_DROP_ALL) {
        *ret_used = len;
        return s->state == SCAN_PASS_ALL ? RESP_SCAN_PASS : RESP_SCAN_DROP;
    }
    if (!drop && squeezable(s, (unsigned char)buf[0])) {
        while (i < len && squeezable(s, (unsigned char)buf[i]))
            i++;
        *ret_used = i;
        return RESP_SCAN_DROP;
    }
    while (i < len) {
        size_t run = scan_run(s, buf + i, len - i);
        int r;

        if (run > 0) {
            if (!drop && !s->decided)
                s->held += run;
            i += run;
            continue;
        }
        if (!drop && squeezable(s, (unsigned char)buf[i]))
            break; /* the next call drops them */
        r = scan_step(s, (unsigned char)buf[i]);
        if (r == STEP_GARBAGE) {
            if (i > 0)
                break; /* the bytes before it first; the next call reports it */
            s->state = drop ? SCAN_DROP_ALL : SCAN_PASS_ALL;
            s->held = 0;
            s->skipping = false;
            *ret_used = 0;
            return -EPROTO;
        }
        i++;
        if (r == STEP_HEAD) {
            s->refusable = s->held + 1;
            s->held = 0;
            *ret_used = i;
            return RESP_SCAN_HEAD;
        }
        if (!drop)
            s->held = s->decided ? 0 : s->held + 1;
        if (s->state == SCAN_START) {
            /* The request ended: what was held of it (an empty one) goes on. */
            s->held = 0;
            if (drop) {
                s->skipping = false;
                break;
            }
        }
    }
    *ret_used = i;
    return drop ? RESP_SCAN_DROP : RESP_SCAN_PASS;
}

size_t resp_scan_refuse(struct resp_scanner *s)
{
    size_t n = s->refusable;

    s->refusable = 0;
    s->held = 0;
    s->skipping = s->state != SCAN_START;
    return n;
}
