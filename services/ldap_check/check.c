/* certvisor-ldap-check: the directory conversation, with OpenLDAP's client library. */
#include "ldap_check.h"

#define LDAP_DEPRECATED 0
#include <errno.h>
#include <ldap.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* One conversation with one directory. */
struct session {
    const struct ldap_check_request *req;
    const char *uri;
    LDAP *ld;
    char error[1024];
};

static bool tcp_reachable(const char *uri, int timeout);

/*
 * The library's reason, with its diagnostic (a TLS failure's own words) when it has one. A
 * server "down" that accepts TCP connections is a failed TLS handshake, and said so.
 */
static void describe(struct session *s, int rc, const char *doing)
{
    char *diag = NULL;

    ldap_get_option(s->ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
    if (rc == LDAP_SERVER_DOWN && tcp_reachable(s->uri, s->req->timeout))
        snprintf(s->error, sizeof(s->error), "the TLS handshake with %s failed%s%s%s: %s", s->uri,
                 diag && *diag ? " (" : "", diag && *diag ? diag : "", diag && *diag ? ")" : "",
                 s->req->cert_file
                     ? "the directory may not trust the ldap_client certificate, or "
                       "ldap_server_ca does not verify the directory's"
                     : "no ldap_client certificate is set, and a directory that requires client "
                       "certificates refuses the handshake (set one with 'certvisorctl cluster "
                       "certificate set ldap_client ...')");
    else
        snprintf(s->error, sizeof(s->error), "%s %s: %s%s%s%s", doing, s->uri, ldap_err2string(rc),
                 diag && *diag ? " (" : "", diag && *diag ? diag : "", diag && *diag ? ")" : "");
    ldap_memfree(diag);
}

/*
 * Whether a TCP connection to the URI's host and port opens within the timeout: when it does
 * while the library says the server is down, the TLS handshake is what failed (the directory
 * refused the client certificate, or ldap_server_ca does not verify it).
 */
static bool tcp_reachable(const char *uri, int timeout)
{
    LDAPURLDesc *url = NULL;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *addrs = NULL;
    char port[16];
    bool open = false;

    if (ldap_url_parse(uri, &url) != LDAP_URL_SUCCESS || !url->lud_host)
        goto out;
    snprintf(port, sizeof(port), "%d",
             url->lud_port                           ? url->lud_port
             : strcmp(url->lud_scheme, "ldaps") == 0 ? 636
                                                     : 389);
    if (getaddrinfo(url->lud_host, port, &hints, &addrs) != 0)
        goto out;
    for (struct addrinfo *a = addrs; a && !open; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int error = 0;
        socklen_t len = sizeof(error);

        if (fd < 0)
            continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0 ||
            (errno == EINPROGRESS && poll(&pfd, 1, timeout * 1000) == 1 &&
             getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) == 0 && error == 0))
            open = true;
        close(fd);
    }
out:
    if (addrs)
        freeaddrinfo(addrs);
    ldap_free_urldesc(url);
    return open;
}

/* True for the codes that say the directory, not the credentials, is the problem. */
static int unreachable(int rc)
{
    return rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_TIMEOUT ||
           rc == LDAP_UNAVAILABLE || rc == LDAP_BUSY || rc == LDAP_UNWILLING_TO_PERFORM;
}

static int set_options(struct session *s)
{
    const struct ldap_check_request *req = s->req;
    struct timeval timeout = {req->timeout, 0};
    int version = LDAP_VERSION3, demand = LDAP_OPT_X_TLS_DEMAND;
    int tls12 = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2, server = 0, rc;

    /* Per connection: certvisor's CA and client certificate, never ldap.conf's. */
    if ((rc = ldap_set_option(s->ld, LDAP_OPT_PROTOCOL_VERSION, &version)) ||
        (rc = ldap_set_option(s->ld, LDAP_OPT_NETWORK_TIMEOUT, &timeout)) ||
        (rc = ldap_set_option(s->ld, LDAP_OPT_TIMEOUT, &timeout)) ||
        (rc = ldap_set_option(s->ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF)) ||
        (rc = ldap_set_option(s->ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand)) ||
        (rc = ldap_set_option(s->ld, LDAP_OPT_X_TLS_PROTOCOL_MIN, &tls12)) ||
        (req->ca_file && (rc = ldap_set_option(s->ld, LDAP_OPT_X_TLS_CACERTFILE, req->ca_file))) ||
        (req->cert_file &&
         (rc = ldap_set_option(s->ld, LDAP_OPT_X_TLS_CERTFILE, req->cert_file))) ||
        (req->key_file && (rc = ldap_set_option(s->ld, LDAP_OPT_X_TLS_KEYFILE, req->key_file))) ||
        (rc = ldap_set_option(s->ld, LDAP_OPT_X_TLS_NEWCTX, &server))) {
        describe(s, rc, "cannot set up TLS for");
        return rc;
    }
    return LDAP_SUCCESS;
}

