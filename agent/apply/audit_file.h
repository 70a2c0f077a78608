/* The audit log on disk: an append-only text file, one line per entry, rotated by size. */
#ifndef CERTVISOR_AUDIT_FILE_H
#define CERTVISOR_AUDIT_FILE_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

/*
 * Each line is "<time>\t<who>\t<message>\n": the time in UTC as
 * 2025-01-31T12:00:00Z, then the two fields with backslash, tab, newline and
 * the other control characters escaped (\\, \t, \n, \xHH), so that one entry
 * is always one line, whatever a user name holds. The file is created 0640
 * and written with O_APPEND, one write() per entry. When an entry would take
 * the file past max_bytes, it is rotated first: path.(keep-1) becomes
 * path.keep (the oldest goes), ..., path becomes path.1, and a new path is
 * started.
 */
struct audit_file;

/* The longest line written: a longer message is cut, ending in "...". */
#define AUDIT_FILE_LINE_MAX 4096

/* Opens (creating) path for appending. keep >= 1. Returns 0, or -errno with a message. */
int audit_file_open(const char *path, size_t max_bytes, unsigned keep, struct audit_file **ret_file,
                    char *err, size_t err_len);

/* audit_file_close(NULL) is a no-op. */
void audit_file_close(struct audit_file *file);

/*
 * Appends one entry, rotating first when it would not fit. Returns 0, or
 * -errno (the entry is lost; the file stays usable for the next one).
 */
int audit_file_append(struct audit_file *file, time_t when, const char *who, const char *message);

/* The descriptor being appended to (it changes at a rotation), for an fsync elsewhere. */
int audit_file_fd(const struct audit_file *file);

typedef void (*audit_file_entry_fn)(void *data, time_t when, const char *who, const char *message);

/*
 * Calls fn for every entry of path.keep, ..., path.1 and path, oldest first.
 * Missing files are skipped, and so are lines that do not parse (a line cut
 * by a crash). Returns the number of entries, or -errno when a file that
 * exists cannot be read.
 */
int audit_file_read(const char *path, unsigned keep, audit_file_entry_fn fn, void *data);

/* One entry as its line (with the '\n') into buf. Returns the length, cut to fit len. */
size_t audit_file_format(char *buf, size_t len, time_t when, const char *who, const char *message);

/*
 * Parses one line (without its '\n') in place into its fields. Returns 0, or
 * -EINVAL when it is not an entry.
 */
int audit_file_parse(char *line, time_t *ret_when, char **ret_who, char **ret_message);

#endif
