/* Small file-system helpers that must be right once: complete writes, durable atomic replacement.
 */
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int fs_read_all(int fd, size_t max, char **ret_text, size_t *ret_len)
{
    size_t cap = max < 4096 ? max + 1 : 4096, len = 0;
    char *text = malloc(cap + 1);

    if (!text)
        return -ENOMEM;
    for (;;) {
        ssize_t n;

        if (len == cap) {
            char *bigger;

            if (cap > max) {
                free(text);
                return -EFBIG;
            }
            cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            bigger = realloc(text, cap + 1);
            if (!bigger) {
                free(text);
                return -ENOMEM;
            }
            text = bigger;
        }
        n = read(fd, text + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int r = -errno;

            free(text);
            return r;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > max) {
        free(text);
        return -EFBIG;
    }
    text[len] = '\0';
    *ret_text = text;
    *ret_len = len;
    return 0;
}

void fs_own_binary(char *buf, size_t len)
{
    static const char deleted[] = " (deleted)";
    ssize_t n = readlink("/proc/self/exe", buf, len - 1);
    size_t used;

    buf[n > 0 ? n : 0] = '\0';
    used = strlen(buf);
    if (used > strlen(deleted) && strcmp(buf + used - strlen(deleted), deleted) == 0)
        buf[used - strlen(deleted)] = '\0';
}

int fs_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r;

    if (fd < 0)
        return -errno;
    r = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return r;
}

int fs_fsync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    int r;

    if (!slash)
        dir = strdup(".");
    else if (slash == path)
        dir = strdup("/");
    else
        dir = strndup(path, (size_t)(slash - path));
    if (!dir)
        return -ENOMEM;
    r = fs_fsync_dir(dir);
    free(dir);
    return r;
}

/* Writes, syncs and closes the temporary file; err names the failing step. */
static int fill_temporary(int fd, const char *tmp, const char *path, const void *data, size_t len,
                          mode_t mode, char *err, size_t err_len)
{
    int r;

    if (fchmod(fd, mode) < 0) {
        r = -errno;
        snprintf(err, err_len, "%s: cannot set the mode of %s: %s", path, tmp, strerror(-r));
        return r;
    }
    r = fs_write_all(fd, data, len);
    if (r < 0) {
        snprintf(err, err_len, "%s: cannot write %s: %s", path, tmp, strerror(-r));
        return r;
    }
    if (fsync(fd) < 0) {
        r = -errno;
        snprintf(err, err_len, "%s: cannot fsync %s: %s", path, tmp, strerror(-r));
        return r;
    }
    return 0;
}

int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode, char *err,
                    size_t err_len)
{
    const char *slash = strrchr(path, '/');
    char *tmp = NULL;
    int fd, r;

    /* A hidden temporary file next to path: same file system, and nothing globs it. */
    if (asprintf(&tmp, "%.*s.%s.XXXXXX", slash ? (int)(slash - path + 1) : 0, path,
                 slash ? slash + 1 : path) < 0) {
        snprintf(err, err_len, "%s: out of memory", path);
        return -ENOMEM;
    }
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        snprintf(err, err_len, "%s: cannot create a temporary file next to it: %s", path,
                 strerror(-r));
        free(tmp);
        return r;
    }
    r = fill_temporary(fd, tmp, path, data, len, mode, err, err_len);
    if (close(fd) < 0 && r == 0) {
        r = -errno;
        snprintf(err, err_len, "%s: cannot write %s: %s", path, tmp, strerror(-r));
    }
    if (r == 0 && rename(tmp, path) < 0) {
        r = -errno;
        snprintf(err, err_len, "%s: cannot rename %s to it: %s", path, tmp, strerror(-r));
    }
    if (r < 0) {
        unlink(tmp);
        free(tmp);
        return r;
    }
    free(tmp);
    r = fs_fsync_parent(path);
    if (r < 0)
        snprintf(err, err_len, "%s: written, but its directory could not be synced: %s", path,
                 strerror(-r));
    return r;
}

int fs_identity_of(const char *path, struct fs_identity *ret_identity)
{
    struct stat st;

    if (lstat(path, &st) < 0)
        return -errno;
    ret_identity->dev = st.st_dev;
    ret_identity->ino = st.st_ino;
    return 0;
}

void fs_unlink_if_same(const char *path, const struct fs_identity *identity)
{
    struct stat st;

    if (lstat(path, &st) == 0 && st.st_dev == identity->dev && st.st_ino == identity->ino)
        unlink(path);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int fs_remove_tree(const char *path)
{
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}
