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
 * shorter than 8 characters) with a message. It derives the hash on the
 * calling thread: the agent's loop uses users_set_hashed() instead.
 */
int users_set(struct users *users, const char *name, const char *password, enum user_role role,
              bool replace, char *err, size_t err_len);

/*
 * A password hashed for storing, made in two steps so that the derivation
 * runs off the agent's loop (agent/core/offload.h): users_password_new() on the
 * loop checks its length (CV_EUSAGE with a message), copies it and draws a
 * salt; users_password_derive(), on any thread, runs PBKDF2 on those copies
 * alone and wipes the password's copy. users_password_free() wipes and frees
 * (NULL is a no-op).
 */
struct users_password;
int users_password_new(const char *password, struct users_password **ret_password, char *err,
                       size_t err_len);
void users_password_derive(struct users_password *password);
void users_password_free(struct users_password *password);

/*
 * users_set() and users_add() with a password derived already (NULL for
 * none, users_add_hashed only). The name and existence checks run here, on
 * the state of the store at the time of the call. -EIO when the derivation
 * failed.
 */
int users_set_hashed(struct users *users, const char *name, const struct users_password *password,
                     enum user_role role, bool replace, char *err, size_t err_len);
int users_add_hashed(struct users *users, const char *name, const struct users_password *password,
                     const char *subject, enum user_role role, char *err, size_t err_len);

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
    USER_CHECK_FAILED,  /* unknown user or wrong password: the same answer for both */
    USER_CHECK_PENDING, /* a key derivation must run: users_check_derive(), then _finish() */
};

/*
 * A password check under way: copies of what the key derivation needs, and
 * nothing that points into the store, so a worker thread may run it while
 * the store changes (agent/core/offload.h).
 */
struct users_check;

/*
 * Step 1, on the loop: checks name and password. A correct pair checked in
 * the last minute is remembered (as a keyed hash, never the password) and
 * answered at once: USER_CHECK_OK with the role, so a client sending the same
 * credentials with every request costs one key derivation. Otherwise returns
 * USER_CHECK_PENDING with a check in *ret_check: an unknown name, a user
 * without a password (certificate only) or an overlong password cost the same
 * derivation as a real one (with a dummy salt), so the time taken does not
 * tell who exists. USER_CHECK_FAILED only when out of memory. Throttling is
 * the caller's (agent/auth/signin_limits.h).
 */
enum user_check users_check_begin(struct users *users, const char *name, const char *password,
                                  time_t now, enum user_role *ret_role,
                                  struct users_check **ret_check);

/*
 * Step 2, on any thread: the PBKDF2 derivation, on the check's own copies
 * only; the password copy is wiped as soon as it has been used.
 */
void users_check_derive(struct users_check *check);

/*
 * Step 3, on the loop: USER_CHECK_OK with the role when the derived key
 * matches the user's hash as it is now (a password changed or a user deleted
 * meanwhile fails the check), else USER_CHECK_FAILED. Remembers a success.
 */
enum user_check users_check_finish(struct users *users, const struct users_check *check, time_t now,
                                   enum user_role *ret_role);

/* Wipes and frees a check. NULL is a no-op. */
void users_check_free(struct users_check *check);

/* The role of an existing user (for certificate-based sign-in). Returns 0 or -ENOENT. */
int users_role(const struct users *users, const char *name, enum user_role *ret_role);

const char *user_role_name(enum user_role role);
int user_role_parse(const char *text, enum user_role *ret_role);

#endif
