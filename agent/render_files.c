/* Writing the rendered TLS files of services: from the store's current generations and the policy.
 */
#include "render_files.h"

#include "cert_names.h"
#include "cv_error.h"
#include "fsutil.h"
#include "render.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* True when path holds exactly text. */
static bool same_content(const char *path, const char *text)
{
    size_t len = strlen(text);
    char *buf = malloc(len + 2);
    bool same = false;
    FILE *f;

    if (!buf)
        return false;
    f = fopen(path, "re");
    if (f) {
        same = fread(buf, 1, len + 1, f) == len && memcmp(buf, text, len) == 0;
        fclose(f);
    }
    free(buf);
    return same;
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
    if (mkdir(dir, 0750) < 0 && errno != EEXIST)
        return -errno;
    if (group != (gid_t)-1 && chown(dir, (uid_t)-1, group) < 0)
        return -errno;
    return 0;
}

static int trust_file(struct certs *certs, const char *trust, char *buf, size_t len)
{
    if (strcmp(trust, CERT_CLUSTER_CA) == 0) {
        snprintf(buf, len, "%s", certs->ca_export_path);
        return 0;
    }
    return certs_current_files(certs, trust, buf, len, NULL, 0);
}

static int write_one(struct certs *certs, const struct policy *policy,
                     const struct service_config *service, const struct tls_spec *spec, gid_t group,
                     bool *changed, char *err, size_t err_len)
{
    char cert[PATH_MAX], key[PATH_MAX], ca[PATH_MAX];
    struct render_files files = {cert, key, NULL};
    char *text = NULL;
    int r = certs_current_files(certs, spec->certificate, cert, sizeof(cert), key, sizeof(key));

    if (r < 0) {
        snprintf(err, err_len, "service '%s': certificate '%s' is not set (%s)", service->name,
                 spec->certificate, strerror(-r));
        return r;
    }
    if (spec->trust) {
        r = trust_file(certs, spec->trust, ca, sizeof(ca));
        if (r < 0) {
            snprintf(err, err_len, "service '%s': trusts '%s', which is not set", service->name,
                     spec->trust);
            return r;
        }
        files.ca_file = ca;
    }
    r = render_text(spec, &files, policy, &text);
    if (r < 0)
        return r;
    if (!same_content(spec->output, text)) {
        r = ensure_parent(spec->output, group);
        if (r < 0)
            snprintf(err, err_len, "service '%s': cannot create the directory of %s: %s",
                     service->name, spec->output, strerror(-r));
        else
            r = fs_write_atomic(spec->output, text, strlen(text), 0640, err, err_len);
        if (r == 0 && group != (gid_t)-1 && chown(spec->output, (uid_t)-1, group) < 0)
            r = -errno;
        *changed = *changed || r == 0;
    }
    free(text);
    return r;
}

int render_files_write(struct certs *certs, const struct policy *policy,
                       const struct service_config *service, gid_t group, bool *ret_changed,
                       char *err, size_t err_len)
{
    bool changed = false;

    for (size_t i = 0; i < service->n_tls; i++) {
        int r = write_one(certs, policy, service, &service->tls[i], group, &changed, err, err_len);

        if (r < 0)
            return r;
    }
    *ret_changed = changed;
    return 0;
}
