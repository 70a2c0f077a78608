/* The audit log on disk: an append-only text file, one line per entry, rotated by size. */
#include "audit_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define AUDIT_FILE_MODE 0640

struct audit_file {
    char *path;
    int fd;
    size_t size; /* bytes in the file now, to decide a rotation without a stat */
    size_t max_bytes;
    unsigned keep;
};

static int open_for_append(const char *path, size_t *ret_size)
{
    struct stat st;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, AUDIT_FILE_MODE);

    if (fd < 0)
        return -errno;
    /* The mode is exact whatever the umask, and a file that was widened by hand is narrowed. */
    if (fstat(fd, &st) < 0 || fchmod(fd, AUDIT_FILE_MODE) < 0) {
        int r = -errno;

        close(fd);
        return r;
    }
    *ret_size = (size_t)st.st_size;
    return fd;
}

int audit_file_open(const char *path, size_t max_bytes, unsigned keep, struct audit_file **ret_file,
                    char *err, size_t err_len)
{
    struct audit_file *file;
    int fd;

    if (keep < 1 || max_bytes < AUDIT_FILE_LINE_MAX) {
        snprintf(err, err_len, "audit log %s: keep at least 1 rotated file and %d bytes a file",
                 path, AUDIT_FILE_LINE_MAX);
        return -EINVAL;
    }
    file = calloc(1, sizeof(*file));
    if (!file || !(file->path = strdup(path))) {
        free(file);
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    fd = open_for_append(path, &file->size);
    if (fd < 0) {
        snprintf(err, err_len, "cannot open the audit log %s: %s", path, strerror(-fd));
        free(file->path);
        free(file);
        return fd;
    }
    file->fd = fd;
    file->max_bytes = max_bytes;
    file->keep = keep;
    *ret_file = file;
    return 0;
}

void audit_file_close(struct audit_file *file)
{
    if (!file)
        return;
    close(file->fd);
    free(file->path);
    free(file);
}

int audit_file_fd(const struct audit_file *file)
{
    return file->fd;
}

static void numbered(char *buf, size_t len, const char *path, unsigned n)
{
    snprintf(buf, len, "%s.%u", path, n);
}

/* path.(keep-1) -> path.keep, ..., path -> path.1, then a new path. Renames only: no copy. */
static int rotate(struct audit_file *file)
{
    char from[PATH_MAX], to[PATH_MAX];
    size_t size = 0;
    int fd;

    for (unsigned n = file->keep; n > 1; n--) {
        numbered(from, sizeof(from), file->path, n - 1);
        numbered(to, sizeof(to), file->path, n);
        if (rename(from, to) < 0 && errno != ENOENT)
            return -errno;
    }
    numbered(to, sizeof(to), file->path, 1);
    if (rename(file->path, to) < 0)
        return -errno;
    fd = open_for_append(file->path, &size);
    if (fd < 0)
        return fd; /* the entries go on into path.1 until a rotation succeeds */
    close(file->fd);
    file->fd = fd;
    file->size = size;
    return 0;
}

int audit_file_append(struct audit_file *file, time_t when, const char *who, const char *message)
{
    char line[AUDIT_FILE_LINE_MAX];
    size_t len = audit_file_format(line, sizeof(line), when, who, message);
    ssize_t n;

    /* A failed rotation is tried again at the next entry; this one is kept all the same. */
    if (file->size > 0 && file->size + len > file->max_bytes)
        rotate(file);
    /* One write() with O_APPEND: a crash leaves the line whole or absent, never interleaved. */
    do
        n = write(file->fd, line, len);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    file->size += (size_t)n;
    return (size_t)n == len ? 0 : -ENOSPC;
}

/* Escapes in into out (room bytes), whole escapes only. Returns the bytes written. */
static size_t escape(char *out, size_t room, const char *in, bool *ret_cut)
{
    size_t used = 0;

    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        char esc[5];
        size_t n;

        if (*p == '\\')
            n = (size_t)snprintf(esc, sizeof(esc), "\\\\");
        else if (*p == '\t')
            n = (size_t)snprintf(esc, sizeof(esc), "\\t");
        else if (*p == '\n')
            n = (size_t)snprintf(esc, sizeof(esc), "\\n");
        else if (*p < 0x20 || *p == 0x7f)
            n = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", *p);
        else
            n = (size_t)snprintf(esc, sizeof(esc), "%c", *p);
        if (used + n > room) {
            *ret_cut = true;
            break;
        }
        memcpy(out + used, esc, n);
        used += n;
    }
    return used;
}

