/* The certificate store: each certificate's generations on disk and an atomic pointer to the
 * current one. */
#include "certstore.h"

#include "apply_hooks.h"
#include "cv_error.h"
#include "fsutil.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CERTSTORE_MAX_FILE (1024 * 1024)
#define PATH_BUF (PATH_MAX + 512) /* a directory path plus a file name */

struct certstore {
    char *root;
    gid_t key_group; /* (gid_t)-1: none */
};

/*
 * Temporary names carry a number of their own besides the pid: two workers
 * (agent/core/offload.h) writing pending keys for one name at once must not share
 * a file, and two stagings of one generation must not share a directory (the
 * second rename then fails instead of mixing them).
 */
static atomic_uint tmp_counter;

/* A store that borrows a target's fields, for the functions that run on a worker thread. */
static struct certstore view_of(const struct certstore_target *target)
{
    return (struct certstore){(char *)target->root, target->key_group};
}

static bool valid_name(const char *name)
{
    if (!*name || strlen(name) > 64)
        return false;
    for (const char *p = name; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_'))
            return false;
    return true;
}

/* Fills err with "<what> <subject>: <reason>" and returns r. */
static int fail(char *err, size_t err_len, int r, const char *what, const char *subject)
{
    if (err)
        snprintf(err, err_len, "%s %s: %s", what, subject,
                 r == -EINVAL ? "not a certificate name" : strerror(-r));
    return r;
}

/* Creates a directory (or accepts it) with mode and, when set, the key group. */
static int ensure_dir(const char *path, mode_t mode, gid_t group)
{
    if (mkdir(path, mode) < 0 && errno != EEXIST)
        return -errno;
    if (chmod(path, mode) < 0)
        return -errno;
    if (group != (gid_t)-1 && chown(path, (uid_t)-1, group) < 0)
        return -errno;
    return 0;
}

/* Creates path (which must not exist) with exactly mode and group, writes data, fsyncs. */
static int write_new_file(const char *path, const char *data, size_t len, mode_t mode, gid_t group)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    int r;

    if (fd < 0)
        return -errno;
    /* Group first, then mode: the file is never readable by more than it should be. */
    r = (group != (gid_t)-1 && fchown(fd, (uid_t)-1, group) < 0) ? -errno : 0;
    if (r == 0 && fchmod(fd, mode) < 0)
        r = -errno;
    if (r == 0)
        r = fs_write_all(fd, data, len);
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r < 0)
        unlink(path);
    return r;
}

static int name_dir(const struct certstore *store, const char *name, char *buf, size_t len)
{
    if (!valid_name(name))
        return -EINVAL;
    if (snprintf(buf, len, "%s/%s", store->root, name) >= (int)len)
        return -ENAMETOOLONG;
    return 0;
}

static bool parse_generation(const char *text, unsigned *ret)
{
    char *end;
    unsigned long value;

    if (!isdigit((unsigned char)text[0]))
        return false;
    value = strtoul(text, &end, 10);
    if (*end || value == 0 || value > 1000000000UL)
        return false;
    *ret = (unsigned)value;
    return true;
}

/* Lists the generation numbers of name, ascending. */
static int list_generations(const struct certstore *store, const char *name, unsigned **ret_list,
                            size_t *ret_count)
{
    char dir[PATH_MAX];
    unsigned *list = NULL;
    size_t count = 0, cap = 0;
    struct dirent *entry;
    DIR *d;
    int r = name_dir(store, name, dir, sizeof(dir));

    if (r < 0)
        return r;
    d = opendir(dir);
    if (!d) {
        *ret_list = NULL;
        *ret_count = 0;
        return errno == ENOENT ? 0 : -errno;
    }
    while ((entry = readdir(d))) {
        unsigned generation;

        if (!parse_generation(entry->d_name, &generation))
            continue;
        if (count == cap) {
            unsigned *grown = realloc(list, (cap = cap ? cap * 2 : 8) * sizeof(*list));

            if (!grown) {
                free(list);
                closedir(d);
                return -ENOMEM;
            }
            list = grown;
        }
        list[count++] = generation;
    }
    closedir(d);
    /* Few entries: insertion sort. */
    for (size_t i = 1; i < count; i++)
        for (size_t j = i; j > 0 && list[j - 1] > list[j]; j--) {
            unsigned t = list[j];

            list[j] = list[j - 1];
            list[j - 1] = t;
        }
    *ret_list = list;
    *ret_count = count;
    return 0;
}

