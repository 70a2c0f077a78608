/* Writing the rendered TLS files of services: from the store's generations and the policy. */
#include "render_files.h"

#include "cert_names.h"
#include "cv_error.h"
#include "fsutil.h"
#include "render.h"
#include "tls_context.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RENDERED_MAX_BYTES (64 * 1024)

/* The file's content, or NULL when it does not exist (or cannot be read). */
static char *read_text(const char *path)
{
    FILE *f = fopen(path, "re");
    char *buf;
    size_t n;

    if (!f)
        return NULL;
    buf = malloc(RENDERED_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    n = fread(buf, 1, RENDERED_MAX_BYTES, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static int ensure_parent(const char *path, gid_t group)
{
    char dir[PATH_MAX];
    char *slash;

    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    if (mkdir(dir, 0750) < 0)
        return errno == EEXIST ? 0 : -errno;
    /* Only a directory made here gets the group: an existing one is the operator's. */
    if (group != (gid_t)-1 && chown(dir, (uid_t)-1, group) < 0)
        return -errno;
    return 0;
}

/* The files a certificate is served from: its current generation, or the override's. */
static int files_of(struct certs *certs, const char *name, const struct render_override *override,
                    char *cert, size_t cert_len, char *key, size_t key_len)
{
    for (size_t i = 0; override && i < override->n; i++) {
        if (strcmp(override->certs[i].name, name) != 0)
            continue;
        if (override->certs[i].removed)
            return -ENOENT;
        return certstore_paths(certs->store, name, override->certs[i].generation, cert, cert_len,
                               key, key_len);
    }
    return certs_current_files(certs, name, cert, cert_len, key, key_len);
}

static int trust_file(struct certs *certs, const char *trust,
                      const struct render_override *override, char *buf, size_t len)
{
    if (strcmp(trust, CERT_CLUSTER_CA) == 0) {
        snprintf(buf, len, "%s", certs->ca_export_path);
        return 0;
    }
    return files_of(certs, trust, override, buf, len, NULL, 0);
}

struct spec_files {
    char cert[PATH_MAX];
    char key[PATH_MAX];
    char ca[PATH_MAX];
    struct render_files files;
};

static int resolve(struct certs *certs, const char *service, const struct tls_spec *spec,
                   const struct render_override *override, struct spec_files *f, char *err,
                   size_t err_len)
{
    int r = files_of(certs, spec->certificate, override, f->cert, sizeof(f->cert), f->key,
                     sizeof(f->key));

    f->files = (struct render_files){f->cert, f->key, NULL};
    if (r < 0) {
        snprintf(err, err_len, "service '%s': certificate '%s' is not set (%s)", service,
                 spec->certificate, strerror(-r));
        return r;
    }
    if (spec->trust) {
        r = trust_file(certs, spec->trust, override, f->ca, sizeof(f->ca));
        if (r < 0) {
            snprintf(err, err_len, "service '%s': trusts '%s', which is not set", service,
                     spec->trust);
            return r;
        }
        f->files.ca_file = f->ca;
    }
    return 0;
}

int render_files_compute(struct certs *certs, const struct policy *policy,
                         const struct service_config *service,
                         const struct render_override *override, struct rendered_set *set,
                         char *err, size_t err_len)
{
    for (size_t i = 0; i < service->n_tls; i++) {
        const struct tls_spec *spec = &service->tls[i];
        struct rendered_file *grown, *file;
        struct spec_files f;
        int r = resolve(certs, service->name, spec, override, &f, err, err_len);

        if (r < 0)
            return r;
        grown = realloc(set->files, (set->n_files + 1) * sizeof(*grown));
        if (!grown)
            return -ENOMEM;
        set->files = grown;
        file = &set->files[set->n_files];
        memset(file, 0, sizeof(*file));
        file->spec = spec;
        file->service = service->name;
        file->output = strdup(spec->output);
        r = render_text(spec, &f.files, policy, &file->text);
        if (r < 0 || !file->output) {
            free(file->output);
            return r < 0 ? r : -ENOMEM;
        }
        set->n_files++;
        file->previous = read_text(file->output);
        file->changed = !file->previous || strcmp(file->previous, file->text) != 0;
    }
    return 0;
}

bool rendered_set_changes(const struct rendered_set *set, const struct service_config *service)
{
    for (size_t i = 0; i < set->n_files; i++)
        for (size_t t = 0; t < service->n_tls; t++)
            if (set->files[i].changed && set->files[i].spec == &service->tls[t])
                return true;
    return false;
}

int rendered_set_validate(const struct rendered_set *set, struct certs *certs,
                          const struct policy *policy, const struct render_override *override,
                          char *err, size_t err_len)
{
    for (size_t i = 0; i < set->n_files; i++) {
        const struct rendered_file *file = &set->files[i];
        struct tls_config *config = NULL;
        struct spec_files f;
        char reason[1024] = "";
        SSL_CTX *ctx = NULL;
        int r;

        if (!file->changed)
            continue;
        r = resolve(certs, file->service, file->spec, override, &f, reason, sizeof(reason));
        if (r == 0)
            r = render_tls_config(file->spec, &f.files, policy, &config);
        if (r == 0)
            r = tls_context_build(config, TLS_ROLE_SERVER, &ctx, reason, sizeof(reason));
        SSL_CTX_free(ctx);
        tls_config_free(config);
        if (r < 0) {
            snprintf(err, err_len, "%s would not load: %s", file->output,
                     r == CV_EINVALID_TLS || *reason ? reason : strerror(-r));
            return CV_EINVALID_TLS;
        }
    }
    return 0;
}

int rendered_set_write(const struct rendered_set *set, bool restore, gid_t group, char *err,
                       size_t err_len)
{
    for (size_t i = 0; i < set->n_files; i++) {
        const struct rendered_file *file = &set->files[i];
        const char *text = restore ? file->previous : file->text;
        int r;

        if (!file->changed)
            continue;
        if (!text) { /* restoring a file that did not exist before */
            unlink(file->output);
            continue;
        }
        r = ensure_parent(file->output, group);
        if (r < 0) {
            snprintf(err, err_len, "cannot create the directory of %s: %s", file->output,
                     strerror(-r));
            return r;
        }
        r = fs_write_atomic(file->output, text, strlen(text), 0640, err, err_len);
        if (r == 0 && group != (gid_t)-1 && chown(file->output, (uid_t)-1, group) < 0)
            r = -errno;
        if (r < 0)
            return r;
    }
    return 0;
}

void rendered_set_clear(struct rendered_set *set)
{
    for (size_t i = 0; i < set->n_files; i++) {
        free(set->files[i].output);
        free(set->files[i].text);
        free(set->files[i].previous);
    }
    free(set->files);
    set->files = NULL;
    set->n_files = 0;
}

int render_files_write(struct certs *certs, const struct policy *policy,
                       const struct service_config *service, gid_t group, bool *ret_changed,
                       char *err, size_t err_len)
{
    struct rendered_set set = {0};
    int r = render_files_compute(certs, policy, service, NULL, &set, err, err_len);

    if (r == 0)
        r = rendered_set_write(&set, false, group, err, err_len);
    if (r == 0)
        *ret_changed = rendered_set_changes(&set, service);
    rendered_set_clear(&set);
    return r;
}
