/* Building a generation: the syncer's TLS file and the replicas file read, every context built. */
#include "syncer.h"

#include "cv_error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The shard is this node's own process: TLS 1.2 at least, as the proxy reaches it. */
#define SHARD_MIN_VERSION "1.2"

void generation_free(struct generation *gen)
{
    if (!gen)
        return;
    for (size_t i = 0; i < gen->n; i++) {
        SSL_CTX_free(gen->links[i].ctx);
        SSL_CTX_free(gen->links[i].shard_ctx);
    }
    free(gen->links);
    db_list_clear(&gen->list);
    tls_config_free(gen->tls);
    free(gen);
}

/*
 * The syncer as a TLS client of the source: its certificate, the data plane's
 * minimum version and ciphers, and the link's trust (replica_ca_file), whose
 * every certificate is an anchor (a pinned proxy certificate as much as a CA).
 */
static int build_source_ctx(struct generation *gen, struct link_settings *link, char *err,
                            size_t err_len)
{
    struct tls_config config = *gen->tls;
    char message[768];
    int r;

    config.ca_file = link->db->replica_ca_file;
    config.verify_peer = TLS_VERIFY_REQUIRE;
    config.tls_mode = NULL;
    config.http = NULL;
    r = tls_context_build(&config, TLS_ROLE_CLIENT, &link->ctx, message, sizeof(message));
    if (r < 0)
        snprintf(err, err_len, "database '%s': %s", link->db->name, message);
    else
        session_prepare_ctx(link->ctx);
    return r;
}

static int build_shard_ctx(struct link_settings *link, char *err, size_t err_len)
{
    const struct db_config *db = link->db;
    struct tls_config config = {
        .cert_file = db->shard_cert_file,
        .key_file = db->shard_key_file,
        .ca_file = db->shard_ca_file,
        .min_version = SHARD_MIN_VERSION,
        .security_level = -1,
        .verify_peer = TLS_VERIFY_REQUIRE,
    };
    char message[768];
    int r;

    if (!db->shard_tls)
        return 0;
    r = tls_context_build(&config, TLS_ROLE_CLIENT, &link->shard_ctx, message, sizeof(message));
    if (r < 0)
        snprintf(err, err_len, "database '%s': shard TLS: %s", db->name, message);
    return r;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct db_config *)a)->name, ((const struct db_config *)b)->name);
}

int generation_build(const char *tls_path, const char *replicas_path, struct generation **ret_gen,
                     char *err, size_t err_len)
{
    struct generation *gen = calloc(1, sizeof(*gen));
    SSL_CTX *check = NULL;
    char message[768];
    int r;

    if (!gen) {
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    r = tls_config_read(tls_path, &gen->tls, err, err_len);
    /* The certificate and policy must build even without a link, so a bad file fails now. */
    if (r >= 0 &&
        (r = tls_context_build(gen->tls, TLS_ROLE_CLIENT, &check, message, sizeof(message))) < 0)
        snprintf(err, err_len, "%s: %s", tls_path, message);
    if (r >= 0)
        tls_cert_fingerprint(SSL_CTX_get0_certificate(check), gen->fingerprint,
                             sizeof(gen->fingerprint));
    SSL_CTX_free(check);
    if (r >= 0)
        r = db_list_read(replicas_path, &gen->list, err, err_len);
    if (r >= 0 && !(gen->links = calloc(gen->list.n + 1, sizeof(*gen->links)))) {
        snprintf(err, err_len, "out of memory");
        r = -ENOMEM;
    }
    if (r >= 0 && gen->list.n) {
        qsort(gen->list.dbs, gen->list.n, sizeof(*gen->list.dbs), by_name);
        gen->n = gen->list.n;
    }
    for (size_t i = 0; r >= 0 && i < gen->n; i++) {
        gen->links[i].db = &gen->list.dbs[i];
        if (!gen->links[i].db->replica_source) {
            snprintf(err, err_len, "%s: database '%s' has no replica_source", replicas_path,
                     gen->links[i].db->name);
            r = CV_EINVALID_TLS;
            break;
        }
        r = build_source_ctx(gen, &gen->links[i], err, err_len);
        if (r >= 0)
            r = build_shard_ctx(&gen->links[i], err, err_len);
    }
    if (r < 0) {
        generation_free(gen);
        return r;
    }
    *ret_gen = gen;
    return 0;
}
