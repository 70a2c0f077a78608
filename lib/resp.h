/* RESP2, the Redis protocol: requests as a server reads them, replies as a server writes them. */
#ifndef CERTVISOR_RESP_H
#define CERTVISOR_RESP_H

#include <stdbool.h>
#include <stddef.h>

/* The most arguments (the command's name included) a request can hold. */
#define RESP_MAX_ARGS 64

/* One argument: len bytes at data, followed by a NUL byte that len does not count. */
struct resp_arg {
    const char *data;
    size_t len;
};

struct resp_request {
    size_t argc; /* 0 for an empty request (a blank line, "*0"): nothing to answer */
    struct resp_arg argv[RESP_MAX_ARGS];
};

/* What a server accepts in one request; a request beyond them is a protocol error. */
struct resp_limits {
    size_t max_args;   /* arguments, the name included; at most RESP_MAX_ARGS */
    size_t max_bulk;   /* bytes in one argument of an array request */
    size_t max_inline; /* bytes in one inline request line ("PING\r\n", as telnet sends) */
};

/*
 * An incremental request parser. It remembers how far it got into the request
 * at the start of the caller's buffer, so bytes that arrive one at a time cost
 * no rescanning. Only resp_parser_init and resp_parse_request touch its
 * fields; it holds no resources, so it needs no cleanup.
 */
struct resp_parser {
    struct resp_limits limits;
    size_t pos;      /* bytes of the current request parsed so far */
    long long count; /* array request: arguments announced; -1 before the header */
    size_t offsets[RESP_MAX_ARGS];
    struct resp_request req;
};

void resp_parser_init(struct resp_parser *parser, const struct resp_limits *limits);

/*
 * Parses the request at the start of buf[0, len): an array of bulk strings
 * ("*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n", as client libraries send) or an inline
 * line of words, with Redis's double and single quotes and escapes.
 *
 * Returns 1 with *ret_request (held by the parser until its next call; argv
 * pointing into buf) and *ret_used, the bytes the request took: the caller
 * answers it, then drops those bytes from the front of its buffer before the
 * next call. Returns 0 when the request is not complete: call again once more
 * bytes have arrived, with buf holding the same bytes followed by the new ones
 * (buf may have moved). Returns -EPROTO with Redis's wording in err ("Protocol
 * error: invalid bulk length") for a malformed request or one over a limit:
 * reply with it and close, as Redis does.
 *
 * buf must be writable: arguments are unquoted in place and NUL-terminated.
 */
int resp_parse_request(struct resp_parser *parser, char *buf, size_t len,
                       const struct resp_request **ret_request, size_t *ret_used, char *err,
                       size_t err_len);

/*
 * A growable byte buffer for replies (and a connection's input). A failed
 * allocation sets failed and makes every later append a no-op, so that a
 * reply is built without checks and the caller looks once, at the end.
 * A zeroed resp_buf is empty and ready.
 */
struct resp_buf {
    char *data;
    size_t len, cap;
    bool failed;
};

void resp_buf_free(struct resp_buf *buf);

/* Returns room for at least n more bytes at data + len (NULL: no memory). Add them to len. */
char *resp_buf_reserve(struct resp_buf *buf, size_t n);

/* Appends len bytes as they are (a protocol's own bytes, not a reply). */
void resp_buf_append(struct resp_buf *buf, const void *data, size_t len);

/* Drops the first n bytes. */
void resp_buf_consume(struct resp_buf *buf, size_t n);

/*
 * The replies. Simple strings and errors can hold no line break: CR and LF in
 * them become spaces (as Redis does), so no text can end a reply early. An
 * error's text starts with its code: resp_add_error(out, "ERR no such key").
 */
