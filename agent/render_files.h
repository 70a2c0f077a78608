/* Writing the rendered TLS files of services: from the store's generations and the policy. */
#ifndef CERTVISOR_RENDER_FILES_H
#define CERTVISOR_RENDER_FILES_H

#include "certs.h"
#include "policy.h"
#include "service_config.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define RENDER_OVERRIDES_MAX 16

/*
 * The certificates a change replaces: each is served from its staged
 * generation instead of its current one, or, when removed, is not set.
 */
struct render_override {
    size_t n;
    struct {
        const char *name;
        unsigned generation;
        bool removed;
    } certs[RENDER_OVERRIDES_MAX];
};

/* One rendered file: what it should hold, what it holds now, whether they differ. */
struct rendered_file {
    const struct tls_spec *spec;
    const char *service; /* the name of the service it belongs to (its configuration's) */
    char *output;
    char *text;
    char *previous; /* the file's content before, or NULL when it did not exist */
    bool changed;
};

struct rendered_set {
    struct rendered_file *files;
    size_t n_files;
};

/*
 * Renders every tls section of service in memory (nothing is written) and
 * appends the results to set. Returns 0, or a negative error with a message
 * naming the service, the certificate and the problem.
 */
int render_files_compute(struct certs *certs, const struct policy *policy,
                         const struct service_config *service,
                         const struct render_override *override, struct rendered_set *set,
                         char *err, size_t err_len);

/* True when a file of the set that belongs to service changed. */
bool rendered_set_changes(const struct rendered_set *set, const struct service_config *service);

/*
 * Builds, for each changed file, the same TLS context the service will build
 * (lib/tls_context.c), so a change that would not load is refused before
 * anything is applied. Returns 0, or CV_EINVALID_TLS with a message.
 */
int rendered_set_validate(const struct rendered_set *set, struct certs *certs,
                          const struct policy *policy, const struct render_override *override,
                          char *err, size_t err_len);

/*
 * Writes the changed files (atomically, 0640, group when not -1); with
 * restore, writes back what they held before instead. Returns 0 or a negative
 * error with a message.
 */
int rendered_set_write(const struct rendered_set *set, bool restore, gid_t group, char *err,
                       size_t err_len);

void rendered_set_clear(struct rendered_set *set);

/* Renders and writes the files of one service (start-up). */
int render_files_write(struct certs *certs, const struct policy *policy,
                       const struct service_config *service, gid_t group, bool *ret_changed,
                       char *err, size_t err_len);

#endif
