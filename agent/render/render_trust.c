/* Trust as rendering sees it: the file a trust reference is served from, and a change's lists. */
#include "render_trust.h"

#include "certstore.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The generation of list a rendering uses: the change's, or the current one. */
static int list_generation(const struct render_inputs *in, const char *list,
                           unsigned *ret_generation)
{
    const struct render_override *override = in->override;

    for (size_t i = 0; override && i < override->n_trusts; i++) {
        if (strcmp(override->trusts[i].list, list) != 0)
            continue;
        if (override->trusts[i].removed)
            return -ENOENT; /* emptied by the change */
        *ret_generation = override->trusts[i].generation;
        return 0;
    }
    if (!in->certs->trust)
        return -ENOENT;
    return certstore_current(in->certs->trust, list, ret_generation);
}

int trust_ref_file(const struct render_inputs *in, const char *setting, const char *ref, char *path,
                   size_t path_len, char *err, size_t err_len)
{
    unsigned generation;
    int r;

    if (ref[0] == '/') {
        snprintf(path, path_len, "%s", ref);
        return 0;
    }
    if (!trust_ref_is_list(ref)) {
        r = render_cert_files(in, ref, path, path_len, NULL, 0);
        if (r < 0)
            snprintf(err, err_len,
                     "%s '%s' is not set (set it with 'certvisorctl cluster certificate set %s "
                     "certificate_file <ca.pem>', or change %s)",
                     setting, ref, ref, setting);
        return r;
    }
    r = list_generation(in, ref, &generation);
    if (r == 0)
        return certstore_paths(in->certs->trust, ref, generation, path, path_len, NULL, 0);
    /* An empty list (none made yet, or emptied) trusts nobody: every peer is refused. */
    if (!in->certs->trust_empty_path) {
        snprintf(err, err_len, "%s: trust list '%s': the trust store is not open", setting, ref);
        return -ENOENT;
    }
    snprintf(path, path_len, "%s", in->certs->trust_empty_path);
    return 0;
}

void trust_batch_override(const struct trust_batch *batch, struct render_override *override)
{
    override->n_trusts = 0;
    for (size_t i = 0; i < batch->n && i < RENDER_TRUST_OVERRIDES_MAX; i++) {
        override->trusts[i].list = batch->changes[i].list;
        override->trusts[i].generation = batch->changes[i].generation;
        override->trusts[i].removed = batch->changes[i].removed;
        override->n_trusts++;
    }
}