int certstore_open(const char *root, gid_t key_group, struct certstore **ret_store, char *err,
                   size_t err_len)
{
    struct certstore *store = calloc(1, sizeof(*store));
    int r;

    if (!store || !(store->root = strdup(root))) {
        free(store);
        return -ENOMEM;
    }
    store->key_group = key_group;
    r = ensure_dir(root, 0750, key_group);
    if (r < 0) {
        certstore_free(store);
        return fail(err, err_len, r, "cannot create the certificate store", root);
    }
    *ret_store = store;
    return 0;
}

void certstore_free(struct certstore *store)
{
    if (!store)
        return;
    free(store->root);
    free(store);
}

int certstore_current(struct certstore *store, const char *name, unsigned *ret_generation)
{
    char dir[PATH_MAX], link[PATH_BUF], target[64];
    ssize_t n;
    int r = name_dir(store, name, dir, sizeof(dir));

    if (r < 0)
        return r;
    snprintf(link, sizeof(link), "%s/current", dir);
    n = readlink(link, target, sizeof(target) - 1);
    if (n < 0)
        return -errno;
    target[n] = '\0';
    return parse_generation(target, ret_generation) ? 0 : -EUCLEAN;
}

int certstore_paths(struct certstore *store, const char *name, unsigned generation, char *cert_path,
                    size_t cert_len, char *key_path, size_t key_len)
{
    char dir[PATH_MAX];
    int r = name_dir(store, name, dir, sizeof(dir));

    if (r < 0)
        return r;
    if (snprintf(cert_path, cert_len, "%s/%u/cert.pem", dir, generation) >= (int)cert_len)
        return -ENAMETOOLONG;
    if (key_path && snprintf(key_path, key_len, "%s/%u/key.pem", dir, generation) >= (int)key_len)
        return -ENAMETOOLONG;
    return 0;
}

static int write_generation(const struct certstore *store, const char *tmp, const char *cert_pem,
                            size_t cert_len, const char *key_pem, size_t key_len,
                            bool key_for_services, const char *origin)
{
    char path[PATH_BUF];
    bool grouped = key_for_services && store->key_group != (gid_t)-1;
    int r = ensure_dir(tmp, 0750, store->key_group);

    if (r < 0)
        return r;
    if (snprintf(path, sizeof(path), "%s/cert.pem", tmp) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    r = write_new_file(path, cert_pem, cert_len, 0644, store->key_group);
    if (r == 0 && key_pem) {
        if (snprintf(path, sizeof(path), "%s/key.pem", tmp) >= (int)sizeof(path))
            return -ENAMETOOLONG;
        r = write_new_file(path, key_pem, key_len, grouped ? 0640 : 0600,
                           grouped ? store->key_group : (gid_t)-1);
    }
    /* In the generation before it appears: one rename publishes the pair and where it came from. */
    if (r == 0 && origin) {
        if (snprintf(path, sizeof(path), "%s/origin", tmp) >= (int)sizeof(path))
            return -ENAMETOOLONG;
        r = write_new_file(path, origin, strlen(origin), 0644, (gid_t)-1);
    }
    if (r == 0)
        r = fs_fsync_dir(tmp);
    return r;
}

static int stage(const struct certstore *store, const char *name, const char *cert_pem,
                 size_t cert_len, const char *key_pem, size_t key_len, bool key_for_services,
                 const char *origin, unsigned *ret_generation, char *err, size_t err_len)
{
    char dir[PATH_MAX], tmp[PATH_BUF], final[PATH_BUF];
    unsigned *list, generation;
    size_t count;
    int r = name_dir(store, name, dir, sizeof(dir));

    if (r < 0)
        return fail(err, err_len, r, "invalid certificate name", name);
    r = ensure_dir(dir, 0750, store->key_group);
    if (r == 0)
        r = list_generations(store, name, &list, &count);
    if (r < 0)
        return fail(err, err_len, r, "cannot prepare", dir);
    generation = count ? list[count - 1] + 1 : 1;
    free(list);
    snprintf(tmp, sizeof(tmp), "%s/.tmp-%u-%d-%u", dir, generation, (int)getpid(),
             atomic_fetch_add(&tmp_counter, 1));
    snprintf(final, sizeof(final), "%s/%u", dir, generation);
    fs_remove_tree(tmp);
    r = write_generation(store, tmp, cert_pem, cert_len, key_pem, key_len, key_for_services,
                         origin);
    if (r == 0 && rename(tmp, final) < 0)
        r = -errno;
    if (r == 0)
        r = fs_fsync_dir(dir);
    if (r < 0) {
        fs_remove_tree(tmp);
        return fail(err, err_len, r, "cannot write a new generation in", dir);
    }
    *ret_generation = generation;
    return 0;
}

int certstore_stage(struct certstore *store, const char *name, const char *cert_pem,
                    size_t cert_len, const char *key_pem, size_t key_len, bool key_for_services,
                    unsigned *ret_generation, char *err, size_t err_len)
{
    return stage(store, name, cert_pem, cert_len, key_pem, key_len, key_for_services, NULL,
                 ret_generation, err, err_len);
}

void certstore_target_of(const struct certstore *store, struct certstore_target *ret_target)
{
    snprintf(ret_target->root, sizeof(ret_target->root), "%s", store->root);
    ret_target->key_group = store->key_group;
}

int certstore_stage_at(const struct certstore_target *target, const char *name,
                       const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
                       bool key_for_services, const char *origin, unsigned *ret_generation,
                       char *err, size_t err_len)
{
    struct certstore view = view_of(target);

    return stage(&view, name, cert_pem, cert_len, key_pem, key_len, key_for_services, origin,
                 ret_generation, err, err_len);
}

int certstore_commit(struct certstore *store, const char *name, unsigned generation, char *err,
                     size_t err_len)
{
    char dir[PATH_MAX], target[32], tmp[PATH_BUF], link[PATH_BUF], gen_dir[PATH_BUF];
    struct stat st;
    int r = name_dir(store, name, dir, sizeof(dir));

    if (r < 0)
        return fail(err, err_len, r, "invalid certificate name", name);
    snprintf(gen_dir, sizeof(gen_dir), "%s/%u", dir, generation);
    if (stat(gen_dir, &st) < 0)
        return fail(err, err_len, -errno, "cannot commit", gen_dir);
    snprintf(target, sizeof(target), "%u", generation);
    snprintf(tmp, sizeof(tmp), "%s/.current-tmp-%d", dir, (int)getpid());
    snprintf(link, sizeof(link), "%s/current", dir);
    unlink(tmp);
    /* rename() over the old link is the atomic switch. */
    if (symlink(target, tmp) < 0 || rename(tmp, link) < 0) {
        r = -errno;
        unlink(tmp);
        return fail(err, err_len, r, "cannot switch", link);
    }
    r = fs_fsync_dir(dir);
    return r < 0 ? fail(err, err_len, r, "cannot sync", dir) : 0;
}

static int read_file(const char *path, char **ret_data, size_t *ret_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    char *data;
    ssize_t n;

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || st.st_size > CERTSTORE_MAX_FILE) {
        close(fd);
        return -EFBIG;
    }
    data = malloc((size_t)st.st_size + 1);
    if (!data) {
        close(fd);
        return -ENOMEM;
    }
    n = read(fd, data, (size_t)st.st_size);
    close(fd);
    if (n != st.st_size) {
        OPENSSL_cleanse(data, (size_t)st.st_size);
        free(data);
        return -EIO;
    }
    data[n] = '\0';
    *ret_data = data;
    *ret_len = (size_t)n;
    return 0;
}

