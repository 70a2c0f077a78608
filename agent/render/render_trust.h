/*
 * Trust as rendering sees it: which file a trust reference is served from, with a change's
 * staged lists in place. Here, not in trust.c, so that trust (which configuration parsing
 * uses) needs nothing of rendering: render depends on trust, never the other way round.
 */
#ifndef CERTVISOR_RENDER_TRUST_H
#define CERTVISOR_RENDER_TRUST_H

#include "render_files.h"
#include "trust.h"

#include <stddef.h>

/*
 * The file ref is served from: the path itself; the store certificate's
 * current generation (or the one the change in in->override stages); the trust
 * list's bundle, likewise, or, for a list that is empty (or emptied by the
 * change), an empty file: it trusts nobody (lib/tls_context.h), so a database
 * can be declared before its peers are trusted. Returns 0, or -ENOENT when a
 * store certificate is not set, with the fix in err (setting names the option).
 */
int trust_ref_file(const struct render_inputs *in, const char *setting, const char *ref, char *path,
                   size_t path_len, char *err, size_t err_len);

/* Adds the batch's lists to override, for rendering with the change in place. */
void trust_batch_override(const struct trust_batch *batch, struct render_override *override);

#endif
