/* certvisor-ldap-check: one directory sign-in, asked for on standard input (see main.c). */
#ifndef CERTVISOR_LDAP_CHECK_H
#define CERTVISOR_LDAP_CHECK_H

#include <jansson.h>
#include <stddef.h>

/* The outcomes, as the "result" member of the answer says them. */
enum ldap_outcome {
    LDAP_CHECK_OK,          /* the password is right: "dn" and "groups" follow */
    LDAP_CHECK_DENIED,      /* unknown user, wrong password, an unusable name */
    LDAP_CHECK_UNAVAILABLE, /* no directory answered, a TLS handshake failed, a bad service bind */
};

/* What one check needs, from the request (strings belong to the request's JSON). */
struct ldap_check_request {
    const char *uris; /* "ldaps://a:636 ldap://b" */
    const char *bind_dn, *bind_password;
    const char *user, *password;
    const char *user_dn_template;
    const char *user_search_base, *user_filter;
    const char *group_search_base, *group_filter, *group_attribute;
    const char *ca_file, *cert_file, *key_file;
    int timeout; /* seconds, per directory */
};

/*
 * Reads the request (a JSON object) into req; the strings stay the JSON's. Returns 0, or -1
 * with the problem in err.
 */
int ldap_check_request_parse(json_t *root, struct ldap_check_request *req, char *err,
                             size_t err_len);

/* True for a user name that can go into a DN and a filter as it is: letters, digits, . _ @ -
 * (1 to 64 of them). Others are refused: no escaping to get wrong. */
int ldap_check_name_ok(const char *name);

/* Replaces every "%c" of pattern with value (once escaped for a filter when escape is set):
 * a malloc'd string, or NULL. */
char *ldap_check_expand(const char *pattern, char c, const char *value, int escape);

/* Runs the check against the directories in turn; the answer's "error" says why not. */
enum ldap_outcome ldap_check_run(const struct ldap_check_request *req, json_t *answer);

#endif
