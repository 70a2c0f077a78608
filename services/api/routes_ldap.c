/* Sign-in with directory accounts over REST: GET and PUT /v1/cluster/ldap, with Redis
 * Enterprise's field names where it has them. The agent's policy holds the settings. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "a b c" split at sep into a JSON array of its parts ([] for ""). */
static json_t *split(const char *text, char sep)
{
    json_t *parts = json_array();

    while (text && *text) {
        size_t len = strcspn(text, (char[]){sep, '\0'});
        const char *start = text;

        while (start < text + len && *start == ' ')
            start++;
        if (start < text + len)
            json_array_append_new(parts, json_stringn(start, (size_t)(text + len - start)));
        text += len + (text[len] == sep);
    }
    return parts;
}

static const char *setting(json_t *settings, const char *name)
{
    const char *value = json_string_value(json_object_get(settings, name));

    return value ? value : "";
}

static void shown(struct api_call *call, json_t *reply)
{
    json_t *s = json_object_get(reply, "settings");

    if (json_integer_value(json_object_get(reply, "exit")) != 0) {
        api_reply_refusal(call, reply, 404);
        return;
    }
    api_reply_json(
        call, 200,
        json_pack("{s:b, s:o, s:s, s:s, s:{s:s, s:s}, s:s, s:{s:s, s:s}, s:o, s:o, s:I, s:I}",
                  "control_plane", strcmp(setting(s, "authentication"), "enabled") == 0, "uris",
                  split(setting(s, "uris"), ' '), "bind_dn", setting(s, "bind_dn"),
                  "user_dn_template", setting(s, "user_dn_template"), "user_dn_query", "base",
                  setting(s, "user_search_base"), "filter", setting(s, "user_filter"),
                  "dn_group_attr", setting(s, "group_attribute"), "dn_group_query", "base",
                  setting(s, "group_search_base"), "filter", setting(s, "group_filter"),
                  "admin_groups", split(setting(s, "admin_groups"), ';'), "viewer_groups",
                  split(setting(s, "viewer_groups"), ';'), "cache_ttl",
                  (json_int_t)atol(setting(s, "cache_seconds")), "directory_timeout_s",
                  (json_int_t)atol(setting(s, "timeout"))));
}

/* GET /v1/cluster/ldap: the settings, never the bind password (admins only). */
void api_get_ldap(struct api_call *call)
{
    api_ask(call, "cluster ldap show", NULL, NULL, false, false, shown);
}

static void configured(struct api_call *call, json_t *reply)
{
    api_after_change(call, reply, 400, "cluster ldap show", shown);
}

/* Appends "name value" to args. */
static void add(json_t *args, const char *name, const char *value)
{
    json_array_append_new(args, json_string(name));
    json_array_append_new(args, json_string(value));
}

/* An array of strings joined with sep, or NULL when value is not one (or a string holds sep). */
static char *joined(json_t *value, char sep)
{
    size_t len = 1, i;
    json_t *item;
    char *text;

    if (!json_is_array(value))
        return NULL;
    json_array_foreach(value, i, item)
    {
        if (!json_is_string(item) || strchr(json_string_value(item), sep))
            return NULL;
        len += json_string_length(item) + 1;
    }
    text = calloc(1, len);
    len = 0;
    json_array_foreach(value, i, item)
    {
        if (!text)
            break;
        if (i)
            text[len++] = sep;
        memcpy(text + len, json_string_value(item), json_string_length(item));
        len += json_string_length(item);
    }
    return text;
}

static bool bad_field(struct api_call *call, const char *field, const char *expected)
{
    api_reply_error(call, 400, "invalid_setting", json_pack("{s:s}", "field", field),
                    "'%s' takes %s: nothing was changed", field, expected);
    return false;
}

