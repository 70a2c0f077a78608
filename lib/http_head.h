/* The HTTP/1.x message head: finding its end, splitting its lines, reading its start line. */
#ifndef CERTVISOR_HTTP_HEAD_H
#define CERTVISOR_HTTP_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * One parser for both directions: the HTTP server (lib/http_server.c) reads
 * requests with it and the console's client of the REST API
 * (services/cm/upstream.c) reads answers. It parses in place and allocates
 * nothing: the caller copies the head out of its input buffer (which may move
 * as a body is read after it), bounds its size with http_head_length()'s
 * limit, and gives the array the header fields go into, which bounds their
 * count. Every string it hands back points into that copy.
 *
 * Errors (negative, errno style):
 *   -EBADMSG          malformed: a bad start line (one with a control character
 *                     other than a tab is refused by http_head_parse() already), a
 *                     header line without a colon
 *                     or with a name that is not a token, a folded line, a control
 *                     character in a value, a NUL anywhere, a bad Content-Length
 *   -E2BIG            more header lines than the array holds
 *   -EPROTONOSUPPORT  an HTTP version other than 1.0 and 1.1
 */

struct http_header {
    const char *name;  /* as sent (compare without case) */
    const char *value; /* without the blanks around it; may be "" */
};

/* The head, split: a start line and its header fields. */
struct http_head {
    char *start_line; /* the request line or the status line, without its CR LF */
    struct http_header *headers;
    unsigned n_headers;
};

/* A request line: "GET /path?query HTTP/1.1". */
struct http_request_line {
    const char *method;
    const char *path;  /* the target up to '?' (starts with '/'; percent-encoding kept) */
    const char *query; /* after '?', or "" */
    int minor_version; /* 0 or 1 */
};

/*
 * The length of the complete head at the start of buf: through the blank line
 * that ends it (CR LF CR LF, or bare LF LF as RFC 9112 2.2 tolerates); 0 while
 * that blank line has not come within the first len bytes. Callers pass
 * min(len, their size limit), so that a head is judged by its size, however
 * its bytes arrive.
 */
size_t http_head_length(const char *buf, size_t len);

/*
 * Splits a complete head (len bytes, as http_head_length() measured it) in
 * place: text must hold len + 1 bytes, and its lines are cut into strings
 * there. Header fields go into headers[0 .. max_headers). Returns 0 with
 * *ret_head, or -EBADMSG / -E2BIG (see above).
 */
int http_head_parse(char *text, size_t len, struct http_header *headers, unsigned max_headers,
                    struct http_head *ret_head);

/*
 * Reads the head's start line as a request line (method a token, target in
 * origin form, no blanks or controls in it), cutting it in place. Returns 0
 * with *ret_line, -EBADMSG, or -EPROTONOSUPPORT.
 */
int http_head_request_line(struct http_head *head, struct http_request_line *ret_line);

/*
 * Reads the head's start line as a status line ("HTTP/1.1 200 OK"; the reason
 * may be absent). Returns 0 with *ret_status (100 to 599), -EBADMSG, or
 * -EPROTONOSUPPORT.
 */
int http_head_status_line(const struct http_head *head, int *ret_status);

/* The value of the first header field of that name (any case), or NULL. */
const char *http_head_header(const struct http_head *head, const char *name);

/*
 * The Content-Length: digits only (at most 18 of them), and several fields
 * must agree (RFC 9112 6.3). Returns 1 with *ret_length, 0 when there is
 * none, or -EBADMSG.
 */
int http_head_content_length(const struct http_head *head, uint64_t *ret_length);

/* True when the comma-separated list value holds token, in any case ("Connection: x, close"). */
bool http_list_has(const char *value, const char *token);

/* True when s[0 .. len) is a non-empty RFC 9110 token: what methods and header names are. */
bool http_is_token(const char *s, size_t len);

#endif
