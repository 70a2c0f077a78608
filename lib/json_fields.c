/* Reading the fields of a JSON object that came from outside (json_fields.h). */
#include "json_fields.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

json_t *json_fields_object(const char *text, size_t len, size_t max, const char *what, char *err,
                           size_t err_len)
{
    json_error_t error;
    json_t *root;

    if (len > max) {
        snprintf(err, err_len, "%s: %zu bytes, over the limit of %zu", what, len, max);
        return NULL;
    }
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &error);
    if (!root) {
        snprintf(err, err_len, "%s: not JSON: %s", what, error.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        snprintf(err, err_len, "%s: not a JSON object", what);
        return NULL;
    }
    return root;
}

/* A string field into buf: required (or optional, left "" when absent), shorter than len. */
int json_fields_string(json_t *root, const char *field, bool required, char *buf, size_t len,
                       const char *what, char *err, size_t err_len)
{
    json_t *value = json_object_get(root, field);

    buf[0] = '\0';
    if (!value && !required)
        return 0;
    if (!json_is_string(value) || json_string_length(value) >= len ||
        strlen(json_string_value(value)) != json_string_length(value)) {
        snprintf(err, err_len, "%s: '%s' is %s", what, field,
                 !value                  ? "missing"
                 : json_is_string(value) ? "too long or holds NUL"
                                         : "not a string");
        return -EINVAL;
    }
    if (required && json_string_length(value) == 0) {
        snprintf(err, err_len, "%s: '%s' is empty", what, field);
        return -EINVAL;
    }
    memcpy(buf, json_string_value(value), json_string_length(value) + 1);
    return 0;
}

int json_fields_integer(json_t *root, const char *field, bool required, int64_t *out,
                        const char *what, char *err, size_t err_len)
{
    json_t *value = json_object_get(root, field);

    *out = 0;
    if (!value && !required)
        return 0;
    if (!json_is_integer(value) || json_integer_value(value) < 0) {
        snprintf(err, err_len, "%s: '%s' is %s", what, field,
                 value ? "not a non-negative integer" : "missing");
        return -EINVAL;
    }
    *out = json_integer_value(value);
    return 0;
}

char *json_fields_dump(json_t *root)
{
    char *text = root ? json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

    json_decref(root);
    return text;
}
