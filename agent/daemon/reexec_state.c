/* Reads what a re-exec handed over (reexec_state.h): every number and descriptor checked. */
#include "reexec_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool fd_ok(json_int_t fd)
{
    return fd >= 3 && fd < REEXEC_MAX_FD;
}

/* An optional descriptor field: absent or -1 means none. */
static int optional_fd(json_t *root, const char *key, int *out, char *err, size_t err_len)
{
    json_t *value = json_object_get(root, key);

    *out = -1;
    if (!value || (json_is_integer(value) && json_integer_value(value) == -1))
        return 0;
    if (!json_is_integer(value) || !fd_ok(json_integer_value(value))) {
        snprintf(err, err_len, "'%s' is not a descriptor number", key);
        return -EINVAL;
    }
    *out = (int)json_integer_value(value);
    return 0;
}

static int fd_list(json_t *root, const char *key, int *out, size_t max, size_t *n, char *err,
                   size_t err_len)
{
    json_t *list = json_object_get(root, key);

    *n = 0;
    if (!list)
        return 0;
    if (!json_is_array(list) || json_array_size(list) > max) {
        snprintf(err, err_len, "'%s' is not a list of at most %zu descriptors", key, max);
        return -EINVAL;
    }
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *fd = json_array_get(list, i);

        if (!json_is_integer(fd) || !fd_ok(json_integer_value(fd))) {
            snprintf(err, err_len, "'%s' holds something that is not a descriptor number", key);
            return -EINVAL;
        }
        out[(*n)++] = (int)json_integer_value(fd);
    }
    return 0;
}

static int compare_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;

    return (x > y) - (x < y);
}

size_t reexec_state_fds(const struct reexec_state *state, int *fds)
{
    size_t n = 0;

    if (state->control_fd >= 0)
        fds[n++] = state->control_fd;
    if (state->notify_fd >= 0)
        fds[n++] = state->notify_fd;
    for (size_t i = 0; i < state->n_reply_fds; i++)
        fds[n++] = state->reply_fds[i];
    for (size_t i = 0; i < state->n_fifo_fds; i++)
        fds[n++] = state->fifo_fds[i];
    for (size_t i = 0; i < state->n_conn_fds; i++)
        fds[n++] = state->conn_fds[i];
    qsort(fds, n, sizeof(fds[0]), compare_int);
    return n;
}

/* A descriptor named twice would be closed twice, the second time someone else's. */
static bool fds_distinct(const struct reexec_state *state)
{
    int fds[REEXEC_MAX_FDS];
    size_t n = reexec_state_fds(state, fds); /* sorted: a twin is a neighbour */

    for (size_t i = 1; i < n; i++)
        if (fds[i] == fds[i - 1])
            return false;
    return true;
}

static int parse_root(json_t *root, struct reexec_state *out, char *err, size_t err_len)
{
    json_int_t version = 0, began_usec = 0, reexecs = 0, started_at = 0;
    const char *binary = NULL, *from = NULL;
    json_t *records = NULL;
    int r;

    /* The version first: a newer binary's state may have other fields. */
    if (json_unpack(root, "{s:I}", "version", &version) < 0) {
        snprintf(err, err_len, "not a re-exec state: no version");
        return -EINVAL;
    }
    if (version != REEXEC_STATE_VERSION) {
        snprintf(err, err_len, "version %lld, this binary reads version %d", (long long)version,
                 REEXEC_STATE_VERSION);
        return -EPROTO;
    }
    if (json_unpack(root, "{s:s, s:s, s:I, s:I, s:I, s:o}", "binary", &binary, "from_version",
                    &from, "began_usec", &began_usec, "reexecs", &reexecs, "started_at",
                    &started_at, "services", &records) < 0) {
        snprintf(err, err_len, "not a re-exec state: a field is missing or of the wrong type");
        return -EINVAL;
    }
    if (began_usec < 0 || reexecs < 0 || started_at < 0) {
        snprintf(err, err_len, "a negative count or time");
        return -EINVAL;
    }
    out->binary = binary;
    out->version = from;
    out->began_usec = (uint64_t)began_usec;
    out->reexecs = (uint64_t)reexecs;
    out->started_at = started_at;
    if ((r = optional_fd(root, "control_fd", &out->control_fd, err, err_len)) < 0 ||
        (r = optional_fd(root, "notify_fd", &out->notify_fd, err, err_len)) < 0 ||
        (r = fd_list(root, "reply_fds", out->reply_fds, REEXEC_MAX_REPLIES, &out->n_reply_fds, err,
                     err_len)) < 0 ||
        (r = fd_list(root, "fifo_fds", out->fifo_fds, REEXEC_MAX_FIFOS, &out->n_fifo_fds, err,
                     err_len)) < 0 ||
        (r = fd_list(root, "conn_fds", out->conn_fds, REEXEC_MAX_CONNS, &out->n_conn_fds, err,
                     err_len)) < 0)
        return r;
    if (!fds_distinct(out)) {
        snprintf(err, err_len, "a descriptor is named twice");
        return -EINVAL;
    }
    return service_records_from_json(records, &out->records, err, err_len);
}

int reexec_state_parse(const char *text, size_t len, struct reexec_state *out, char *err,
                       size_t err_len)
{
    json_error_t error;
    int r;

    memset(out, 0, sizeof(*out));
    out->control_fd = out->notify_fd = -1;
    if (len > REEXEC_STATE_MAX_BYTES) {
        snprintf(err, err_len, "%zu bytes, more than the %d allowed", len, REEXEC_STATE_MAX_BYTES);
        return -EINVAL;
    }
    out->root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &error);
    if (!out->root) {
        snprintf(err, err_len, "not JSON: line %d: %s", error.line, error.text);
        return -EINVAL;
    }
    r = parse_root(out->root, out, err, err_len);
    if (r < 0)
        reexec_state_free(out);
    return r;
}

void reexec_state_free(struct reexec_state *state)
{
    service_records_free(&state->records);
    json_decref(state->root);
    memset(state, 0, sizeof(*state));
    state->control_fd = state->notify_fd = -1;
}
