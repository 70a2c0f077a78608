/* A line diff of two texts (rendered files), for --dry-run: every line is shown, none is cut. */
#ifndef CERTVISOR_TEXT_DIFF_H
#define CERTVISOR_TEXT_DIFF_H

/*
 * The largest table (old lines x new lines of the part between the common first and last lines)
 * aligned line by line: 4 MiB of memory. A larger changed part is shown as replaced, every old
 * line removed and then every new line added, which is still the whole diff.
 */
#define TEXT_DIFF_MAX_CELLS (1024u * 1024u)

/*
 * Returns (malloc'd) a unified-style diff of old_text and new_text: a
 * "--- label" / "+++ label" header, then every line of both texts prefixed
 * with ' ' (kept), '-' (removed) or '+' (added); no line is ever left out,
 * whatever the length. NULL when out of memory.
 */
char *text_diff(const char *label, const char *old_text, const char *new_text);

#endif
