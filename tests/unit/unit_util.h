/* Helpers shared by the unit tests: a temporary directory and files in it. */
#ifndef CERTVISOR_UNIT_UTIL_H
#define CERTVISOR_UNIT_UTIL_H

#include <stddef.h>

/* Creates /tmp/cv-<tag>-XXXXXX into dir (at least 64 bytes); fails the test on error. */
void unit_make_tempdir(char *dir, size_t len, const char *tag);

/* Removes dir and everything below it. */
void unit_remove_tree(const char *dir);

/* Writes text to dir/relative (relative may contain one directory, such as "conf.d/x.conf"). */
void unit_write_file(const char *dir, const char *relative, const char *text);

#endif
