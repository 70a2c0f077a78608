/* The certificate store: each certificate's generations on disk and an atomic pointer to the
 * current one. */
#ifndef CERTVISOR_CERTSTORE_H
#define CERTVISOR_CERTSTORE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Layout under the root (state_dir/certs):
 *   <name>/<generation>/cert.pem   the certificate, then its chain (0644)
 *   <name>/<generation>/key.pem    its private key (0640 to the key group, or 0600)
 *   <name>/current                 symlink to the generation in force
 *   <name>/pending-key.pem         a key made for a CSR, waiting for its certificate (0600)
 * A certificate and its key are always written together into a new
 * generation (written under a temporary name, fsynced, renamed, the directory
 * fsynced), never overwritten in place; switching is one rename of the
 * symlink. A crash at any point leaves either the old or the new generation
 * current, never a mismatched pair.
 */
struct certstore;

/* Opens (creating, 0750) the store at root. key_group: the group that may read service keys, or -1.
 */
int certstore_open(const char *root, gid_t key_group, struct certstore **ret_store, char *err,
                   size_t err_len);

void certstore_free(struct certstore *store);

/*
 * Removes what an interrupted write left: completes an interrupted
 * certstore_commit_many(), then drops temporary directories and generations
 * newer than the current one (staged but never committed).
 */
int certstore_recover(struct certstore *store, char *err, size_t err_len);

/*
 * Writes a new generation of name: the certificate PEM and, when key_pem is
 * not NULL, the key (group-readable when key_for_services, else 0600). The
 * new generation is not current until certstore_commit(). Returns 0 and the
 * generation number, or a negative errno with a message.
 */
int certstore_stage(struct certstore *store, const char *name, const char *cert_pem,
                    size_t cert_len, const char *key_pem, size_t key_len, bool key_for_services,
                    unsigned *ret_generation, char *err, size_t err_len);

/*
 * Where a store lives, copied out of it: a worker thread (agent/core/offload.h)
 * may touch only what its job owns, so it stages from a copy of this and the
 * files alone, never the store the loop uses.
 */
struct certstore_target {
    char root[PATH_MAX];
    gid_t key_group;
};

void certstore_target_of(const struct certstore *store, struct certstore_target *ret_target);

/*
 * certstore_stage() for a worker thread: from a target, with origin (or NULL)
 * written into the generation before it appears, so no write of the store is
 * left for the loop but the commit. Safe while the loop reads the store: a
 * generation becomes visible by one rename, and never current before a commit.
 * Two stagings of one name must not run at once (the second one's rename fails).
 */
int certstore_stage_at(const struct certstore_target *target, const char *name,
                       const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
                       bool key_for_services, const char *origin, unsigned *ret_generation,
                       char *err, size_t err_len);

/*
 * Records where a staged generation came from ("generated", "user-provided",
 * "csr"), before it is committed. certstore_get_origin() answers
 * "user-provided" for a generation without a record.
 */
int certstore_set_origin(struct certstore *store, const char *name, unsigned generation,
                         const char *origin);
void certstore_get_origin(struct certstore *store, const char *name, unsigned generation, char *buf,
                          size_t len);

/* Makes generation current (atomically) and fsyncs. */
int certstore_commit(struct certstore *store, const char *name, unsigned generation, char *err,
                     size_t err_len);

/*
 * Makes several generations current as one change: a journal listing them is
 * written first, so a crash part-way is rolled forward by certstore_recover()
 * (each listed generation was complete before the journal was written).
 */
int certstore_commit_many(struct certstore *store, const char *const *names,
                          const unsigned *generations, size_t n, char *err, size_t err_len);

/* Returns the current generation of name, -ENOENT when it has none. */
int certstore_current(struct certstore *store, const char *name, unsigned *ret_generation);

/* Fills the paths of a generation's files (key_path may be NULL). */
int certstore_paths(struct certstore *store, const char *name, unsigned generation, char *cert_path,
                    size_t cert_len, char *key_path, size_t key_len);

/* Reads a generation's certificate PEM (malloc'd). */
int certstore_read_cert(struct certstore *store, const char *name, unsigned generation,
                        char **ret_pem, size_t *ret_len);

/*
 * Reads a generation's key PEM, for the agent's own use only (signing with the
 * CA, building a context to validate). The buffer is malloc'd; the caller
 * wipes it with OPENSSL_cleanse() before freeing it.
 */
int certstore_read_key(struct certstore *store, const char *name, unsigned generation,
                       char **ret_pem, size_t *ret_len);

/* Removes a staged generation that will not be committed. */
int certstore_discard(struct certstore *store, const char *name, unsigned generation);

/* Keeps the current generation and the keep newest before it; removes the older ones. */
int certstore_prune(struct certstore *store, const char *name, unsigned keep);

/* Removes every generation of name (for optional certificates). */
int certstore_delete(struct certstore *store, const char *name, char *err, size_t err_len);

/* The pending key of a CSR: write (0600, atomically), read, and drop. */
int certstore_write_pending_key(struct certstore *store, const char *name, const char *key_pem,
                                size_t key_len, char *err, size_t err_len);
/* certstore_write_pending_key() for a worker thread, from a target. */
int certstore_write_pending_key_at(const struct certstore_target *target, const char *name,
                                   const char *key_pem, size_t key_len, char *err, size_t err_len);
int certstore_read_pending_key(struct certstore *store, const char *name, char **ret_pem,
                               size_t *ret_len);
int certstore_drop_pending_key(struct certstore *store, const char *name);

#endif
