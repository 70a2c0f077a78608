/* One CONFIG SET to a redis-server over RESP on its plain port, bounded by a deadline. */
#ifndef CERTVISOR_REDIS_RELOAD_CONFIG_SET_H
#define CERTVISOR_REDIS_RELOAD_CONFIG_SET_H

#include <stddef.h>

/* Where and as whom to ask. user and password may be NULL (no AUTH: the default user). */
struct redis_target {
    const char *host;
    int port;
    const char *user;
    const char *password;
};

/*
 * Sends "CONFIG SET p1 v1 p2 v2 ..." (n_pairs strings, names and values
 * alternating) to the target, after "AUTH [user] password" when it has a
 * password, and reads the replies, all within timeout_seconds.
 * Returns 0 on +OK; 1 with Redis's error reply in err when Redis refused the
 * settings (it keeps the ones it had); -1 with the reason in err when the
 * exchange failed (no connection, timeout, closed, an unexpected reply).
 */
int redis_config_set(const struct redis_target *target, const char *const *pairs, size_t n_pairs,
                     double timeout_seconds, char *err, size_t err_len);

#endif
