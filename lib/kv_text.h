/* The text of rendered files: "key = value" lines, read whole from disk, one line at a time. */
#ifndef CERTVISOR_KV_TEXT_H
#define CERTVISOR_KV_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* One meaningful line: a "key = value" setting, or a "[name]" section heading (key NULL). */
struct kv_line {
    int number; /* 1-based */
    const char *key;
    size_t key_len;
    const char *value; /* the setting's value, or the heading's name; trimmed, never empty */
    size_t value_len;
};

/*
 * Returns the next meaningful line of the text at *cursor (blank and '#'
 * lines are skipped; *number counts every line): 1 with *line filled, 0 at
 * the end, or CV_EINVALID_TLS with "line N: problem" in err for a line that
 * is neither, an empty key or value, or a value with a control character.
 */
int kv_next(const char **cursor, int *number, struct kv_line *line, char *err, size_t err_len);

/* True when the line's key is key. */
bool kv_key_is(const struct kv_line *line, const char *key);

/*
 * Reads the regular file at path whole (at most max bytes, no NUL byte) into
 * a malloc'd NUL-terminated string. Returns 0, or a negative errno or
 * CV_EINVALID_TLS with a message that names the path.
 */
int kv_read_file(const char *path, size_t max, char **ret_text, char *err, size_t err_len);

#endif
