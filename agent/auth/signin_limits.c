/* Sign-in admission: a budget of key derivations, and lock-outs by source and by (source, name).
 *
 * Pure bookkeeping on the loop, with the clock passed in (so the unit tests
 * drive it with a fake one). Tables are fixed-size and searched linearly:
 * a few microseconds per sign-in, and no growth an attacker can cause.
 */
#include "signin_limits.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bucket {
    double tokens;
    int64_t at_ms;
};

/* Failures in a row and the lock-out they led to. */
struct failures {
    unsigned count;
    int64_t last_ms;         /* the last failure */
    int64_t locked_until_ms; /* 0: not locked */
};

/* What every table entry begins with. */
struct slot {
    int64_t touched_ms; /* 0: a free slot */
    struct failures failures;
    unsigned pending; /* derivations under way (sources only) */
};

struct source_entry {
    struct slot slot; /* first: see pick_slot() */
    char source[SIGNIN_SOURCE_LEN];
    struct bucket bucket;
};

struct pair_entry {
    struct slot slot; /* first: see pick_slot() */
    char source[SIGNIN_SOURCE_LEN];
    char name[SIGNIN_NAME_LEN];
};

struct signin_limits {
    struct bucket global;
    unsigned pending;
    struct source_entry sources[SIGNIN_MAX_SOURCES];
    struct pair_entry pairs[SIGNIN_MAX_PAIRS];
};

int signin_limits_new(struct signin_limits **ret_limits)
{
    struct signin_limits *limits = calloc(1, sizeof(*limits));

    if (!limits)
        return -ENOMEM;
    limits->global.tokens = SIGNIN_BURST;
    limits->global.at_ms = -1; /* set on first use */
    *ret_limits = limits;
    return 0;
}

void signin_limits_free(struct signin_limits *limits)
{
    free(limits);
}

int signin_source_of_address(const char *address, char *buf, size_t len)
{
    static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    unsigned char bytes[16];
    char text[INET6_ADDRSTRLEN];

    if (inet_pton(AF_INET, address, bytes) == 1) {
        inet_ntop(AF_INET, bytes, text, sizeof(text));
        snprintf(buf, len, "%s", text);
        return 0;
    }
    if (inet_pton(AF_INET6, address, bytes) != 1)
        return -EINVAL;
    if (memcmp(bytes, v4_mapped, sizeof(v4_mapped)) == 0) {
        inet_ntop(AF_INET, bytes + 12, text, sizeof(text));
        snprintf(buf, len, "%s", text);
        return 0;
    }
    memset(bytes + 8, 0, 8);
    inet_ntop(AF_INET6, bytes, text, sizeof(text));
    snprintf(buf, len, "%s/64", text);
    return 0;
}

static void bucket_refill(struct bucket *bucket, double rate, double burst, int64_t now_ms)
{
    if (bucket->at_ms >= 0 && now_ms > bucket->at_ms)
        bucket->tokens += (double)(now_ms - bucket->at_ms) * rate / 1000.0;
    if (bucket->tokens > burst)
        bucket->tokens = burst;
    if (bucket->at_ms < 0 || now_ms > bucket->at_ms)
        bucket->at_ms = now_ms;
}

/* Whole seconds (at least 1) until the bucket holds a token. */
static long bucket_wait_s(const struct bucket *bucket, double rate)
{
    double missing = 1.0 - bucket->tokens;
    long wait = missing > 0 ? (long)(missing / rate + 0.999) : 1;

    return wait < 1 ? 1 : wait;
}

static long seconds_until(int64_t until_ms, int64_t now_ms)
{
    long left = (long)((until_ms - now_ms + 999) / 1000);

    return left < 1 ? 1 : left;
}

/* Forgets failures SIGNIN_FORGET_S old whose lock-out is over. */
static void failures_age(struct failures *f, int64_t now_ms)
{
    if (f->count && now_ms - f->last_ms >= (int64_t)SIGNIN_FORGET_S * 1000 &&
        f->locked_until_ms <= now_ms)
        *f = (struct failures){0};
}

/* Counts a failure; returns the seconds of the lock-out it starts (0: none). */
static long failures_add(struct failures *f, unsigned free_failures, int64_t now_ms)
{
    unsigned shift;
    long wait;

    failures_age(f, now_ms);
    f->count++;
    f->last_ms = now_ms;
    if (f->count <= free_failures)
        return 0;
    shift = f->count - free_failures - 1;
    wait = shift >= 7 ? SIGNIN_LOCK_MAX_S : (long)SIGNIN_LOCK_FIRST_S << shift;
    if (wait > SIGNIN_LOCK_MAX_S)
        wait = SIGNIN_LOCK_MAX_S;
    f->locked_until_ms = now_ms + wait * 1000;
    return wait;
}

static bool failures_locked(const struct failures *f, int64_t now_ms, long *ret_retry_after)
{
    if (f->locked_until_ms <= now_ms)
        return false;
    *ret_retry_after = seconds_until(f->locked_until_ms, now_ms);
    return true;
}

/*
 * A slot to reuse in a table of entries that each begin with a struct slot:
 * a free one, else the least recently touched one that is not locked out (nor
 * waiting for a derivation), else the least recently touched one.
 */
static size_t pick_slot(void *table, size_t n, size_t stride, int64_t now_ms)
{
    size_t best = 0;
    bool best_locked = true;

    for (size_t i = 0; i < n; i++) {
        const struct slot *slot = (const struct slot *)((char *)table + i * stride);
        const struct slot *kept = (const struct slot *)((char *)table + best * stride);
        bool locked = slot->failures.locked_until_ms > now_ms || slot->pending > 0;

        if (slot->touched_ms == 0)
            return i;
        if ((best_locked && !locked) ||
            (best_locked == locked && slot->touched_ms < kept->touched_ms)) {
            best = i;
            best_locked = locked;
        }
    }
    return best;
}

