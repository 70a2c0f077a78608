/* Request bodies: JSON objects, with the PEM pastes operators make from the documented commands. */
#include "json_body.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* True when the quote at body[at] closes a value: blanks, then ',', '}', ']' or the end. */
static bool closes_value(const char *body, size_t len, size_t at)
{
    size_t i = at + 1;

    while (i < len && strchr(" \t\r\n", body[i]))
        i++;
    return i == len || body[i] == ',' || body[i] == '}' || body[i] == ']';
}

/* True when out (so far) ends with the dashes of a PEM boundary line. */
static bool after_pem_boundary(const char *out, size_t used)
{
    return used >= 5 && memcmp(out + used - 5, "-----", 5) == 0;
}

char *json_body_repair(const char *body, size_t len, size_t *ret_len)
{
    /* At most 6 bytes out for one in ("\u00XX"), and the NUL. */
    char *out = malloc(len * 6 + 1);
    bool in_string = false;
    size_t used = 0;

    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)body[i];

        if (!in_string) {
            in_string = ch == '"';
            out[used++] = (char)ch;
            continue;
        }
        if (ch == '"') {
            in_string = false;
            out[used++] = '"';
        } else if (ch == '\\' && i + 1 < len && body[i + 1] == '\n') {
            memcpy(out + used, "\\n", 2);
            used += 2;
            i++;
        } else if (ch == '\\' && i + 2 < len && body[i + 1] == '\r' && body[i + 2] == '\n') {
            memcpy(out + used, "\\n", 2);
            used += 2;
            i += 2;
        } else if (ch == '\\' && i + 1 < len && body[i + 1] == '"' &&
                   after_pem_boundary(out, used) && closes_value(body, len, i + 1)) {
            memcpy(out + used, "\\n\"", 3);
            used += 3;
            in_string = false;
            i++;
        } else if (ch == '\\' && i + 1 < len) {
            out[used++] = '\\'; /* an escape as JSON has it: copied, with what it escapes */
            out[used++] = body[++i];
        } else if (ch == '\n' || ch == '\r' || ch == '\t') {
            out[used++] = '\\';
            out[used++] = ch == '\n' ? 'n' : ch == '\r' ? 'r' : 't';
        } else if (ch < 0x20) {
            used += (size_t)snprintf(out + used, 7, "\\u%04x", ch);
        } else {
            out[used++] = (char)ch;
        }
    }
    out[used] = '\0';
    *ret_len = used;
    return out;
}

static void set_error(struct json_body_error *error, const json_error_t *from)
{
    *error = (struct json_body_error){
        .line = from->line,
        .column = from->column,
        .position = from->position,
        /* jansson's words for bytes that are not UTF-8. */
        .binary = strncmp(from->text, "unable to decode byte", 21) == 0,
    };
    snprintf(error->text, sizeof(error->text), "%s", from->text);
}

/*
 * Finds a string holding a NUL byte in value (at path) and writes where it is
 * into ret_path. Returns true when there is one.
 */
static bool find_nul(json_t *value, const char *path, char *ret_path, size_t len)
{
    char inner[64];
    const char *key;
    json_t *member;
    size_t i;

    if (json_is_string(value) && strlen(json_string_value(value)) != json_string_length(value)) {
        snprintf(ret_path, len, "%s", path);
        return true;
    }
    json_object_foreach(value, key, member)
    {
        snprintf(inner, sizeof(inner), "%s%s%s", path, *path ? "." : "", key);
        if (find_nul(member, inner, ret_path, len))
            return true;
    }
    json_array_foreach(value, i, member)
    {
        snprintf(inner, sizeof(inner), "%s[%zu]", path, i);
        if (find_nul(member, inner, ret_path, len))
            return true;
    }
    return false;
}

json_t *json_body_parse(const char *body, size_t len, struct json_body_error *error)
{
    /* NULs are let through the parser to be found and named below, with a message of ours. */
    const size_t flags = JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL;
    json_error_t strict, repaired_error;
    json_t *value = json_loadb(body, len, flags, &strict);
    char field[sizeof(error->field)];
    size_t repaired_len;
    char *repaired;

    if (!value) {
        repaired = json_body_repair(body, len, &repaired_len);
        if (repaired) {
            value = json_loadb(repaired, repaired_len, flags, &repaired_error);
            /* Keys may have been in the repaired text: wipe it as a key would be. */
            explicit_bzero(repaired, repaired_len);
            free(repaired);
        }
        if (!value) {
            set_error(error, &strict);
            return NULL;
        }
    }
    if (!json_is_object(value)) {
        json_decref(value);
        *error = (struct json_body_error){.line = 1, .column = 1, .position = 0};
        snprintf(error->text, sizeof(error->text), "not a JSON object");
        return NULL;
    }
    if (find_nul(value, "", field, sizeof(field))) {
        json_decref(value);
        *error = (struct json_body_error){.line = 1, .column = 1, .position = 0, .binary = true};
        snprintf(error->field, sizeof(error->field), "%s", field);
        snprintf(error->text, sizeof(error->text), "'%s' holds a NUL byte", field);
        return NULL;
    }
    return value;
}