size_t audit_file_format(char *buf, size_t len, time_t when, const char *who, const char *message)
{
    static const char cut_mark[] = "...";
    struct tm tm;
    size_t used, room;
    bool cut = false;

    if (len < 64) {
        if (len)
            buf[0] = '\0';
        return 0;
    }
    if (!gmtime_r(&when, &tm))
        memset(&tm, 0, sizeof(tm));
    used = strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ\t", &tm);
    room = len - sizeof(cut_mark) - 1; /* the mark, the newline and the NUL always fit */
    used += escape(buf + used, (room - used) / 2, who, &cut);
    buf[used++] = '\t';
    used += escape(buf + used, room - used, message, &cut);
    if (cut) {
        memcpy(buf + used, cut_mark, sizeof(cut_mark) - 1);
        used += sizeof(cut_mark) - 1;
    }
    buf[used++] = '\n';
    buf[used] = '\0';
    return used;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Undoes escape() in place; an unknown escape is kept as it stands. */
static void unescape(char *s)
{
    char *out = s;

    for (char *p = s; *p; p++) {
        if (*p != '\\' || !p[1]) {
            *out++ = *p;
            continue;
        }
        if (p[1] == '\\' || p[1] == 't' || p[1] == 'n') {
            *out++ = p[1] == 't' ? '\t' : p[1] == 'n' ? '\n' : '\\';
            p++;
        } else if (p[1] == 'x' && hex_digit(p[2]) >= 0 && hex_digit(p[3]) >= 0) {
            *out++ = (char)(hex_digit(p[2]) * 16 + hex_digit(p[3]));
            p += 3;
        } else {
            *out++ = *p;
        }
    }
    *out = '\0';
}

int audit_file_parse(char *line, time_t *ret_when, char **ret_who, char **ret_message)
{
    char *who = strchr(line, '\t'), *message, *end;
    struct tm tm;

    if (!who)
        return -EINVAL;
    *who++ = '\0';
    message = strchr(who, '\t');
    if (!message)
        return -EINVAL;
    *message++ = '\0';
    memset(&tm, 0, sizeof(tm));
    end = strptime(line, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!end || *end)
        return -EINVAL;
    unescape(who);
    unescape(message);
    *ret_when = timegm(&tm);
    *ret_who = who;
    *ret_message = message;
    return 0;
}

static int read_one(const char *path, audit_file_entry_fn fn, void *data)
{
    FILE *f = fopen(path, "re");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int count = 0;

    if (!f)
        return errno == ENOENT ? 0 : -errno;
    while ((len = getline(&line, &cap, f)) >= 0) {
        char *who, *message;
        time_t when;

        if (len > 0 && line[len - 1] == '\n')
            line[len - 1] = '\0';
        if (audit_file_parse(line, &when, &who, &message) < 0)
            continue;
        fn(data, when, who, message);
        count++;
    }
    free(line);
    fclose(f);
    return count;
}

int audit_file_read(const char *path, unsigned keep, audit_file_entry_fn fn, void *data)
{
    char name[PATH_MAX];
    int total = 0;

    for (unsigned n = keep + 1; n-- > 0;) {
        int r;

        if (n > 0)
            numbered(name, sizeof(name), path, n);
        r = read_one(n > 0 ? name : path, fn, data);
        if (r < 0)
            return r;
        total += r;
    }
    return total;
}
