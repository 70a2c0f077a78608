/* The text of rendered files: "key = value" lines, read whole from disk, one line at a time. */
#include "kv_text.h"

#include "cv_error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Trims blanks from both ends of [*start, *start + *len). */
static void trim(const char **start, size_t *len)
{
    while (*len && is_blank(**start)) {
        (*start)++;
        (*len)--;
    }
    while (*len && is_blank((*start)[*len - 1]))
        (*len)--;
}

static bool has_control(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];

        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return true;
    }
    return false;
}

/* Splits one trimmed, non-empty line into line. */
static int split(const char *text, size_t len, struct kv_line *line, char *err, size_t err_len)
{
    const char *eq = memchr(text, '=', len);

    if (text[0] == '[' && text[len - 1] == ']' && len > 2) {
        line->key = NULL;
        line->key_len = 0;
        line->value = text + 1;
        line->value_len = len - 2;
        trim(&line->value, &line->value_len);
    } else if (eq) {
        line->key = text;
        line->key_len = (size_t)(eq - text);
        trim(&line->key, &line->key_len);
        line->value = eq + 1;
        line->value_len = (size_t)(text + len - line->value);
        trim(&line->value, &line->value_len);
        if (line->key_len == 0) {
            snprintf(err, err_len, "line %d: expected 'key = value'", line->number);
            return CV_EINVALID_TLS;
        }
    } else {
        snprintf(err, err_len, "line %d: expected 'key = value'", line->number);
        return CV_EINVALID_TLS;
    }
    if (line->value_len == 0) {
        snprintf(err, err_len, "line %d: %.*s has no value", line->number,
                 (int)(line->key_len > 64 ? 64 : line->key_len), line->key ? line->key : "[]");
        return CV_EINVALID_TLS;
    }
    if (has_control(line->value, line->value_len)) {
        snprintf(err, err_len, "line %d: %.*s contains a control character", line->number,
                 (int)(line->key_len > 64 ? 64 : line->key_len),
                 line->key ? line->key : "the heading");
        return CV_EINVALID_TLS;
    }
    return 1;
}

int kv_next(const char **cursor, int *number, struct kv_line *line, char *err, size_t err_len)
{
    while (**cursor) {
        const char *text = *cursor;
        const char *nl = strchr(text, '\n');
        size_t len = nl ? (size_t)(nl - text) : strlen(text);

        *cursor = text + len + (nl ? 1 : 0);
        line->number = ++*number;
        trim(&text, &len);
        if (len == 0 || text[0] == '#')
            continue;
        return split(text, len, line, err, err_len);
    }
    return 0;
}

bool kv_key_is(const struct kv_line *line, const char *key)
{
    return line->key && strlen(key) == line->key_len && memcmp(line->key, key, line->key_len) == 0;
}

int kv_read_file(const char *path, size_t max, char **ret_text, char *err, size_t err_len)
{
    struct stat st;
    size_t len = 0;
    char *text;
    ssize_t n;
    int fd, r;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0 || fstat(fd, &st) < 0) {
        r = -errno;
        snprintf(err, err_len, "%s: cannot read: %s", path, strerror(-r));
        if (fd >= 0)
            close(fd);
        return r;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, err_len, "%s: not a regular file", path);
        close(fd);
        return CV_EINVALID_TLS;
    }
    text = malloc(max + 2);
    if (!text) {
        close(fd);
        snprintf(err, err_len, "%s: out of memory", path);
        return -ENOMEM;
    }
    /* Read one byte more than allowed, to tell a full file from a too large one. */
    while (len <= max) {
        n = read(fd, text + len, max + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            snprintf(err, err_len, "%s: cannot read: %s", path, strerror(-r));
            free(text);
            close(fd);
            return r;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (len > max) {
        snprintf(err, err_len, "%s: larger than %zu bytes", path, max);
        free(text);
        return CV_EINVALID_TLS;
    }
    text[len] = '\0';
    if (strlen(text) != len) {
        snprintf(err, err_len, "%s: contains a NUL byte; not a text file", path);
        free(text);
        return CV_EINVALID_TLS;
    }
    *ret_text = text;
    return 0;
}
