/* Writing the rendered TLS files of services: from the store's generations and the policy. */
#ifndef CERTVISOR_RENDER_FILES_H
#define CERTVISOR_RENDER_FILES_H

#include "certs.h"
#include "conf_databases.h"
#include "policy.h"
#include "service_config.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define RENDER_OVERRIDES_MAX 16
#define RENDER_TRUST_OVERRIDES_MAX 8

/*
 * The certificates a change replaces: each is served from its staged
 * generation instead of its current one, or, when removed, is not set. The
 * same for the trust lists it changes (agent/pki/trust.h): removed, a list is empty.
 */
struct render_override {
    size_t n;
    struct {
        const char *name;
        unsigned generation;
        bool removed;
    } certs[RENDER_OVERRIDES_MAX];
    size_t n_trusts;
    struct {
        const char *list;
        unsigned generation;
        bool removed;
    } trusts[RENDER_TRUST_OVERRIDES_MAX];
};

/* What files are rendered from: the store, the policy, the databases, and a change's overrides. */
struct render_inputs {
    struct certs *certs;
    const struct policy *policy;
    const struct render_override *override; /* NULL: every certificate from its current one */
    const struct database_decl *databases;
    size_t n_databases;
};

/*
 * One rendered file: what it should hold, what it holds now, whether they
 * differ. A service's TLS files have their tls section as spec; its database
 * list (databases_output) has none.
 */
struct rendered_file {
    const struct tls_spec *spec;        /* NULL for the database list */
    const struct service_config *owner; /* the configuration of the service it belongs to */
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
 * Renders every file of service in memory (nothing is written): its tls
 * sections and its database list, and appends them to set. Returns 0, or a
 * negative error with a message naming the service, the certificate and the
 * problem.
 */
int render_files_compute(const struct render_inputs *in, const struct service_config *service,
                         struct rendered_set *set, char *err, size_t err_len);

/* True when a file of the set that belongs to service changed. */
bool rendered_set_changes(const struct rendered_set *set, const struct service_config *service);

/*
 * Builds, for each changed file, what the service will build from it (the
 * TLS context of lib/tls_context.c; for a database list, each database's
 * client and shard contexts), so a change that would not load is refused
 * before anything is applied. Returns 0, or CV_EINVALID_TLS with a message.
 */
int rendered_set_validate(const struct rendered_set *set, const struct render_inputs *in, char *err,
                          size_t err_len);

/*
 * Writes the changed files (atomically, 0640, group when not -1); with
 * restore, writes back what they held before instead. Returns 0 or a negative
 * error with a message.
 */
int rendered_set_write(const struct rendered_set *set, bool restore, gid_t group, char *err,
                       size_t err_len);

void rendered_set_clear(struct rendered_set *set);

/* Renders and writes the files of one service (start-up). */
int render_files_write(const struct render_inputs *in, const struct service_config *service,
                       gid_t group, bool *ret_changed, char *err, size_t err_len);

/*
 * The files a certificate is served from: its current generation, or the
 * override's (-ENOENT when it is not set, or removed by the override).
 * key_path may be NULL. The cluster CA's certificate is its exported copy.
 */
int render_cert_files(const struct render_inputs *in, const char *name, char *cert_path,
                      size_t cert_len, char *key_path, size_t key_len);

/* The OCSP response of a certificate generation is kept beside it, under this name. */
#define RENDER_OCSP_FILE "ocsp.der"

/* The OCSP response's path for the generation whose certificate is at cert_path. */
int render_ocsp_path(const char *cert_path, char *buf, size_t len);

#endif
