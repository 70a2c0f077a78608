/* Reads the services' process record (records.h): every field checked, nothing acted on. */
#include "records.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The settings digest: 64 lower-case hex digits (an empty one when the digest failed). */
static bool digest_ok(const char *text)
{
    size_t len = strlen(text);

    if (len != 0 && len != 64)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f')))
            return false;
    return true;
}

static bool record_from_json(json_t *object, struct service_record *out)
{
    const char *name = NULL, *state = NULL, *settings = NULL, *binary = "";
    json_int_t pid = 0, start_time = 0, loaded_usec = 0, restarts = 0, crashes = 0;

    if (json_unpack(object, "{s:s, s:I, s:I, s:s, s:s, s:I, s?:I, s?:s, s?:I}", "name", &name,
                    "pid", &pid, "start_time", &start_time, "state", &state, "settings", &settings,
                    "loaded_usec", &loaded_usec, "restarts", &restarts, "binary", &binary,
                    "crashes", &crashes) < 0)
        return false;
    if (name[0] == '\0' || strlen(name) > 255 || pid <= 1 || pid > INT_MAX || start_time < 0 ||
        loaded_usec < 0 || restarts < 0 || restarts > UINT_MAX || crashes < 0 ||
        crashes > restarts || strlen(state) > 32 || !digest_ok(settings) || strlen(binary) > 64)
        return false;
    *out = (struct service_record){.name = name,
                                   .pid = (pid_t)pid,
                                   .start_time = (unsigned long long)start_time,
                                   .state = state,
                                   .settings = settings,
                                   .loaded_usec = (uint64_t)loaded_usec,
                                   .restarts = (unsigned)restarts,
                                   .crashes = (unsigned)crashes,
                                   .binary = binary};
    return true;
}

static void read_operator_stopped(json_t *list, struct service_records *out)
{
    size_t n = json_array_size(list);

    if (n == 0 || n > SERVICE_RECORDS_MAX)
        return;
    out->operator_stopped = calloc(n, sizeof(*out->operator_stopped));
    if (!out->operator_stopped)
        return;
    for (size_t i = 0; i < n; i++) {
        const char *name = json_string_value(json_array_get(list, i));

        if (name && name[0] != '\0' && strlen(name) <= 255)
            out->operator_stopped[out->n_operator_stopped++] = name;
        else
            out->malformed++;
    }
}

int service_records_from_json(json_t *root, struct service_records *out, char *err, size_t err_len)
{
    json_t *services = json_object_get(root, "services");
    json_t *version = json_object_get(root, "version");
    size_t n = json_array_size(services);

    memset(out, 0, sizeof(*out));
    if (!json_is_object(root) || !json_is_integer(version) ||
        json_integer_value(version) != SERVICE_RECORDS_VERSION || !json_is_array(services)) {
        snprintf(err, err_len, "not a version %d record", SERVICE_RECORDS_VERSION);
        return -EINVAL;
    }
    if (n > SERVICE_RECORDS_MAX) {
        snprintf(err, err_len, "%zu records, more than the %d allowed", n, SERVICE_RECORDS_MAX);
        return -EINVAL;
    }
    out->root = json_incref(root);
    out->items = calloc(n ? n : 1, sizeof(*out->items));
    if (!out->items) {
        service_records_free(out);
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (record_from_json(json_array_get(services, i), &out->items[out->n]))
            out->n++;
        else
            out->malformed++;
    }
    read_operator_stopped(json_object_get(root, "operator_stopped"), out);
    return 0;
}

int service_records_parse(const char *text, size_t len, struct service_records *out, char *err,
                          size_t err_len)
{
    json_error_t error;
    json_t *root;
    int r;

    memset(out, 0, sizeof(*out));
    if (len > SERVICE_RECORDS_MAX_BYTES) {
        snprintf(err, err_len, "%zu bytes, more than the %d allowed", len,
                 SERVICE_RECORDS_MAX_BYTES);
        return -EINVAL;
    }
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &error);
    if (!root) {
        snprintf(err, err_len, "line %d: %s", error.line, error.text);
        return -EINVAL;
    }
    r = service_records_from_json(root, out, err, err_len);
    json_decref(root);
    return r;
}

void service_records_free(struct service_records *records)
{
    free(records->items);
    free(records->operator_stopped);
    json_decref(records->root);
    memset(records, 0, sizeof(*records));
}
