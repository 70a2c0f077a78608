/*
 * Fuzzes the streaming request scanner (lib/resp.c, resp_scan) the proxy's pinned path filters a
 * client's bytes with: SHUTDOWN, DEBUG and CONFIG SET are refused, as the proxy refuses them.
 *
 * The input's first byte chooses the size of the pieces the rest arrives in. Checked: the stream
 * that comes out is the same whole and in pieces; the scanner never makes its caller hold more
 * than a request's head; a run is never empty and garbage is reported once; and what comes out,
 * scanned again (a refused request replaced by a harmless one), holds no refused request: nothing
 * the scanner let through could run as one.
 */
#include "fuzz_util.h"
#include "resp.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define HELD_MAX 256
/* In place of a refused request, as the proxy sends its error in the request's place. */
#define REPLACEMENT "*1\r\n$4\r\nECHO\r\n"

struct bytes {
    char *data;
    size_t len;
};

static void add(struct bytes *b, const char *data, size_t n)
{
    char *grown;

    if (n == 0)
        return;
    grown = realloc(b->data, b->len + n + 1);

    FUZZ_CHECK(grown);
    b->data = grown;
    memcpy(b->data + b->len, data, n);
    b->len += n;
}

static bool refused(const struct resp_scanner *s)
{
    const char *name = s->info.name;

    if (strcmp(name, "shutdown") == 0 || strcmp(name, "debug") == 0)
        return true;
    return strcmp(name, "config") == 0 && (s->sub_unknown || strcmp(s->info.sub, "set") == 0);
}

/*
 * Filters data as the proxy does, chunk bytes at a time (0: whole), into out. Returns how many
 * requests it refused.
 */
static size_t filter(const uint8_t *data, size_t size, size_t chunk, struct bytes *out)
{
    struct resp_scanner s;
    struct bytes pending = {0};
    size_t refusals = 0;
    bool garbage = false;

    resp_scanner_init(&s);
    for (size_t at = 0; at < size;) {
        size_t n = chunk && chunk < size - at ? chunk : size - at, pos = 0;

        while (pos < n) {
            size_t used = 0;
            int r = resp_scan(&s, (const char *)data + at + pos, n - pos, &used);

            if (r == -EPROTO) {
                FUZZ_CHECK(!garbage && used == 0);
                garbage = true;
                continue;
            }
            FUZZ_CHECK(r == RESP_SCAN_PASS || r == RESP_SCAN_HEAD || r == RESP_SCAN_DROP);
            FUZZ_CHECK(used >= 1 && used <= n - pos);
            if (r != RESP_SCAN_DROP)
                add(&pending, (const char *)data + at + pos, used);
            pos += used;
            if (r == RESP_SCAN_HEAD && refused(&s)) {
                size_t gone = resp_scan_refuse(&s);

                FUZZ_CHECK(gone <= pending.len);
                add(out, pending.data, pending.len - gone);
                add(out, REPLACEMENT, strlen(REPLACEMENT));
                pending.len = 0;
                refusals++;
            }
            FUZZ_CHECK(s.held <= pending.len && s.held <= HELD_MAX);
            add(out, pending.data, pending.len - s.held);
            memmove(pending.data, pending.data + pending.len - s.held, s.held);
            pending.len = s.held;
        }
        at += n;
    }
    free(pending.data);
    return refusals;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bytes whole = {0}, pieces = {0}, again = {0};
    size_t chunk, refusals;

    if (size < 1)
        return 0;
    chunk = (size_t)(data[0] % 16) + 1;
    data++;
    size--;
    refusals = filter(data, size, 0, &whole);
    FUZZ_CHECK(filter(data, size, chunk, &pieces) == refusals);
    FUZZ_CHECK(whole.len == pieces.len &&
               (whole.len == 0 || memcmp(whole.data, pieces.data, whole.len) == 0));
    /* What went on refuses nothing more, however it is split again. */
    FUZZ_CHECK(filter((const uint8_t *)whole.data, whole.len, chunk, &again) == 0);
    FUZZ_CHECK(again.len == whole.len &&
               (whole.len == 0 || memcmp(again.data, whole.data, whole.len) == 0));
    free(whole.data);
    free(pieces.data);
    free(again.data);
    return 0;
}
