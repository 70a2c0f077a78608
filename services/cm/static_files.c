/* The console's static files, read into memory from the --www directory and looked up by URL path.
 */
#include "static_files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATIC_MAX_PATH 256

struct static_files {
    struct static_file files[STATIC_MAX_FILES];
    size_t n_files;
    size_t total;
};

const char *static_content_type(const char *name)
{
    static const struct {
        const char *ext;
        const char *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".map", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".woff2", "font/woff2"},
        {".txt", "text/plain; charset=utf-8"},
        {".md", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(name, '.');

    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            if (strcasecmp(dot, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

/* A name the set may hold: letters, digits, '.', '-', '_', not starting with '.'. */
static bool plain_name(const char *name)
{
    if (!*name || name[0] == '.')
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == '_'))
            return false;
    return true;
}

static int read_file(int dir_fd, const char *name, size_t max, char **ret_data, size_t *ret_len)
{
    int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
    struct stat st;
    char *data = NULL;
    size_t len = 0;
    int r = 0;

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        r = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        r = -EISDIR;
        goto out;
    }
    if ((size_t)st.st_size > max) {
        r = -EFBIG;
        goto out;
    }
    data = malloc((size_t)st.st_size + 1);
    if (!data) {
        r = -ENOMEM;
        goto out;
    }
    while (len < (size_t)st.st_size) {
        ssize_t n = read(fd, data + len, (size_t)st.st_size - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            goto out;
        }
        if (n == 0)
            break; /* shrank while read: serve what is there */
        len += (size_t)n;
    }
    data[len] = '\0';
    *ret_data = data;
    *ret_len = len;
    data = NULL;
out:
    free(data);
    close(fd);
    return r;
}

static int add_file(struct static_files *files, int dir_fd, const char *name, const char *url_path,
                    char *err, size_t err_len)
{
    struct static_file *file;
    char *data = NULL, *path;
    size_t len = 0;
    int r;

    if (files->n_files == STATIC_MAX_FILES) {
        snprintf(err, err_len, "more than %d files", STATIC_MAX_FILES);
        return -E2BIG;
    }
    r = read_file(dir_fd, name, STATIC_MAX_FILE_SIZE, &data, &len);
    if (r == -EFBIG) {
        snprintf(err, err_len, "%s is larger than %u bytes", url_path, STATIC_MAX_FILE_SIZE);
        return r;
    }
    if (r < 0) {
        snprintf(err, err_len, "cannot read %s: %s", url_path, strerror(-r));
        return r;
    }
    if (files->total + len > STATIC_MAX_TOTAL_SIZE) {
        free(data);
        snprintf(err, err_len, "the files add up to more than %u bytes", STATIC_MAX_TOTAL_SIZE);
        return -E2BIG;
    }
    path = strdup(url_path);
    if (!path) {
        free(data);
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    file = &files->files[files->n_files++];
    file->path = path;
    file->content_type = static_content_type(name);
    file->data = data;
    file->len = len;
    files->total += len;
    return 0;
}

/* Adds the files of the directory open at dir_fd (taken), whose URL prefix is prefix. */
static int load_dir(struct static_files *files, int dir_fd, const char *prefix, int depth,
                    char *err, size_t err_len)
{
    DIR *dir = fdopendir(dir_fd);
    struct dirent *entry;
    int r = 0;

    if (!dir) {
        r = -errno;
        close(dir_fd);
        snprintf(err, err_len, "cannot list %s: %s", *prefix ? prefix : "/", strerror(-r));
        return r;
    }
    while (r == 0 && (errno = 0, entry = readdir(dir))) {
        char url_path[STATIC_MAX_PATH];
        struct stat st;

        if (!plain_name(entry->d_name))
            continue;
        if (snprintf(url_path, sizeof(url_path), "%s/%s", prefix, entry->d_name) >=
            (int)sizeof(url_path))
            continue;
        /*
         * Symbolic links are not followed, to files or directories: what is
         * served is exactly what the directory holds.
         */
        if (fstatat(dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            int sub;

            if (depth + 1 >= STATIC_MAX_DEPTH)
                continue;
            sub =
                openat(dirfd(dir), entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                r = load_dir(files, sub, url_path, depth + 1, err, err_len);
            continue;
        }
        if (S_ISREG(st.st_mode)) {
            r = add_file(files, dirfd(dir), entry->d_name, url_path, err, err_len);
            if (r == -ENOENT || r == -ELOOP || r == -EISDIR)
                r = 0; /* replaced by something else meanwhile: not a file to serve */
        }
    }
    if (r == 0 && errno) {
        r = -errno;
        snprintf(err, err_len, "cannot list %s: %s", *prefix ? prefix : "/", strerror(-r));
    }
    closedir(dir);
    return r;
}

int static_files_load(const char *dir, struct static_files **ret_files, char *err, size_t err_len)
{
    struct static_files *files = calloc(1, sizeof(*files));
    int fd, r;

    if (!files) {
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        snprintf(err, err_len, "--www %s: %s", dir, strerror(errno));
        free(files);
        return r;
    }
    r = load_dir(files, fd, "", 0, err, err_len);
    if (r == 0 && !static_files_find(files, "/index.html")) {
        snprintf(err, err_len, "no index.html");
        r = -ENOENT;
    }
    if (r < 0) {
        char reason[512];

        snprintf(reason, sizeof(reason), "%s", err);
        snprintf(err, err_len, "--www %s: %s", dir, reason);
        static_files_free(files);
        return r;
    }
    *ret_files = files;
    return 0;
}

void static_files_free(struct static_files *files)
{
    if (!files)
        return;
    for (size_t i = 0; i < files->n_files; i++) {
        free((char *)files->files[i].path);
        free((char *)files->files[i].data);
    }
    free(files);
}

size_t static_files_count(const struct static_files *files)
{
    return files->n_files;
}

/* An unreserved character (RFC 3986) that a client may have percent-encoded needlessly. */
static int unreserved_escape(const char *p)
{
    char hex[3] = {p[1], p[2], '\0'};
    char *end;
    long ch;

    if (!p[1] || !p[2])
        return -1;
    ch = strtol(hex, &end, 16);
    if (*end || !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' || ch == '~'))
        return -1;
    return (int)ch;
}

const struct static_file *static_files_find(const struct static_files *files, const char *url_path)
{
    char path[STATIC_MAX_PATH];
    size_t len = 0;

    if (strcmp(url_path, "/") == 0)
        url_path = "/index.html";
    for (const char *p = url_path; *p; p++) {
        int ch = (unsigned char)*p;

        if (ch == '%' && (ch = unreserved_escape(p)) < 0)
            return NULL;
        if (*p == '%')
            p += 2;
        if (len + 1 >= sizeof(path))
            return NULL;
        path[len++] = (char)ch;
    }
    path[len] = '\0';
    /*
     * Every stored path is "/" plain names joined by "/", so an exact match is
     * all the checking needed; these refusals only make the rule plain.
     */
    if (path[0] != '/' || strstr(path, "//") || strstr(path, "/."))
        return NULL;
    for (size_t i = 0; i < files->n_files; i++)
        if (strcmp(files->files[i].path, path) == 0)
            return &files->files[i];
    return NULL;
}
