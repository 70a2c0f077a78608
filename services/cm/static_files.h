/* The console's static files, read into memory from the --www directory and looked up by URL path.
 */
#ifndef CERTVISOR_CM_STATIC_FILES_H
#define CERTVISOR_CM_STATIC_FILES_H

#include <stddef.h>

/*
 * What a directory can hold: enough for a single-page console, not a
 * place to serve arbitrary data from.
 */
#define STATIC_MAX_FILES 256
#define STATIC_MAX_FILE_SIZE (4u * 1024 * 1024)
#define STATIC_MAX_TOTAL_SIZE (16u * 1024 * 1024)
#define STATIC_MAX_DEPTH 4

struct static_files;

struct static_file {
    const char *path;         /* "/index.html": the URL path it answers */
    const char *content_type; /* with a charset for text */
    const char *data;
    size_t len;
};

/*
 * Reads every regular file under dir (subdirectories too, STATIC_MAX_DEPTH
 * deep) whose path is made of letters, digits, '.', '-' and '_' and has no
 * part starting with '.'; others, and symbolic links, are skipped. The files are read once, so a
 * request can never reach outside this set whatever its path says. Returns 0
 * with the set, or a negative errno with a message in err (dir unreadable,
 * a limit exceeded, no index.html).
 */
int static_files_load(const char *dir, struct static_files **ret_files, char *err, size_t err_len);

void static_files_free(struct static_files *files);

size_t static_files_count(const struct static_files *files);

/*
 * The file a URL path (without its query, percent-encoding kept) names, or
 * NULL. "/" is "/index.html". A path that is not plainly a file name (escapes
 * of anything but unreserved characters, "..", "//", hidden parts) names none.
 */
const struct static_file *static_files_find(const struct static_files *files, const char *url_path);

/* The media type served for a file name, by its extension. */
const char *static_content_type(const char *name);

#endif