int certstore_read_cert(struct certstore *store, const char *name, unsigned generation,
                        char **ret_pem, size_t *ret_len)
{
    char cert_path[PATH_BUF];
    int r = certstore_paths(store, name, generation, cert_path, sizeof(cert_path), NULL, 0);

    return r < 0 ? r : read_file(cert_path, ret_pem, ret_len);
}

int certstore_read_key(struct certstore *store, const char *name, unsigned generation,
                       char **ret_pem, size_t *ret_len)
{
    char cert_path[PATH_BUF], key_path[PATH_BUF];
    int r = certstore_paths(store, name, generation, cert_path, sizeof(cert_path), key_path,
                            sizeof(key_path));

    return r < 0 ? r : read_file(key_path, ret_pem, ret_len);
}

int certstore_discard(struct certstore *store, const char *name, unsigned generation)
{
    char dir[PATH_MAX], gen_dir[PATH_BUF];
    unsigned current;
    int r = name_dir(store, name, dir, sizeof(dir));

    if (r < 0)
        return r;
    if (certstore_current(store, name, &current) == 0 && current == generation)
        return -EBUSY; /* never the one in force */
    snprintf(gen_dir, sizeof(gen_dir), "%s/%u", dir, generation);
    r = fs_remove_tree(gen_dir);
    return r < 0 ? r : fs_fsync_dir(dir);
}

int certstore_prune(struct certstore *store, const char *name, unsigned keep)
{
    unsigned *list, current;
    size_t count, older = 0;
    int r = certstore_current(store, name, &current);

    if (r < 0)
        return r == -ENOENT ? 0 : r;
    r = list_generations(store, name, &list, &count);
    if (r < 0)
        return r;
    /* Newest first: keep `keep` generations below the current one, drop the rest. */
    for (size_t i = count; i-- > 0;) {
        if (list[i] >= current)
            continue; /* the current one, and staged ones that an apply may still commit */
        if (older++ < keep)
            continue;
        r = certstore_discard(store, name, list[i]);
        if (r < 0)
            break;
    }
    free(list);
    return r;
}