/* A {"base", "filter"} query into its two settings. */
static bool query(struct api_call *call, json_t *args, const char *field, json_t *value,
                  const char *base_setting, const char *filter_setting)
{
    json_t *base = json_object_get(value, "base"), *filter = json_object_get(value, "filter");
    const char *key;
    json_t *member;

    if (!json_is_object(value))
        return bad_field(call, field, "an object {\"base\", \"filter\"}");
    json_object_foreach(value, key, member)
    {
        if (strcmp(key, "base") != 0 && strcmp(key, "filter") != 0)
            return bad_field(call, field, "an object with base and filter only");
    }
    if ((base && !json_is_string(base)) || (filter && !json_is_string(filter)))
        return bad_field(call, field, "strings for base and filter");
    if (base)
        add(args, base_setting, json_string_value(base));
    if (filter)
        add(args, filter_setting, json_string_value(filter));
    return true;
}

/* One field of the body into args; false after answering 400. */
static bool field_to_settings(struct api_call *call, json_t *args, const char *key, json_t *value)
{
    static const struct {
        const char *field, *setting;
    } strings[] = {{"bind_dn", "ldap_bind_dn"},
                   {"bind_pass", "ldap_bind_password"},
                   {"user_dn_template", "ldap_user_dn_template"},
                   {"dn_group_attr", "ldap_group_attribute"}},
      lists[] = {{"admin_groups", "ldap_admin_groups"}, {"viewer_groups", "ldap_viewer_groups"}};
    /* The policy's ranges, checked here too so that the refusal names the REST field. */
    static const struct {
        const char *field, *setting;
        long min, max;
    } numbers[] = {{"cache_ttl", "ldap_cache_seconds", 0, 3600},
                   {"directory_timeout_s", "ldap_timeout", 1, 60}};
    char number[32], *text;

    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
        if (strcmp(key, strings[i].field) == 0) {
            if (!json_is_string(value))
                return bad_field(call, key, "a string");
            add(args, strings[i].setting, json_string_value(value));
            return true;
        }
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++)
        if (strcmp(key, numbers[i].field) == 0) {
            if (!json_is_integer(value) || json_integer_value(value) < numbers[i].min ||
                json_integer_value(value) > numbers[i].max) {
                char expected[64];

                snprintf(expected, sizeof(expected), "a whole number from %ld to %ld",
                         numbers[i].min, numbers[i].max);
                return bad_field(call, key, expected);
            }
            snprintf(number, sizeof(number), "%lld", (long long)json_integer_value(value));
            add(args, numbers[i].setting, number);
            return true;
        }
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        if (strcmp(key, lists[i].field) == 0) {
            if (!(text = joined(value, ';')))
                return bad_field(call, key, "an array of group DNs (without ';')");
            add(args, lists[i].setting, text);
            free(text);
            return true;
        }
    if (strcmp(key, "control_plane") == 0) {
        if (!json_is_boolean(value))
            return bad_field(call, key, "a boolean");
        add(args, "ldap_authentication", json_is_true(value) ? "enabled" : "disabled");
        return true;
    }
    if (strcmp(key, "uris") == 0) {
        if (!(text = joined(value, ' ')))
            return bad_field(call, key, "an array of ldaps:// or ldap:// URIs");
        add(args, "ldap_uris", text);
        free(text);
        return true;
    }
    if (strcmp(key, "user_dn_query") == 0)
        return query(call, args, key, value, "ldap_user_search_base", "ldap_user_filter");
    if (strcmp(key, "dn_group_query") == 0)
        return query(call, args, key, value, "ldap_group_search_base", "ldap_group_filter");
    api_reply_error(call, 400, "unknown_field", json_pack("{s:s}", "field", key),
                    "unknown field '%s' in the LDAP settings: nothing was changed", key);
    return false;
}

/* PUT /v1/cluster/ldap: any of GET's fields, and bind_pass (write-only); all or nothing. */
void api_put_ldap(struct api_call *call)
{
    json_t *args, *value;
    const char *key;

    if (!call->body || json_object_size(call->body) == 0) {
        api_reply_error(call, 400, "invalid_schema", NULL,
                        "the request needs a JSON object with the LDAP settings to change");
        return;
    }
    args = json_array();
    json_object_foreach(call->body, key, value)
    {
        if (!field_to_settings(call, args, key, value)) {
            json_decref(args);
            return;
        }
    }
    api_ask(call, "cluster config", args, NULL, true, true, configured);
}