/* A simple bind; an empty password never gets here (it would be an anonymous bind). */
static int bind_as(struct session *s, const char *dn, const char *password)
{
    struct berval cred = {password ? strlen(password) : 0, (char *)(password ? password : "")};

    return ldap_sasl_bind_s(s->ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
}

/* Connects (StartTLS for ldap://) and binds as the service account, or anonymously. */
static int open_session(struct session *s)
{
    int rc = ldap_initialize(&s->ld, s->uri);

    if (rc != LDAP_SUCCESS) {
        snprintf(s->error, sizeof(s->error), "%s is not a usable LDAP URI: %s", s->uri,
                 ldap_err2string(rc));
        return rc;
    }
    rc = set_options(s);
    if (rc == LDAP_SUCCESS && strncmp(s->uri, "ldap://", 7) == 0) {
        rc = ldap_start_tls_s(s->ld, NULL, NULL);
        if (rc != LDAP_SUCCESS)
            describe(s, rc, "StartTLS failed with");
    }
    if (rc == LDAP_SUCCESS && (s->req->bind_dn || !s->req->user_dn_template)) {
        rc = bind_as(s, s->req->bind_dn, s->req->bind_password);
        if (rc != LDAP_SUCCESS)
            describe(s, rc,
                     unreachable(rc)   ? "cannot reach"
                     : s->req->bind_dn ? "the search account (ldap_bind_dn) cannot bind to"
                                       : "an anonymous bind was refused by");
    }
    return rc;
}

/* Every value of attribute in entry, appended to groups as strings. */
static void collect_values(struct session *s, LDAPMessage *entry, const char *attribute,
                           json_t *groups)
{
    struct berval **values = ldap_get_values_len(s->ld, entry, attribute);

    for (int i = 0; values && values[i]; i++)
        json_array_append_new(groups, json_stringn(values[i]->bv_val, values[i]->bv_len));
    ldap_value_free_len(values);
}

/* Searches base for filter; up to limit entries in *ret_result. */
static int search(struct session *s, const char *base, int scope, const char *filter,
                  char **attributes, int limit, LDAPMessage **ret_result)
{
    struct timeval timeout = {s->req->timeout, 0};
    int rc = ldap_search_ext_s(s->ld, base, scope, filter, attributes, 0, NULL, NULL, &timeout,
                               limit, ret_result);

    if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED)
        describe(s, rc, "a search failed on");
    return rc;
}

/* The user's DN (malloc'd) and, from its entry, the group attribute's values. */
static enum ldap_outcome find_user(struct session *s, char **ret_dn, json_t *groups)
{
    char *attributes[] = {(char *)s->req->group_attribute, NULL};
    char *filter = ldap_check_expand(s->req->user_filter, 'u', s->req->user, 1);
    LDAPMessage *result = NULL;
    enum ldap_outcome outcome = LDAP_CHECK_DENIED;
    int rc = filter ? search(s, s->req->user_search_base, LDAP_SCOPE_SUBTREE, filter, attributes, 2,
                             &result)
                    : LDAP_NO_MEMORY;
    char *dn;

    if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
        outcome =
            unreachable(rc) || rc == LDAP_NO_MEMORY ? LDAP_CHECK_UNAVAILABLE : LDAP_CHECK_DENIED;
    } else if (ldap_count_entries(s->ld, result) != 1) {
        snprintf(s->error, sizeof(s->error), "%s users match %s under %s",
                 ldap_count_entries(s->ld, result) == 0 ? "no" : "several", filter,
                 s->req->user_search_base);
    } else if (!(dn = ldap_get_dn(s->ld, ldap_first_entry(s->ld, result)))) {
        snprintf(s->error, sizeof(s->error), "the user's entry has no DN");
    } else {
        *ret_dn = strdup(dn);
        ldap_memfree(dn);
        if (!s->req->group_search_base)
            collect_values(s, ldap_first_entry(s->ld, result), s->req->group_attribute, groups);
        outcome = *ret_dn ? LDAP_CHECK_OK : LDAP_CHECK_UNAVAILABLE;
    }
    ldap_msgfree(result);
    free(filter);
    return outcome;
}