static int remove_leftovers(struct certstore *store, const char *name)
{
    char dir[PATH_MAX], path[PATH_BUF];
    struct dirent *entry;
    unsigned current = 0, *list;
    size_t count;
    bool has_current;
    DIR *d;
    int r = name_dir(store, name, dir, sizeof(dir));

    if (r < 0)
        return r;
    d = opendir(dir);
    if (!d)
        return -errno;
    while ((entry = readdir(d))) {
        if (strncmp(entry->d_name, ".tmp-", 5) == 0 ||
            strncmp(entry->d_name, ".current-tmp-", 13) == 0 ||
            strncmp(entry->d_name, ".pending-tmp-", 13) == 0) {
            snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name);
            fs_remove_tree(path);
        }
    }
    closedir(d);
    has_current = certstore_current(store, name, &current) == 0;
    r = list_generations(store, name, &list, &count);
    if (r < 0)
        return r;
    /* Staged but never committed: the change they belonged to did not happen. */
    for (size_t i = 0; i < count && r == 0; i++)
        if (!has_current || list[i] > current)
            r = certstore_discard(store, name, list[i]);
    free(list);
    return r < 0 ? r : fs_fsync_dir(dir);
}

/* The list of generations a multi-certificate commit makes current, while it is under way. */
static void journal_path(const struct certstore *store, char *buf, size_t len)
{
    snprintf(buf, len, "%s/commit-journal", store->root);
}

int certstore_commit_many(struct certstore *store, const char *const *names,
                          const unsigned *generations, size_t n, char *err, size_t err_len)
{
    char path[PATH_BUF], *text = NULL;
    size_t used = 0, cap = 0;
    int r = 0;

    if (n == 1)
        return certstore_commit(store, names[0], generations[0], err, err_len);
    for (size_t i = 0; i < n; i++) {
        char line[128];
        int len = snprintf(line, sizeof(line), "%s %u\n", names[i], generations[i]);
        char *grown;

        if (!valid_name(names[i]) || len < 0 || (size_t)len >= sizeof(line))
            return fail(err, err_len, -EINVAL, "invalid certificate name", names[i]);
        if (used + (size_t)len + 1 > cap) {
            cap = (used + (size_t)len + 1) * 2;
            grown = realloc(text, cap);
            if (!grown) {
                free(text);
                return -ENOMEM;
            }
            text = grown;
        }
        memcpy(text + used, line, (size_t)len + 1);
        used += (size_t)len;
    }
    /* Written before the first switch: a crash half-way is completed by certstore_recover(). */
    journal_path(store, path, sizeof(path));
    if (n > 0)
        r = fs_write_atomic(path, text, used, 0600, err, err_len);
    free(text);
    for (size_t i = 0; r == 0 && i < n; i++) {
        r = certstore_commit(store, names[i], generations[i], err, err_len);
        if (i == 0)
            apply_hook("half-committed"); /* tests: a crash between two switches */
    }
    if (r == 0 && n > 0) {
        if (unlink(path) < 0)
            return fail(err, err_len, -errno, "cannot remove", path);
        r = fs_fsync_dir(store->root);
        if (r < 0)
            return fail(err, err_len, r, "cannot sync", store->root);
    }
    return r;
}

/* Completes a multi-certificate commit that a crash interrupted: every listed generation is
 * complete on disk (staged before the journal was written), so rolling forward is safe. */
static int replay_journal(struct certstore *store, char *err, size_t err_len)
{
    char path[PATH_BUF], name[64];
    unsigned generation;
    FILE *f;
    int r = 0;

    journal_path(store, path, sizeof(path));
    f = fopen(path, "re");
    if (!f)
        return errno == ENOENT ? 0 : fail(err, err_len, -errno, "cannot read", path);
    while (r == 0 && fscanf(f, "%63s %u", name, &generation) == 2) {
        unsigned current;

        if (!valid_name(name))
            continue;
        if (certstore_current(store, name, &current) == 0 && current == generation)
            continue;
        r = certstore_commit(store, name, generation, err, err_len);
    }
    fclose(f);
    if (r == 0 && unlink(path) < 0)
        r = fail(err, err_len, -errno, "cannot remove", path);
    return r;
}