void resp_add_simple(struct resp_buf *out, const char *text);
void resp_add_error(struct resp_buf *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void resp_add_bulk(struct resp_buf *out, const void *data, size_t len);
void resp_add_bulk_string(struct resp_buf *out, const char *text);
void resp_add_bulk_number(struct resp_buf *out, long long value); /* "$2\r\n42\r\n" */
void resp_add_integer(struct resp_buf *out, long long value);     /* ":42\r\n" */
void resp_add_array(struct resp_buf *out, size_t n);              /* then its n elements */
void resp_add_null_bulk(struct resp_buf *out);                    /* "$-1\r\n" */
void resp_add_null_array(struct resp_buf *out);                   /* "*-1\r\n" */

/*
 * Framing, as a proxy needs it: where one value ends in a stream of bytes,
 * without copying it or interpreting more than its headers.
 */

/* How deeply a reply's aggregates may nest (Redis's own replies go a few levels deep). */
#define RESP_FRAME_MAX_DEPTH 64

/*
 * A streaming framer of replies: RESP2 and RESP3 values of every type
 * (simple strings, errors, integers, bulk strings and arrays; RESP3's nulls,
 * booleans, doubles, big numbers, verbatim strings, blob errors, maps, sets,
 * attributes and pushes), nested. It keeps no bytes: each byte is fed once,
 * so a caller can pass a reply on while it is still arriving. A zeroed
 * framer (or resp_framer_init) is at the start of a value.
 */
struct resp_framer {
    unsigned char state;
    unsigned char type;  /* of the header being read */
    unsigned char first; /* the type byte of the value being framed (its top level) */
    bool negative, digits;
    long long number;
    long long bulk_left; /* payload bytes still to come */
    unsigned depth;
    long long left[RESP_FRAME_MAX_DEPTH]; /* elements still to come in each open aggregate */
};

void resp_framer_init(struct resp_framer *framer);

/*
 * Feeds buf[0, len). Returns 1 when a value ended: its last byte is
 * buf[*ret_used - 1], and the framer is ready for the next value. Returns 0
 * when all len bytes were taken (*ret_used = len) and the value goes on.
 * Returns -EPROTO when the bytes are not RESP (the stream cannot be framed).
 */
int resp_framer_feed(struct resp_framer *framer, const char *buf, size_t len, size_t *ret_used);

/* What a proxy needs to know of a request to route it. */
struct resp_request_info {
    size_t argc;    /* 0: an empty array, which Redis ignores (no reply) */
    char name[24];  /* the command's name in lower case; "" when longer than fits */
    char sub[24];   /* the second argument (a subcommand) in lower case; "" when none or longer */
    bool has_block; /* an argument after the name is "BLOCK" (any case) */
};

/*
 * A resumable framer of requests in a buffer the caller keeps: each argument
 * is looked at once, however many times the caller comes back with more bytes.
 * A zeroed framer (or resp_request_framer_init) is at the start of a request.
 */
struct resp_request_framer {
    size_t pos;      /* bytes of the request checked so far */
    long long argc;  /* announced; -1 before the header */
    long long index; /* arguments checked */
    struct resp_request_info info;
};

void resp_request_framer_init(struct resp_request_framer *framer);

/*
 * Frames the request at the start of buf[0, len): an array of bulk strings in
 * the canonical form client libraries send. Returns 1 with *ret_info and
 * *ret_used (the request's bytes; the framer is ready for the next request,
 * which starts at buf + *ret_used). Returns 0 when more bytes are needed
 * (call again with the same bytes and more). Returns -EPROTO when the request
 * is not such an array (an inline command, or bytes a server would refuse),
 * and -E2BIG when it announces more than max_len bytes: either way, a proxy
 * cannot frame it and must hand the bytes to the server as they are.
 */
int resp_frame_request(struct resp_request_framer *framer, const char *buf, size_t len,
                       size_t max_len, struct resp_request_info *ret_info, size_t *ret_used);

/*
 * A streaming scanner of requests, for a proxy that copies a client's bytes to the server as they
 * come (any request size, in constant memory) and must know each request's name and subcommand
 * before the request's bytes go on: arrays of bulk strings and inline commands (with Redis's
 * double and single quotes and escapes, which may start inside a word: sh"utdown" is SHUTDOWN).
 *
 * It frames as redis-server does (networking.c, sdssplitargs()): the byte after a header's CR
 * and the two after a bulk string are skipped whatever they are, a name is compared up to its
 * first NUL byte (the server's command lookup compares with strcasecmp()), and an inline line
 * ends at its first LF. Where it is more lenient (leading zeros, lengths over the server's
 * limits) the server refuses the bytes and closes the connection, so nothing it would run goes
 * unseen; bytes it calls garbage are bytes the server refuses too.
 *
 * Each call reports one run of bytes:
 * - RESP_SCAN_PASS: they may go on, except that the last s->held bytes the caller was given
 *   (the start of a request whose name is not known yet) must wait. At most a few hundred bytes
 *   are ever held: a name or subcommand longer than 23 bytes matches nothing and decides.
 * - RESP_SCAN_HEAD: they complete the head of a request: s->info has its name and subcommand
 *   (lower case; "" for a longer one; info.argc: announced for an array, the words read so far
 *   for an inline command), and s->sub_unknown says the name ended at a NUL byte, so that its
 *   subcommand could not be read (treat it as any). The held bytes are released: the request is
 *   allowed, unless the caller calls resp_scan_refuse() before the next call.
 * - RESP_SCAN_DROP: they must be removed from the stream: the rest of a refused request (however
 *   large), or blanks of an inline command that its held head does not need (a run of blanks
 *   between words is kept as its first byte, which means the same to the server).
 * - -EPROTO: the next byte is not one a server accepts there (nothing was taken). From then on
 *   every byte passes (the server answers the protocol error and closes) -- or, when it came
 *   inside a refused request, whose start the server never sees, every byte is dropped: the
 *   caller should end the stream to the server once what went before is through.
 */
enum {
    RESP_SCAN_PASS = 0,
    RESP_SCAN_HEAD = 1,
    RESP_SCAN_DROP = 2,
};

struct resp_scanner {
    unsigned char state;
    bool negative; /* a header's number */
    unsigned char digits;
    long long number;
    long long args_left; /* an array's arguments after the current one */
    long long bulk_left; /* bytes of the current argument still to come, its 2 trailing ones too */
    unsigned index;      /* the argument being read: 0 the name, 1 the subcommand */
    unsigned char hex;   /* an inline \xHH escape's first digit */
    bool word_active;    /* the name or subcommand is being read */
    bool word_nul, word_long;
    size_t word_len;
    char word[24];
    bool decided;     /* the current request's head was reported */
    bool skipping;    /* dropping the rest of a refused request */
    size_t held;      /* see RESP_SCAN_PASS */
    size_t refusable; /* what resp_scan_refuse returns */
    bool sub_unknown; /* see RESP_SCAN_HEAD */
    struct resp_request_info info;
};

void resp_scanner_init(struct resp_scanner *scanner);

/*
 * Scans buf[0, len) (len > 0), the bytes that follow what the scanner was given before. Returns
 * RESP_SCAN_PASS, RESP_SCAN_HEAD or RESP_SCAN_DROP with *ret_used (at least 1) the bytes of the
 * run, or -EPROTO with *ret_used = 0. Call again with what follows the run.
 */
int resp_scan(struct resp_scanner *scanner, const char *buf, size_t len, size_t *ret_used);

/*
 * Refuses the request whose head was just reported. Returns how many of the last bytes the
 * caller was given belong to it (the head and what was held before it), to be removed; the
 * rest of the request comes as RESP_SCAN_DROP. The request's bytes are always all held until
 * its head is known, so nothing of it has gone on.
 */
size_t resp_scan_refuse(struct resp_scanner *scanner);

#endif
