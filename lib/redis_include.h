/* Reading the redis.conf include certvisord renders for redis-server (the "redis" format). */
#ifndef CERTVISOR_REDIS_INCLUDE_H
#define CERTVISOR_REDIS_INCLUDE_H

#include <stddef.h>

/* An include larger than this is not one certvisord rendered. */
#define REDIS_INCLUDE_MAX_BYTES (64 * 1024)

/* One directive: its lower-case name, its single value, and the line it came from. */
struct redis_include_entry {
    char *name;
    char *value;
    int line;
};

/* The directives in file order; a directive given twice keeps its last value, as in Redis. */
struct redis_include {
    struct redis_include_entry *entries;
    size_t n;
};

/*
 * Parses text the way redis-server reads a configuration file: lines split on
 * '\n' and trimmed, blank lines and '#' comments skipped, each line split into
 * words with Redis's sdssplitargs() rules (double quotes with \" \\ \n \r \t
 * \b \a and \xHH escapes, single quotes with \', a closing quote followed by a
 * blank or the end). Every directive must be a tls-* setting with exactly one
 * value, and tls-port, tls-cert-file and tls-key-file must be there.
 *
 * Returns 0 with *ret_include (free with redis_include_free), or -EINVAL with
 * a message naming the line and the fix in err (*ret_include untouched), or
 * -ENOMEM.
 */
int redis_include_parse(const char *text, struct redis_include **ret_include, char *err,
                        size_t err_len);

/* Reads and parses path (at most REDIS_INCLUDE_MAX_BYTES). Errors as redis_include_parse. */
int redis_include_load(const char *path, struct redis_include **ret_include, char *err,
                       size_t err_len);

/* The value of a directive (name in lower case), or NULL when the include does not set it. */
const char *redis_include_get(const struct redis_include *include, const char *name);

/*
 * The parameter/value pairs for one CONFIG SET that leaves redis-server's TLS
 * as a fresh start with this include would: every directive of the include,
 * plus, for each setting the renderer leaves out when it has nothing to say
 * (tls-ca-cert-file, tls-ciphers, tls-ciphersuites, tls-protocols,
 * tls-auth-clients), Redis's default, so that a setting removed from the
 * include (trust removed, say) is removed from the running server too.
 *
 * Returns the number of strings written to *ret_pairs (2 per pair; the array
 * and its strings point into include and a static table: free only the array),
 * or -ENOMEM.
 */
int redis_include_config_set_pairs(const struct redis_include *include, const char ***ret_pairs);

void redis_include_free(struct redis_include *include);

#endif
