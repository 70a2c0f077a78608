/* certvisor-ldap-check: reading the request, and the text it puts into DNs and filters. */
#include "ldap_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *text(json_t *root, const char *key)
{
    const char *value = json_string_value(json_object_get(root, key));

    return value && *value ? value : NULL;
}

int ldap_check_request_parse(json_t *root, struct ldap_check_request *req, char *err,
                             size_t err_len)
{
    json_t *timeout = json_object_get(root, "timeout");

    memset(req, 0, sizeof(*req));
    if (!json_is_object(root)) {
        snprintf(err, err_len, "the request is not a JSON object");
        return -1;
    }
    req->uris = text(root, "uris");
    req->bind_dn = text(root, "bind_dn");
    req->bind_password = text(root, "bind_password");
    req->user = text(root, "user");
    req->password = text(root, "password");
    req->user_dn_template = text(root, "user_dn_template");
    req->user_search_base = text(root, "user_search_base");
    req->user_filter = text(root, "user_filter");
    req->group_search_base = text(root, "group_search_base");
    req->group_filter = text(root, "group_filter");
    req->group_attribute = text(root, "group_attribute");
    req->ca_file = text(root, "ca_file");
    req->cert_file = text(root, "cert_file");
    req->key_file = text(root, "key_file");
    req->timeout = json_is_integer(timeout) ? (int)json_integer_value(timeout) : 5;
    if (!req->uris || !req->user || (!req->user_dn_template && !req->user_search_base)) {
        snprintf(err, err_len,
                 "the request needs uris, user and user_dn_template or "
                 "user_search_base");
        return -1;
    }
    if (req->timeout < 1 || req->timeout > 60 || (req->cert_file && !req->key_file)) {
        snprintf(err, err_len,
                 "the request's timeout must be 1 to 60, and cert_file needs key_file");
        return -1;
    }
    if (!req->user_filter)
        req->user_filter = "(uid=%u)";
    if (!req->group_filter)
        req->group_filter = "(member=%d)";
    if (!req->group_attribute)
        req->group_attribute = "memberOf";
    return 0;
}

int ldap_check_name_ok(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > 64)
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '@' || *p == '-'))
            return 0;
    return 1;
}

char *ldap_check_expand(const char *pattern, char c, const char *value, int escape)
{
    size_t cap = strlen(pattern) + 1, len = 0;
    char *out;

    /* At most three bytes for each byte of value (\XX), for every place it goes. */
    for (const char *p = pattern; *p; p++)
        if (p[0] == '%' && p[1] == c)
            cap += 3 * strlen(value);
    out = malloc(cap);
    if (!out)
        return NULL;
    for (const char *p = pattern; *p; p++) {
        if (p[0] != '%' || p[1] != c) {
            out[len++] = *p;
            continue;
        }
        for (const char *v = value; *v; v++) {
            /* RFC 4515: these end or change a filter; a DN may hold any of them. */
            if (escape && strchr("*()\\", *v))
                len += (size_t)snprintf(out + len, cap - len, "\\%02x", (unsigned char)*v);
            else
                out[len++] = *v;
        }
        p++;
    }
    out[len] = '\0';
    return out;
}
