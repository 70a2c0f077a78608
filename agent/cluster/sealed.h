/*
 * Private keys in etcd are always sealed (issue 16): AES-256-GCM with the cluster's data key,
 * which every node keeps in state_dir/cluster.key (0600, 32 bytes) and etcd never sees. The
 * additional data is the etcd key path the value is stored under, so a sealed key cannot be
 * moved to another certificate's name or generation and still open. etcd alone, or a copy of
 * its data directory, never yields a private key.
 *
 * A sealed value: "CVS1" | 12-byte random nonce | ciphertext | 16-byte tag. A fresh nonce per
 * seal; with at most a few keys sealed per change, a random 96-bit nonce is far from the
 * 2^32 seals per key that GCM allows.
 */
#ifndef CERTVISOR_SEALED_H
#define CERTVISOR_SEALED_H

#include <stddef.h>
#include <stdint.h>

#define SEALED_KEY_BYTES 32
#define SEALED_MAGIC "CVS1"
#define SEALED_NONCE_BYTES 12
#define SEALED_TAG_BYTES 16
#define SEALED_OVERHEAD (4 + SEALED_NONCE_BYTES + SEALED_TAG_BYTES)
/* A private key in PEM is a few kilobytes; anything this large is not one. */
#define SEALED_MAX_PLAINTEXT (256 * 1024)
#define SEALED_CHECK_BYTES 32

/* A new random data key (from the OpenSSL's private DRBG). Returns 0 or -EIO. */
int sealed_key_generate(unsigned char key[SEALED_KEY_BYTES]);

/*
 * Writes a new key file: created (never replaced), mode 0600, written whole and synced, so a
 * crash leaves either no file or the whole key. Returns 0 or a negative errno (-EEXIST when
 * the file is there already), err saying what. Slow (fsync): never on the agent's loop.
 */
int sealed_key_write(const char *path, const unsigned char key[SEALED_KEY_BYTES], char *err,
                     size_t err_len);

/*
 * Reads the key file: a regular file of exactly SEALED_KEY_BYTES bytes, owned by this user,
 * readable by nobody else (a key others could read is refused, with the chmod that fixes it).
 * Returns 0 or a negative errno, err saying what and how to fix it.
 */
int sealed_key_read(const char *path, unsigned char key[SEALED_KEY_BYTES], char *err,
                    size_t err_len);

/* Seals plain (at most SEALED_MAX_PLAINTEXT bytes) for the etcd key path aad. *out is
 * malloc'd (SEALED_OVERHEAD + len bytes). Returns 0, -EFBIG, -ENOMEM or -EIO. */
int sealed_seal(const unsigned char key[SEALED_KEY_BYTES], const char *aad, size_t aad_len,
                const void *plain, size_t len, unsigned char **out, size_t *out_len);

/*
 * Opens a sealed value read from the etcd key path aad. On success *plain (NUL-terminated,
 * *plain_len without it) must be freed with sealed_free(). Anything that is not a value this
 * key sealed for this path (truncated, another key, another path, one bit changed) is
 * refused: -EBADMSG with err saying so, and nothing is returned.
 */
int sealed_open(const unsigned char key[SEALED_KEY_BYTES], const char *aad, size_t aad_len,
                const unsigned char *in, size_t in_len, unsigned char **plain, size_t *plain_len,
                char *err, size_t err_len);

/* Wipes and frees what sealed_open() returned. */
void sealed_free(unsigned char *plain, size_t len);

/* A value that tells whether a node holds the cluster's data key without revealing it
 * (HMAC-SHA256 of a fixed label): kept in etcd's meta key, compared when a node starts. */
int sealed_key_check_value(const unsigned char key[SEALED_KEY_BYTES],
                           unsigned char out[SEALED_CHECK_BYTES]);

#endif
