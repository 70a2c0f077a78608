/* Writing the rendered TLS files of services: from the store's generations and the policy. */
#include "render_files.h"

#include "cert_names.h"
#include "cv_error.h"
#include "fsutil.h"
#include "render.h"
#include "render_databases.h"
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

int render_cert_files(const struct render_inputs *in, const char *name, char *cert_path,
                      size_t cert_len, char *key_path, size_t key_len)
{
    const struct render_override *override = in->override;

    if (strcmp(name, CERT_CLUSTER_CA) == 0 && !key_path) {
        snprintf(cert_path, cert_len, "%s", in->certs->ca_export_path);
        return 0;
    }
    for (size_t i = 0; override && i < override->n; i++) {
        if (strcmp(override->certs[i].name, name) != 0)
            continue;
        if (override->certs[i].removed)
            return -ENOENT;
        return certstore_paths(in->certs->store, name, override->certs[i].generation, cert_path,
                               cert_len, key_path, key_len);
    }
    return certs_current_files(in->certs, name, cert_path, cert_len, key_path, key_len);
}

int render_ocsp_path(const char *cert_path, char *buf, size_t len)
{
    const char *slash = strrchr(cert_path, '/');
    int n;

    if (!slash)
        return -EINVAL;
    n = snprintf(buf, len, "%.*s/" RENDER_OCSP_FILE, (int)(slash - cert_path), cert_path);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

struct spec_files {
    char cert[PATH_MAX];
    char key[PATH_MAX];
    char ca[PATH_MAX];
    char ocsp[PATH_MAX];
    struct render_files files;
};

static int resolve(const struct render_inputs *in, const char *service, const struct tls_spec *spec,
                   struct spec_files *f, char *err, size_t err_len)
{
    int r =
        render_cert_files(in, spec->certificate, f->cert, sizeof(f->cert), f->key, sizeof(f->key));

    f->files = (struct render_files){f->cert, f->key, NULL, NULL};
    if (r < 0) {
        snprintf(err, err_len, "service '%s': certificate '%s' is not set (%s)", service,
                 spec->certificate, strerror(-r));
        return r;
    }
    /*
     * The proxy certificate's status, stapled while ocsp_functionality is enabled: the path
     * is its generation's, so a rotation renders a new one (and never staples the old
     * certificate's answer); a new answer for the same generation reloads the proxy alone.
     */
    if (strcmp(spec->certificate, CERT_PROXY) == 0 &&
        policy_enabled(in->policy, POLICY_OCSP_FUNCTIONALITY) &&
        render_ocsp_path(f->cert, f->ocsp, sizeof(f->ocsp)) == 0)
        f->files.ocsp_response = f->ocsp;
    if (spec->trust) {
        r = render_cert_files(in, spec->trust, f->ca, sizeof(f->ca), NULL, 0);
        if (r < 0) {
            snprintf(err, err_len, "service '%s': trusts '%s', which is not set", service,
                     spec->trust);
            return r;
        }
        f->files.ca_file = f->ca;
    }
    /* service_config.c refuses trust beside certificate_auth: one ca_file or the other. */
    if (render_certificate_auth(spec, in->policy)) {
        r = render_cert_files(in, CERT_MTLS_TRUSTED_CA, f->ca, sizeof(f->ca), NULL, 0);
        if (r < 0) {
            snprintf(err, err_len,
                     "service '%s': mtls_certificate_authentication is enabled but "
                     "mtls_trusted_ca is not set (set it with 'certvisorctl cluster certificate "
                     "set mtls_trusted_ca certificate_file <ca.pem>', or disable "
                     "mtls_certificate_authentication)",
                     service);
            return r;
        }
        f->files.ca_file = f->ca;
    }
    return 0;
}

/* Appends a rendered file to set, with what it holds now. Takes output and text. */
static int append_file(struct rendered_set *set, const struct service_config *owner,
                       const struct tls_spec *spec, char *output, char *text)
{
    struct rendered_file *grown = realloc(set->files, (set->n_files + 1) * sizeof(*grown));
    struct rendered_file *file;

    if (!grown || !output || !text) {
        free(output);
        free(text);
        if (grown)
            set->files = grown;
        return -ENOMEM;
    }
    set->files = grown;
    file = &set->files[set->n_files++];
    memset(file, 0, sizeof(*file));
    file->spec = spec;
    file->owner = owner;
    file->output = output;
    file->text = text;
    file->previous = read_text(output);
    file->changed = !file->previous || strcmp(file->previous, file->text) != 0;
    return 0;
}

int render_files_compute(const struct render_inputs *in, const struct service_config *service,
                         struct rendered_set *set, char *err, size_t err_len)
{
    for (size_t i = 0; i < service->n_tls; i++) {
        const struct tls_spec *spec = &service->tls[i];
        struct spec_files f;
        char *text = NULL;
        int r = resolve(in, service->name, spec, &f, err, err_len);

        if (r == 0)
            r = render_text(spec, &f.files, in->policy, &text);
        if (r == 0)
            r = append_file(set, service, spec, strdup(spec->output), text);
        if (r < 0)
            return r;
    }
    if (service->databases_output) {
        char *text = NULL;
        int r = render_databases_text(in, service->name, &text, err, err_len);

        if (r == 0)
            r = append_file(set, service, NULL, strdup(service->databases_output), text);
        if (r < 0)
            return r;
    }
    /* The replica databases (the syncer's): a database list too, checked the same way. */
    if (service->replicas_output) {
        char *text = NULL;
        int r = render_replicas_text(in, service->name, &text, err, err_len);

        if (r == 0)
            r = append_file(set, service, NULL, strdup(service->replicas_output), text);
        if (r < 0)
            return r;
    }
    return 0;
}

bool rendered_set_changes(const struct rendered_set *set, const struct service_config *service)
{
    for (size_t i = 0; i < set->n_files; i++)
        if (set->files[i].changed && set->files[i].owner == service)
            return true;
    return false;
}

/* Builds the context a service will build from one rendered TLS file. */
static int validate_tls_file(const struct rendered_file *file, const struct render_inputs *in,
                             char *reason, size_t reason_len)
{
    struct tls_config *config = NULL;
    struct spec_files f;
    SSL_CTX *ctx = NULL;
    int r = resolve(in, file->owner->name, file->spec, &f, reason, reason_len);

    if (r == 0)
        r = render_tls_config(file->spec, &f.files, in->policy, &config);
    if (r == 0)
        r = tls_context_build(config, TLS_ROLE_SERVER, &ctx, reason, reason_len);
    SSL_CTX_free(ctx);
    tls_config_free(config);
    return r;
}

int rendered_set_validate(const struct rendered_set *set, const struct render_inputs *in, char *err,
                          size_t err_len)
{
    for (size_t i = 0; i < set->n_files; i++) {
        const struct rendered_file *file = &set->files[i];
        char reason[1024] = "";
        int r;

        if (!file->changed)
            continue;
        r = file->spec
                ? validate_tls_file(file, in, reason, sizeof(reason))
                : render_databases_validate(file->text, in->policy, in->certs->trust_empty_path,
                                            reason, sizeof(reason));
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

int render_files_write(const struct render_inputs *in, const struct service_config *service,
                       gid_t group, bool *ret_changed, char *err, size_t err_len)
{
    struct rendered_set set = {0};
    int r = render_files_compute(in, service, &set, err, err_len);

    if (r == 0)
        r = rendered_set_write(&set, false, group, err, err_len);
    if (r == 0)
        *ret_changed = rendered_set_changes(&set, service);
    rendered_set_clear(&set);
    return r;
}
