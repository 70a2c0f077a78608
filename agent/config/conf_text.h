/* Reading a configuration file for libconfuse: comments blanked, quotes and braces checked. */
#ifndef CERTVISOR_CONF_TEXT_H
#define CERTVISOR_CONF_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#define CONF_TEXT_MAX_BYTES (1024 * 1024)

/*
 * Reads path into a malloc'd, NUL-terminated buffer in which every comment
 * ('#' or '//' to the end of the line, and '/' '*' ... '*' '/') is replaced by
 * spaces, newlines kept. libconfuse miscounts lines after comments and accepts
 * a section left open at the end of a file; parsing this buffer instead keeps
 * its line numbers exact, and the unbalanced cases are refused here.
 * Returns 0, or a negative errno / CV_ECONFIG with "path:line: problem" in err.
 */
int conf_text_load(const char *path, char **ret_text, char *err, size_t err_len);

/* Returns the line where option is last assigned in the file at path ("option = ..."), or 0. */
int conf_text_option_line(const char *path, const char *option);

/* True when line opens a "kind title {" section (the title quoted or not). */
bool conf_text_opens_section(const char *line, const char *kind, const char *title);

/* Returns the line that opens the first "kind title" section in the file at path, or 0. */
int conf_text_section_line(const char *path, const char *kind, const char *title);

#endif