int certstore_recover(struct certstore *store, char *err, size_t err_len)
{
    struct dirent *entry;
    DIR *d;
    int r = replay_journal(store, err, err_len);

    if (r < 0)
        return r;
    d = opendir(store->root);
    if (!d)
        return fail(err, err_len, -errno, "cannot read the certificate store", store->root);
    while ((entry = readdir(d)) && r == 0) {
        if (!valid_name(entry->d_name))
            continue;
        r = remove_leftovers(store, entry->d_name);
        if (r < 0)
            snprintf(err, err_len, "cannot recover certificate '%s': %s", entry->d_name,
                     strerror(-r));
    }
    closedir(d);
    return r;
}

int certstore_delete(struct certstore *store, const char *name, char *err, size_t err_len)
{
    char dir[PATH_MAX];
    int r = name_dir(store, name, dir, sizeof(dir));

    if (r < 0)
        return fail(err, err_len, r, "invalid certificate name", name);
    r = fs_remove_tree(dir);
    if (r == 0)
        r = fs_fsync_dir(store->root);
    return r < 0 ? fail(err, err_len, r, "cannot delete", dir) : 0;
}

static int write_pending_key(const struct certstore *store, const char *name, const char *key_pem,
                             size_t key_len, char *err, size_t err_len)
{
    char dir[PATH_MAX], tmp[PATH_BUF], final[PATH_BUF];
    int r = name_dir(store, name, dir, sizeof(dir));

    if (r < 0)
        return fail(err, err_len, r, "invalid certificate name", name);
    r = ensure_dir(dir, 0750, store->key_group);
    snprintf(tmp, sizeof(tmp), "%s/.pending-tmp-%d-%u", dir, (int)getpid(),
             atomic_fetch_add(&tmp_counter, 1));
    snprintf(final, sizeof(final), "%s/pending-key.pem", dir);
    unlink(tmp);
    if (r == 0)
        r = write_new_file(tmp, key_pem, key_len, 0600, (gid_t)-1);
    if (r == 0 && rename(tmp, final) < 0)
        r = -errno;
    if (r == 0)
        r = fs_fsync_dir(dir);
    if (r < 0) {
        unlink(tmp);
        return fail(err, err_len, r, "cannot store the pending key in", dir);
    }
    return 0;
}

int certstore_write_pending_key(struct certstore *store, const char *name, const char *key_pem,
                                size_t key_len, char *err, size_t err_len)
{
    return write_pending_key(store, name, key_pem, key_len, err, err_len);
}

int certstore_write_pending_key_at(const struct certstore_target *target, const char *name,
                                   const char *key_pem, size_t key_len, char *err, size_t err_len)
{
    struct certstore view = view_of(target);

    return write_pending_key(&view, name, key_pem, key_len, err, err_len);
}

int certstore_read_pending_key(struct certstore *store, const char *name, char **ret_pem,
                               size_t *ret_len)
{
    char dir[PATH_MAX], path[PATH_BUF];
    int r = name_dir(store, name, dir, sizeof(dir));

    if (r < 0)
        return r;
    snprintf(path, sizeof(path), "%s/pending-key.pem", dir);
    return read_file(path, ret_pem, ret_len);
}

int certstore_drop_pending_key(struct certstore *store, const char *name)
{
    char dir[PATH_MAX], path[PATH_BUF];
    int r = name_dir(store, name, dir, sizeof(dir));

    if (r < 0)
        return r;
    snprintf(path, sizeof(path), "%s/pending-key.pem", dir);
    if (unlink(path) < 0 && errno != ENOENT)
        return -errno;
    return fs_fsync_dir(dir);
}

int certstore_set_origin(struct certstore *store, const char *name, unsigned generation,
                         const char *origin)
{
    char dir[PATH_MAX], path[PATH_BUF], err[256];
    int r = name_dir(store, name, dir, sizeof(dir));

    if (r < 0)
        return r;
    snprintf(path, sizeof(path), "%s/%u/origin", dir, generation);
    return fs_write_atomic(path, origin, strlen(origin), 0644, err, sizeof(err));
}

void certstore_get_origin(struct certstore *store, const char *name, unsigned generation, char *buf,
                          size_t len)
{
    char dir[PATH_MAX], path[PATH_BUF];
    FILE *f;
    size_t n = 0;

    snprintf(buf, len, "user-provided");
    if (name_dir(store, name, dir, sizeof(dir)) < 0)
        return;
    snprintf(path, sizeof(path), "%s/%u/origin", dir, generation);
    f = fopen(path, "re");
    if (!f)
        return;
    n = fread(buf, 1, len - 1, f);
    fclose(f);
    if (n > 0)
        buf[n] = '\0';
    else
        snprintf(buf, len, "user-provided");
}
