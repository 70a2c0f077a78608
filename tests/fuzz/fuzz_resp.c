/*
 * Fuzzes RESP: the request parser the services' Redis-protocol endpoints read clients with, the
 * request framer and reply framer the proxy forwards with, and the reply writers.
 *
 * Each parser reads the input twice, whole and in pieces of a size the input's first byte
 * chooses (as bytes arrive from a socket), and must see the same requests both times.
 */
#include "fuzz_util.h"
#include "resp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_RESP_MAX_EVENTS 4096

static const struct resp_limits limits = {.max_args = 16, .max_bulk = 512, .max_inline = 256};

/* What a reader saw, in order, to compare one way of feeding with another. */
struct transcript {
    size_t n;
    unsigned long long events[FUZZ_RESP_MAX_EVENTS];
};

static void note(struct transcript *t, unsigned long long event)
{
    if (t->n < FUZZ_RESP_MAX_EVENTS)
        t->events[t->n++] = event;
}

static unsigned long long hash(const void *data, size_t len, unsigned long long h)
{
    for (size_t i = 0; i < len; i++)
        h = (h ^ ((const unsigned char *)data)[i]) * 1099511628211ULL;
    return h;
}

static bool same(const struct transcript *a, const struct transcript *b)
{
    return a->n == b->n && memcmp(a->events, b->events, a->n * sizeof(a->events[0])) == 0;
}

/* A parsed request written back as a reply must frame as exactly one value. */
static void check_reply_of(const struct resp_request *req)
{
    struct resp_buf out = {0};
    struct resp_framer framer;
    size_t used = 0;

    resp_add_array(&out, req->argc);
    for (size_t i = 0; i < req->argc; i++)
        resp_add_bulk(&out, req->argv[i].data, req->argv[i].len);
    if (req->argc) {
        resp_add_simple(&out, req->argv[0].data); /* CR and LF become spaces */
        resp_add_error(&out, "ERR unknown command '%s'", req->argv[0].data);
    }
    resp_add_integer(&out, (long long)req->argc);
    resp_add_null_bulk(&out);
    FUZZ_CHECK(!out.failed);
    resp_framer_init(&framer);
    for (int values = req->argc ? 5 : 3; values > 0; values--) {
        FUZZ_CHECK(resp_framer_feed(&framer, out.data, out.len, &used) == 1);
        resp_buf_consume(&out, used);
    }
    FUZZ_CHECK(out.len == 0);
    resp_buf_free(&out);
}

/*
 * Runs the request parser over the input, chunk bytes arriving at a time (0: all at once), in a
 * buffer grown to exactly what has arrived, so that ASan sees any read past it.
 */
static void parse_requests(const uint8_t *data, size_t size, size_t chunk, struct transcript *t)
{
    struct resp_parser parser;
    char *buf = NULL, err[256];
    size_t len = 0, fed = 0;

    resp_parser_init(&parser, &limits);
    while (fed < size || len > 0) {
        const struct resp_request *req = NULL;
        size_t used = 0, take = chunk && chunk < size - fed ? chunk : size - fed;
        int r;

        if (take > 0) {
            char *grown = realloc(buf, len + take);

            FUZZ_CHECK(grown);
            buf = grown;
            memcpy(buf + len, data + fed, take);
            len += take;
            fed += take;
        }
        r = resp_parse_request(&parser, buf, len, &req, &used, err, sizeof(err));
        if (r < 0) {
            FUZZ_CHECK(r == -EPROTO && strncmp(err, "Protocol error", 14) == 0);
            note(t, 0xe0e0);
            break;
        }
        if (r == 0) {
            if (fed == size)
                break; /* incomplete, and nothing more comes */
            continue;
        }
        FUZZ_CHECK(used >= 1 && used <= len && req->argc <= limits.max_args);
        note(t, used);
        for (size_t i = 0; i < req->argc; i++) {
            FUZZ_CHECK(req->argv[i].data >= buf &&
                       req->argv[i].data + req->argv[i].len < buf + len);
            FUZZ_CHECK(req->argv[i].data[req->argv[i].len] == '\0');
            note(t, hash(req->argv[i].data, req->argv[i].len, 14695981039346656037ULL));
        }
        check_reply_of(req);
        memmove(buf, buf + used, len - used);
        len -= used;
    }
    free(buf);
}

/* Frames replies in pieces of chunk bytes (0: all at once); the framer sees each byte once. */
static void frame_replies(const uint8_t *data, size_t size, size_t chunk, struct transcript *t)
{
    struct resp_framer framer;
    size_t pos = 0;

    resp_framer_init(&framer);
    while (pos < size) {
        size_t n = chunk && chunk < size - pos ? chunk : size - pos, used = 0;
        int r = resp_framer_feed(&framer, (const char *)data + pos, n, &used);

        if (r < 0) {
            FUZZ_CHECK(r == -EPROTO);
            note(t, 0xe0e0);
            return;
        }
        FUZZ_CHECK(used >= (r == 1 ? 1 : n) && used <= n);
        pos += used;
        if (r == 1)
            note(t, pos);
    }
}

/* Frames requests in a buffer that grows chunk bytes at a time (0: all at once), as the proxy. */
static void frame_requests(const uint8_t *data, size_t size, size_t chunk, struct transcript *t)
{
    struct resp_request_framer framer;
    size_t start = 0, avail = 0;

    resp_request_framer_init(&framer);
    while (start < size) {
        struct resp_request_info info;
        size_t used = 0;
        int r;

        avail = chunk && avail + chunk < size - start ? avail + chunk : size - start;
        r = resp_frame_request(&framer, (const char *)data + start, avail, 4096, &info, &used);
        if (r < 0) {
            FUZZ_CHECK(r == -EPROTO || r == -E2BIG);
            note(t, (unsigned long long)-r);
            return;
        }
        if (r == 1) {
            FUZZ_CHECK(used >= 1 && used <= avail && strlen(info.name) < sizeof(info.name));
            note(t, hash(info.name, strlen(info.name), info.argc * 2 + info.has_block));
            note(t, start + used);
            start += used;
            avail = 0;
        } else if (start + avail == size) {
            return;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct transcript whole, pieces;
    size_t chunk;

    if (size < 1)
        return 0;
    chunk = (size_t)(data[0] % 16) + 1;
    data++;
    size--;
    whole.n = pieces.n = 0;
    parse_requests(data, size, 0, &whole);
    parse_requests(data, size, chunk, &pieces);
    FUZZ_CHECK(same(&whole, &pieces));
    whole.n = pieces.n = 0;
    frame_replies(data, size, 0, &whole);
    frame_replies(data, size, chunk, &pieces);
    FUZZ_CHECK(same(&whole, &pieces));
    whole.n = pieces.n = 0;
    frame_requests(data, size, 0, &whole);
    frame_requests(data, size, chunk, &pieces);
    FUZZ_CHECK(same(&whole, &pieces));
    return 0;
}
