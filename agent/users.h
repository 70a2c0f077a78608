/* The REST API's users: stored hashed in the state directory, checked by the agent alone. */
#ifndef CERTVISOR_USERS_H
#define CERTVISOR_USERS_H

#include "subject_line.h"

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

/*
 * Adds a user that signs in with a password (HTTP Basic), with a client
 * certificate matching subject (a subject line, see subject_line.h), or
 * both; at least one of password and subject. Returns 0, or -EEXIST or
 * CV_EUSAGE (a bad name, password or subject line) with a message.
 */
int users_add(struct users *users, const char *name, const char *password, const char *subject,
              enum user_role role, char *err, size_t err_len);

/*
 * Sets (or with NULL, clears) an existing user's certificate subject.
 * Clearing is refused for a user without a password (it could not sign in).
 * Returns 0, or -ENOENT / CV_EUSAGE with a message.
 */
int users_set_subject(struct users *users, const char *name, const char *subject, char *err,
                      size_t err_len);

/* The canonical subject line of a user (malloc'd; NULL when it has none). 0 or -ENOENT. */
int users_subject(const struct users *users, const char *name, char **ret_subject);

/*
 * Finds the one user whose certificate subject matches cert under how. The
 * certificate must have been verified already. Returns 0 with its name and
 * role, -ENOENT when none matches, -EEXIST when several do (the message names
 * two of them).
 */
int users_find_by_certificate(const struct users *users, X509 *cert, enum subject_match how,
                              char *ret_name, size_t name_len, enum user_role *ret_role, char *err,
                              size_t err_len);

/* Removes a user. Returns 0 or -ENOENT with a message. */
int users_delete(struct users *users, const char *name, char *err, size_t err_len);

/*
 * [{"name", "role", "password": whether it has one, "certificate_subject"
 * when it has one}, ...], never a hash.
 */
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