/* The groups that list dn: a search of the group base, or the attribute of dn's own entry. */
static int find_groups(struct session *s, const char *dn, json_t *groups)
{
    char *none[] = {LDAP_NO_ATTRS, NULL};
    char *own[] = {(char *)s->req->group_attribute, NULL};
    char *filter =
        s->req->group_search_base ? ldap_check_expand(s->req->group_filter, 'd', dn, 1) : NULL;
    LDAPMessage *result = NULL;
    int rc;

    if (s->req->group_search_base && !filter)
        return LDAP_NO_MEMORY;
    rc = s->req->group_search_base
             ? search(s, s->req->group_search_base, LDAP_SCOPE_SUBTREE, filter, none, 0, &result)
             : search(s, dn, LDAP_SCOPE_BASE, "(objectClass=*)", own, 1, &result);
    for (LDAPMessage *e = ldap_first_entry(s->ld, result); rc == LDAP_SUCCESS && e;
         e = ldap_next_entry(s->ld, e)) {
        char *group = s->req->group_search_base ? ldap_get_dn(s->ld, e) : NULL;

        if (group)
            json_array_append_new(groups, json_string(group));
        else if (!s->req->group_search_base)
            collect_values(s, e, s->req->group_attribute, groups);
        ldap_memfree(group);
    }
    ldap_msgfree(result);
    free(filter);
    return rc;
}

/* The check against one directory. */
static enum ldap_outcome check_one(struct session *s, json_t *answer)
{
    const struct ldap_check_request *req = s->req;
    json_t *groups = json_array();
    enum ldap_outcome outcome;
    char *dn = NULL;
    int rc = open_session(s);

    if (rc != LDAP_SUCCESS) {
        json_decref(groups);
        /* A service account the directory refuses is a setting to fix: the directory's side. */
        return LDAP_CHECK_UNAVAILABLE;
    }
    if (req->user_dn_template) {
        dn = ldap_check_expand(req->user_dn_template, 'u', req->user, 0);
        outcome = dn ? LDAP_CHECK_OK : LDAP_CHECK_UNAVAILABLE;
    } else {
        outcome = find_user(s, &dn, groups);
    }
    /* Groups found with the service account, before the user's bind replaces it. */
    if (outcome == LDAP_CHECK_OK && req->group_search_base && !req->user_dn_template &&
        (rc = find_groups(s, dn, groups)) != LDAP_SUCCESS)
        outcome = unreachable(rc) ? LDAP_CHECK_UNAVAILABLE : LDAP_CHECK_DENIED;
    if (outcome == LDAP_CHECK_OK && (rc = bind_as(s, dn, req->password)) != LDAP_SUCCESS) {
        describe(s, rc, "the user's bind was refused by");
        outcome = unreachable(rc) ? LDAP_CHECK_UNAVAILABLE : LDAP_CHECK_DENIED;
    }
    /* With a template there was no search: the groups are read as the user. */
    if (outcome == LDAP_CHECK_OK && req->user_dn_template &&
        (rc = find_groups(s, dn, groups)) != LDAP_SUCCESS)
        outcome = unreachable(rc) ? LDAP_CHECK_UNAVAILABLE : LDAP_CHECK_DENIED;
    if (outcome == LDAP_CHECK_OK)
        json_object_set_new(answer, "dn", json_string(dn));
    json_object_set_new(answer, "groups", groups);
    free(dn);
    return outcome;
}

enum ldap_outcome ldap_check_run(const struct ldap_check_request *req, json_t *answer)
{
    enum ldap_outcome outcome = LDAP_CHECK_UNAVAILABLE;
    char *uris = strdup(req->uris), *save = NULL, errors[2048] = "";

    if (!req->password || !ldap_check_name_ok(req->user)) {
        free(uris);
        json_object_set_new(answer, "error",
                            json_string(!req->password ? "an empty password is refused"
                                                       : "the user name holds characters other "
                                                         "than letters, digits and . _ @ -"));
        return LDAP_CHECK_DENIED;
    }
    /* Each directory in turn, until one answers: a later one only when an earlier is down. */
    for (char *uri = uris ? strtok_r(uris, " ", &save) : NULL; uri;
         uri = strtok_r(NULL, " ", &save)) {
        struct session s = {.req = req, .uri = uri};

        outcome = check_one(&s, answer);
        if (s.ld)
            ldap_unbind_ext_s(s.ld, NULL, NULL);
        snprintf(errors + strlen(errors), sizeof(errors) - strlen(errors), "%s%s",
                 *errors ? "; " : "", s.error);
        if (outcome != LDAP_CHECK_UNAVAILABLE)
            break;
    }
    free(uris);
    if (outcome != LDAP_CHECK_OK)
        json_object_set_new(answer, "error", json_string(errors));
    return outcome;
}
