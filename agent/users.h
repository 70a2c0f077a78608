/* The REST API's users: stored hashed in the state directory, checked by the agent alone. */
#ifndef CERTVISOR_USERS_H
#define CERTVISOR_USERS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

enum user_role { USER_ROLE_VIEWER, USER_ROLE_ADMIN };

struct users;

/* Reads state_dir/users.json (a missing file is an empty list). Returns 0, or an error. */
int users_open(const char *state_dir, struct users **ret_users, char *err, size_t err_len);

void users_free(struct users *users);

/*
 * Adds a user, or with replace changes an existing user's password (and role).
 * The password is hashed with PBKDF2-HMAC-SHA256 (600,000 iterations, a
 * random 16-byte salt per user) and the file rewritten atomically (0600).
 * Returns 0, or -EEXIST / -ENOENT / CV_EUSAGE (a bad name or a password
 * shorter than 8 characters) with a message.
 */
int users_set(struct users *users, const char *name, const char *password, enum user_role role,
              bool replace, char *err, size_t err_len);

/* Removes a user. Returns 0 or -ENOENT with a message. */
int users_delete(struct users *users, const char *name, char *err, size_t err_len);

/* [{"name": ..., "role": ...}, ...], never a hash. */
json_t *users_list(const struct users *users);

/* The outcome of a check. */
enum user_check {
    USER_CHECK_OK,
    USER_CHECK_FAILED,    /* unknown user or wrong password: the same answer for both */
    USER_CHECK_THROTTLED, /* too many failures lately: *ret_retry_after seconds to wait */
};

/*
 * Checks name and password. Repeated failures for a name lock it out for a
 * while that doubles with each further failure (from 5 s after the fifth, up
 * to 5 minutes); a success clears the count. An unknown name costs the same
 * key derivation as a known one. A correct pair is remembered for
 * a minute (as a keyed hash, never the password) so that a client sending
 * the same credentials with every request costs one key derivation.
 */
enum user_check users_check(struct users *users, const char *name, const char *password, time_t now,
                            enum user_role *ret_role, long *ret_retry_after);

/* The role of an existing user (for certificate-based sign-in). Returns 0 or -ENOENT. */
int users_role(const struct users *users, const char *name, enum user_role *ret_role);

const char *user_role_name(enum user_role role);
int user_role_parse(const char *text, enum user_role *ret_role);

#endif
