/* Small file-system helpers that must be right once: complete writes, durable atomic replacement.
 */
#ifndef CERTVISOR_FSUTIL_H
#define CERTVISOR_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* Writes all of buf, retrying on EINTR and short writes. Returns 0 or -errno. */
int fs_write_all(int fd, const void *buf, size_t len);

/*
 * Reads fd from its current offset to its end, at most max bytes, into a NUL-terminated
 * malloc'd *ret_text (its length in *ret_len: the text may hold NUL bytes). Returns 0,
 * -EFBIG when there is more than max, or -errno.
 */
int fs_read_all(int fd, size_t max, char **ret_text, size_t *ret_len);

/*
 * The path this program was started from (/proc/self/exe without " (deleted)"): after a
 * package upgrade renamed a new binary over it, the path of the new binary.
 */
void fs_own_binary(char *buf, size_t len);

/* fsyncs a directory, so that entries created or renamed in it survive a crash. */
int fs_fsync_dir(const char *dir);

/* fsyncs the directory holding path. */
int fs_fsync_parent(const char *path);

/*
 * Replaces path with data atomically and durably: a hidden temporary file in
 * the same directory, mode set before any byte is written, fsync, rename over
 * path, fsync of the directory. Readers see the old file or the new one,
 * never a part. On failure path is untouched and err names the step.
 */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode, char *err,
                    size_t err_len);

/* The identity of a file system entry, to tell later whether a path still names it. */
struct fs_identity {
    dev_t dev;
    ino_t ino;
};

/* Records what path names now. Returns 0 or -errno. */
int fs_identity_of(const char *path, struct fs_identity *ret_identity);

/*
 * Removes path only if it still names the recorded entry: a socket file that
 * another process has since replaced (a new agent started while this one
 * exits) is left alone.
 */
void fs_unlink_if_same(const char *path, const struct fs_identity *identity);

/* Removes path and all it holds, symbolic links not followed; a path that does not exist is
 * removed already. Returns 0 or -errno. Slow on a big tree: never on the agent's loop. */
int fs_remove_tree(const char *path);

#endif
