/* Sign-in admission: a budget of key derivations, and lock-outs by source and by (source, name). */
#ifndef CERTVISOR_SIGNIN_LIMITS_H
#define CERTVISOR_SIGNIN_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Every password sign-in that is not answered from the cache of checked pairs
 * costs one PBKDF2 derivation (about 0.14 s of a worker). These bound what
 * anyone can make the agent spend, and whom a run of failures locks out: the
 * source that failed (a client's address, or "uid N" for a local caller),
 * never a user name for everyone, so that nobody can lock `admin` out from
 * somewhere else. The numbers are documented in docs/operations.md.
 */
#define SIGNIN_RATE 10  /* derivations per second, all sources together */
#define SIGNIN_BURST 20 /* ... and how many may be taken at once after a quiet spell */
/* Derivations under way at once: one per offload worker (agent/daemon/main.c), so a sign-in never
 * waits behind another; and one per source, so that the others always find room. */
#define SIGNIN_MAX_PENDING 2
#define SIGNIN_SOURCE_MAX_PENDING 1
#define SIGNIN_SOURCE_RATE 5           /* derivations per second for one source */
#define SIGNIN_SOURCE_BURST 10         /* ... after a quiet spell */
#define SIGNIN_SOURCE_FAILURES_FREE 20 /* failures of a source before it is locked out */
#define SIGNIN_NAME_FAILURES_FREE 4    /* failures for one name from one source, likewise */
#define SIGNIN_LOCK_FIRST_S 5          /* the first lock-out; each further failure doubles it */
#define SIGNIN_LOCK_MAX_S 300          /* the longest lock-out */
#define SIGNIN_FORGET_S 900            /* failures are forgotten after this long without one */
#define SIGNIN_MAX_SOURCES 1024        /* sources remembered (the least recent is forgotten) */
#define SIGNIN_MAX_PAIRS 1024          /* (source, name) pairs remembered, likewise */
#define SIGNIN_SOURCE_LEN 64           /* "2001:db8:1:2::/64", "uid 4294967295" */
#define SIGNIN_NAME_LEN 65

struct signin_limits;

enum signin_verdict {
    SIGNIN_ADMIT,
    SIGNIN_LOCKED, /* the source, or the name from this source, failed too often lately */
    SIGNIN_BUSY,   /* the derivation budget is spent: a refusal that costs nothing */
};

/* Returns 0 or -ENOMEM. */
int signin_limits_new(struct signin_limits **ret_limits);

/* signin_limits_free(NULL) is a no-op. */
void signin_limits_free(struct signin_limits *limits);

/*
 * The source an IP address signs in from, into buf (SIGNIN_SOURCE_LEN): an
 * IPv4 address as it is (also when IPv4-mapped, "::ffff:192.0.2.1"), an IPv6
 * address as its /64 ("2001:db8:1:2::/64": one host usually holds a whole
 * /64). Returns 0, or -EINVAL when address is not an IP address.
 */
int signin_source_of_address(const char *address, char *buf, size_t len);

/*
 * Whether source may try name at now_ms (a monotonic clock): SIGNIN_ADMIT,
 * or SIGNIN_LOCKED with the seconds left in *ret_retry_after (at least 1).
 * A locked source is refused whatever it sends, a correct password included:
 * otherwise the lock-out would tell a guess that is right from one that is not.
 */
enum signin_verdict signin_limits_check_lock(struct signin_limits *limits, const char *source,
                                             const char *name, int64_t now_ms,
                                             long *ret_retry_after);

/*
 * Takes one key derivation for source from the global and the source's
 * budgets: SIGNIN_ADMIT (call signin_limits_release() when it has run), or
 * SIGNIN_BUSY with the seconds to wait in *ret_retry_after (at least 1);
 * nothing is taken then.
 */
enum signin_verdict signin_limits_take(struct signin_limits *limits, const char *source,
                                       int64_t now_ms, long *ret_retry_after);

/* A derivation source took with signin_limits_take() has run. */
void signin_limits_release(struct signin_limits *limits, const char *source);

/*
 * Records a checked sign-in. A failure counts against the source and against
 * the name from that source; a success clears the name's count for that
 * source only (not the source's: one valid account must not reset a
 * guesser's count). Sets *ret_locked_for to the seconds of a lock-out this
 * failure started (0: none), and *ret_source_locked to whether it was the
 * source's. Either pointer may be NULL.
 */
void signin_limits_record(struct signin_limits *limits, const char *source, const char *name,
                          bool ok, int64_t now_ms, long *ret_locked_for, bool *ret_source_locked);

#endif