/* The touch time of an entry: never 0, which marks a free slot. */
static int64_t touch_time(int64_t now_ms)
{
    return now_ms > 0 ? now_ms : 1;
}

static struct source_entry *lookup_source(struct signin_limits *limits, const char *source)
{
    for (size_t i = 0; i < SIGNIN_MAX_SOURCES; i++)
        if (limits->sources[i].slot.touched_ms && strcmp(limits->sources[i].source, source) == 0)
            return &limits->sources[i];
    return NULL;
}

static struct source_entry *find_source(struct signin_limits *limits, const char *source,
                                        int64_t now_ms, bool create)
{
    struct source_entry *entry = lookup_source(limits, source);

    if (entry) {
        entry->slot.touched_ms = touch_time(now_ms);
        return entry;
    }
    if (!create)
        return NULL;
    entry = &limits->sources[pick_slot(limits->sources, SIGNIN_MAX_SOURCES,
                                       sizeof(limits->sources[0]), now_ms)];
    *entry = (struct source_entry){.slot.touched_ms = touch_time(now_ms),
                                   .bucket = {SIGNIN_SOURCE_BURST, now_ms}};
    snprintf(entry->source, sizeof(entry->source), "%s", source);
    return entry;
}

static struct pair_entry *find_pair(struct signin_limits *limits, const char *source,
                                    const char *name, int64_t now_ms, bool create)
{
    struct pair_entry *entry;

    for (size_t i = 0; i < SIGNIN_MAX_PAIRS; i++)
        if (limits->pairs[i].slot.touched_ms && strcmp(limits->pairs[i].name, name) == 0 &&
            strcmp(limits->pairs[i].source, source) == 0) {
            limits->pairs[i].slot.touched_ms = touch_time(now_ms);
            return &limits->pairs[i];
        }
    if (!create)
        return NULL;
    entry =
        &limits
             ->pairs[pick_slot(limits->pairs, SIGNIN_MAX_PAIRS, sizeof(limits->pairs[0]), now_ms)];
    *entry = (struct pair_entry){.slot.touched_ms = touch_time(now_ms)};
    snprintf(entry->source, sizeof(entry->source), "%s", source);
    snprintf(entry->name, sizeof(entry->name), "%s", name);
    return entry;
}

enum signin_verdict signin_limits_check_lock(struct signin_limits *limits, const char *source,
                                             const char *name, int64_t now_ms,
                                             long *ret_retry_after)
{
    struct source_entry *from = find_source(limits, source, now_ms, false);
    struct pair_entry *pair = find_pair(limits, source, name, now_ms, false);

    if (from && failures_locked(&from->slot.failures, now_ms, ret_retry_after))
        return SIGNIN_LOCKED;
    if (pair && failures_locked(&pair->slot.failures, now_ms, ret_retry_after))
        return SIGNIN_LOCKED;
    return SIGNIN_ADMIT;
}

enum signin_verdict signin_limits_take(struct signin_limits *limits, const char *source,
                                       int64_t now_ms, long *ret_retry_after)
{
    struct source_entry *from = find_source(limits, source, now_ms, true);

    bucket_refill(&limits->global, SIGNIN_RATE, SIGNIN_BURST, now_ms);
    bucket_refill(&from->bucket, SIGNIN_SOURCE_RATE, SIGNIN_SOURCE_BURST, now_ms);
    if (limits->pending >= SIGNIN_MAX_PENDING || from->slot.pending >= SIGNIN_SOURCE_MAX_PENDING) {
        *ret_retry_after = 1; /* a derivation takes a fraction of a second */
        return SIGNIN_BUSY;
    }
    if (from->bucket.tokens < 1.0) {
        *ret_retry_after = bucket_wait_s(&from->bucket, SIGNIN_SOURCE_RATE);
        return SIGNIN_BUSY;
    }
    if (limits->global.tokens < 1.0) {
        *ret_retry_after = bucket_wait_s(&limits->global, SIGNIN_RATE);
        return SIGNIN_BUSY;
    }
    from->bucket.tokens -= 1.0;
    limits->global.tokens -= 1.0;
    limits->pending++;
    from->slot.pending++;
    return SIGNIN_ADMIT;
}

void signin_limits_release(struct signin_limits *limits, const char *source)
{
    struct source_entry *from = lookup_source(limits, source);

    if (limits->pending > 0)
        limits->pending--;
    if (from && from->slot.pending > 0)
        from->slot.pending--;
}

void signin_limits_record(struct signin_limits *limits, const char *source, const char *name,
                          bool ok, int64_t now_ms, long *ret_locked_for, bool *ret_source_locked)
{
    struct source_entry *from;
    struct pair_entry *pair;
    long source_lock = 0, name_lock = 0;

    if (ok) {
        pair = find_pair(limits, source, name, now_ms, false);
        if (pair)
            pair->slot.failures = (struct failures){0};
    } else {
        from = find_source(limits, source, now_ms, true);
        pair = find_pair(limits, source, name, now_ms, true);
        source_lock = failures_add(&from->slot.failures, SIGNIN_SOURCE_FAILURES_FREE, now_ms);
        name_lock = failures_add(&pair->slot.failures, SIGNIN_NAME_FAILURES_FREE, now_ms);
    }
    if (ret_locked_for)
        *ret_locked_for = source_lock > name_lock ? source_lock : name_lock;
    if (ret_source_locked)
        *ret_source_locked = source_lock > 0 && source_lock >= name_lock;
}
