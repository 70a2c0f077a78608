/* Reading a configuration file for libconfuse: comments blanked, quotes and braces checked. */
#include "conf_text.h"

#include "cv_error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_all(const char *path, char **ret_text, size_t *ret_len, char *err, size_t err_len)
{
    FILE *f = fopen(path, "re");
    char *text;
    size_t len;

    if (!f) {
        snprintf(err, err_len, "%s: cannot read: %s", path, strerror(errno));
        return CV_ECONFIG;
    }
    text = malloc(CONF_TEXT_MAX_BYTES + 1);
    if (!text) {
        fclose(f);
        return -ENOMEM;
    }
    len = fread(text, 1, CONF_TEXT_MAX_BYTES + 1, f);
    fclose(f);
    if (len > CONF_TEXT_MAX_BYTES) {
        free(text);
        snprintf(err, err_len, "%s: larger than %d bytes", path, CONF_TEXT_MAX_BYTES);
        return CV_ECONFIG;
    }
    text[len] = '\0';
    if (strlen(text) != len) {
        free(text);
        snprintf(err, err_len, "%s: contains a NUL byte; not a text file", path);
        return CV_ECONFIG;
    }
    *ret_text = text;
    *ret_len = len;
    return 0;
}

/* Blanks from p up to (not including) the end of the comment; returns where scanning resumes. */
static char *blank_until(char *p, const char *end_mark, int *line)
{
    char *end = strstr(p, end_mark);
    char *stop = end ? end + (end_mark[0] == '\n' ? 0 : strlen(end_mark)) : p + strlen(p);

    for (char *q = p; q < stop; q++) {
        if (*q == '\n')
            (*line)++;
        else
            *q = ' ';
    }
    return stop;
}

int conf_text_load(const char *path, char **ret_text, char *err, size_t err_len)
{
    char *text, quote = 0;
    size_t len;
    int line = 1, quote_line = 0, depth = 0, open_line[64] = {0};
    int r = read_all(path, &text, &len, err, err_len);

    if (r < 0)
        return r;
    for (char *p = text; *p;) {
        if (quote) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == quote)
                quote = 0;
            else if (*p == '\n')
                line++;
            p++;
        } else if (*p == '"' || *p == '\'') {
            quote = *p++;
            quote_line = line;
        } else if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
            p = blank_until(p, "\n", &line);
        } else if (p[0] == '/' && p[1] == '*') {
            if (!strstr(p + 2, "*/")) {
                snprintf(err, err_len, "%s:%d: comment '/*' is never closed", path, line);
                free(text);
                return CV_ECONFIG;
            }
            p = blank_until(p, "*/", &line);
        } else {
            if (*p == '{') {
                if (depth < 64)
                    open_line[depth] = line;
                depth++;
            } else if (*p == '}' && depth > 0) {
                depth--;
            } else if (*p == '\n') {
                line++;
            }
            p++;
        }
    }
    if (quote) {
        snprintf(err, err_len, "%s:%d: quoted string is never closed", path, quote_line);
        r = CV_ECONFIG;
    } else if (depth > 0) {
        snprintf(err, err_len, "%s:%d: '{' is never closed (the file ends inside a section)", path,
                 open_line[depth - 1 < 64 ? depth - 1 : 63]);
        r = CV_ECONFIG;
    }
    if (r < 0) {
        free(text);
        return r;
    }
    *ret_text = text;
    return 0;
}

int conf_text_option_line(const char *path, const char *option)
{
    FILE *f = fopen(path, "re");
    size_t len = strlen(option);
    char line[1024];
    int number = 0, found = 0;

    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f)) {
        const char *p = line + strspn(line, " \t");

        number++;
        if (strncmp(p, option, len) == 0 && strchr(" \t=", p[len]))
            found = number; /* the last assignment is the one in force */
    }
    fclose(f);
    return found;
}

bool conf_text_opens_section(const char *line, const char *kind, const char *title)
{
    const char *p = line + strspn(line, " \t");
    size_t kind_len = strlen(kind), len = strlen(title);

    if (strncmp(p, kind, kind_len) != 0 || (p[kind_len] != ' ' && p[kind_len] != '\t'))
        return false;
    p += kind_len + strspn(p + kind_len, " \t");
    if (*p == '"')
        p++;
    return strncmp(p, title, len) == 0 && (p[len] == '\0' || strchr("\" \t{\n", p[len]));
}

int conf_text_section_line(const char *path, const char *kind, const char *title)
{
    char err[256], *text;
    int number = 0, found = 0;

    if (conf_text_load(path, &text, err, sizeof(err)) < 0)
        return 0;
    for (char *line = text, *next; line && !found; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        number++;
        if (conf_text_opens_section(line, kind, title))
            found = number;
    }
    free(text);
    return found;
}
