/*
 * Sign-in with a directory account (policy ldap_*): the check runs in certvisor-ldap-check,
 * spawned from an offload worker, and its answer maps the user's groups to a role. Successful
 * sign-ins are remembered for ldap_cache_seconds, as a keyed hash of the password, never the
 * password itself.
 */
#ifndef CERTVISOR_LDAP_SIGNIN_H
#define CERTVISOR_LDAP_SIGNIN_H

#include "certs.h"
#include "policy.h"
#include "users.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* The helper's answer, at most this long. */
#define LDAP_ANSWER_MAX (64 * 1024)

enum ldap_signin_result {
    LDAP_SIGNIN_OK,
    LDAP_SIGNIN_DENIED,      /* unknown user, wrong password, no group mapped to a role */
    LDAP_SIGNIN_UNAVAILABLE, /* the directory could not be asked: a 503, not a failed sign-in */
};

/* True when name signs in through the directory: LDAP is enabled and name is no local user. */
bool ldap_signin_applies(const struct policy *policy, const struct users *users, const char *name);

/* One sign-in's work: owned by its job, handed to a worker whole. */
struct ldap_signin;

/*
 * Prepares a check of name and password with the policy's settings and the store's
 * ldap_client and ldap_server_ca (their current files). helper is certvisor-ldap-check's path.
 * Returns 0, or -ENOMEM.
 */
int ldap_signin_new(const struct policy *policy, struct certs *certs, const char *helper,
                    const char *name, const char *password, struct ldap_signin **ret_signin);

/* On a worker: runs the helper, within the policy's timeout for each directory. */
void ldap_signin_run(struct ldap_signin *signin);

/*
 * On the loop, after the run: the outcome, with the role (from the groups, against
 * ldap_admin_groups then ldap_viewer_groups) and the reason when it is not OK. detail (may be
 * NULL) gets {"user", "dn", "groups", "role"} for `cluster ldap test`.
 */
enum ldap_signin_result ldap_signin_outcome(const struct ldap_signin *signin,
                                            const struct policy *policy, enum user_role *ret_role,
                                            const char **ret_error, json_t **detail);

/* Wipes (the passwords) and frees. NULL is a no-op. */
void ldap_signin_free(struct ldap_signin *signin);

/* --- the helper's answer, parsed (outside input: tests/fuzz/fuzz_ldap_answer.c) --- */

struct ldap_answer {
    enum ldap_signin_result result;
    char dn[1024];
    json_t *groups; /* an array of strings (each at most 1024 bytes), or NULL */
    char error[1024];
};

/* Parses the helper's output; anything else than one of its answers is UNAVAILABLE with why. */
void ldap_answer_parse(const char *text, size_t len, struct ldap_answer *answer);
void ldap_answer_clear(struct ldap_answer *answer);

/* The role groups give under the policy: 0 with it, or -ENOENT when none is mapped. */
int ldap_role_of_groups(const struct policy *policy, json_t *groups, enum user_role *ret_role);

/* --- remembered sign-ins --- */

struct ldap_cache;

int ldap_cache_new(struct ldap_cache **ret_cache);
void ldap_cache_free(struct ldap_cache *cache);

/* True with the role when name signed in with this password within ldap_cache_seconds, under
 * the same directory settings. */
bool ldap_cache_lookup(struct ldap_cache *cache, const struct policy *policy, const char *name,
                       const char *password, time_t now, enum user_role *ret_role);
void ldap_cache_store(struct ldap_cache *cache, const struct policy *policy, const char *name,
                      const char *password, time_t now, enum user_role role);

#endif
