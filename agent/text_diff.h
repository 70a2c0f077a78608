/* A line diff of two short texts (rendered files), for --dry-run. */
#ifndef CERTVISOR_TEXT_DIFF_H
#define CERTVISOR_TEXT_DIFF_H

/*
 * Returns (malloc'd) a unified-style diff of old_text and new_text: a
 * "--- label" / "+++ label" header, then every line prefixed with ' ' (kept),
 * '-' (removed) or '+' (added). Meant for files of a few hundred lines at
 * most; longer inputs are compared as wholly replaced. NULL when out of memory.
 */
char *text_diff(const char *label, const char *old_text, const char *new_text);

#endif
