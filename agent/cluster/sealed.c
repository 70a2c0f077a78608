/* Sealing private keys for etcd with the cluster's data key (sealed.h): OpenSSL's AES-256-GCM. */
#include "sealed.h"

#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHECK_LABEL "certvisor cluster data key check v1"

int sealed_key_generate(unsigned char key[SEALED_KEY_BYTES])
{
    return RAND_priv_bytes(key, SEALED_KEY_BYTES) == 1 ? 0 : -EIO;
}

int sealed_key_write(const char *path, const unsigned char key[SEALED_KEY_BYTES], char *err,
                     size_t err_len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    int r;

    if (fd < 0) {
        r = -errno;
        snprintf(err, err_len, "cannot create the cluster data key %s: %s%s", path, strerror(errno),
                 errno == EEXIST ? " (a node keeps the key it has: remove it by hand only if "
                                   "this node leaves its cluster)"
                                 : "");
        return r;
    }
    r = fs_write_all(fd, key, SEALED_KEY_BYTES);
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    close(fd);
    if (r == 0)
        r = fs_fsync_parent(path);
    if (r < 0) {
        unlink(path); /* never a partial key */
        snprintf(err, err_len, "cannot write the cluster data key %s: %s", path, strerror(-r));
    }
    return r;
}

int sealed_key_read(const char *path, unsigned char key[SEALED_KEY_BYTES], char *err,
                    size_t err_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    unsigned char buf[SEALED_KEY_BYTES + 1];
    struct stat st;
    ssize_t n;

    if (fd < 0) {
        snprintf(err, err_len, "cannot read the cluster data key %s: %s", path, strerror(errno));
        return -errno;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & 077)) {
        snprintf(err, err_len,
                 "the cluster data key %s must be a regular file of this user (uid %u) that "
                 "nobody else may read or write: chown %u %s && chmod 600 %s",
                 path, (unsigned)geteuid(), (unsigned)geteuid(), path, path);
        close(fd);
        return -EPERM;
    }
    n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n != SEALED_KEY_BYTES) {
        OPENSSL_cleanse(buf, sizeof(buf));
        snprintf(err, err_len,
                 "the cluster data key %s holds %zd bytes, not %d: it is not a "
                 "data key (copy the cluster's from another node)",
                 path, n, SEALED_KEY_BYTES);
        return -EINVAL;
    }
    memcpy(key, buf, SEALED_KEY_BYTES);
    OPENSSL_cleanse(buf, sizeof(buf));
    return 0;
}

/* One AES-256-GCM pass; encrypt or decrypt in place of out. Returns 0 or -EBADMSG/-EIO. */
static int gcm(bool encrypt, const unsigned char key[SEALED_KEY_BYTES],
               const unsigned char nonce[SEALED_NONCE_BYTES], const char *aad, size_t aad_len,
               const unsigned char *in, size_t len, unsigned char *out,
               unsigned char tag[SEALED_TAG_BYTES])
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, r = -EIO;

    if (!ctx || aad_len > INT32_MAX || len > INT32_MAX)
        goto out;
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, encrypt) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SEALED_NONCE_BYTES, NULL) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, encrypt) != 1 ||
        EVP_CipherUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)aad_len) != 1 ||
        (len && EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1))
        goto out;
    if (!encrypt && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEALED_TAG_BYTES, tag) != 1)
        goto out;
    if (EVP_CipherFinal_ex(ctx, out + len, &n) != 1) {
        r = encrypt ? -EIO : -EBADMSG; /* decrypting: the tag did not match */
        goto out;
    }
    if (encrypt && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEALED_TAG_BYTES, tag) != 1)
        goto out;
    r = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    return r;
}

int sealed_seal(const unsigned char key[SEALED_KEY_BYTES], const char *aad, size_t aad_len,
                const void *plain, size_t len, unsigned char **out, size_t *out_len)
{
    unsigned char *buf, *nonce, *body;
    int r;

    *out = NULL;
    *out_len = 0;
    if (len > SEALED_MAX_PLAINTEXT)
        return -EFBIG;
    buf = malloc(SEALED_OVERHEAD + len);
    if (!buf)
        return -ENOMEM;
    memcpy(buf, SEALED_MAGIC, 4);
    nonce = buf + 4;
    body = nonce + SEALED_NONCE_BYTES;
    if (RAND_bytes(nonce, SEALED_NONCE_BYTES) != 1) {
        free(buf);
        return -EIO;
    }
    r = gcm(true, key, nonce, aad, aad_len, plain, len, body, body + len);
    if (r < 0) {
        free(buf);
        return r;
    }
    *out = buf;
    *out_len = SEALED_OVERHEAD + len;
    return 0;
}

int sealed_open(const unsigned char key[SEALED_KEY_BYTES], const char *aad, size_t aad_len,
                const unsigned char *in, size_t in_len, unsigned char **plain, size_t *plain_len,
                char *err, size_t err_len)
{
    unsigned char tag[SEALED_TAG_BYTES], *out;
    size_t len;
    int r;

    *plain = NULL;
    *plain_len = 0;
    if (in_len < SEALED_OVERHEAD || memcmp(in, SEALED_MAGIC, 4) != 0 ||
        in_len - SEALED_OVERHEAD > SEALED_MAX_PLAINTEXT) {
        snprintf(err, err_len, "not a sealed key (no '%s' header, or a length of %zu bytes)",
                 SEALED_MAGIC, in_len);
        return -EBADMSG;
    }
    len = in_len - SEALED_OVERHEAD;
    memcpy(tag, in + in_len - SEALED_TAG_BYTES, SEALED_TAG_BYTES);
    out = malloc(len + 1);
    if (!out)
        return -ENOMEM;
    r = gcm(false, key, in + 4, aad, aad_len, in + 4 + SEALED_NONCE_BYTES, len, out, tag);
    if (r < 0) {
        OPENSSL_clear_free(out, len + 1);
        snprintf(err, err_len,
                 "the sealed key does not open with this node's cluster data key for %.*s: it "
                 "was sealed with another key or for another name, or it was changed",
                 (int)(aad_len > 200 ? 200 : aad_len), aad);
        return -EBADMSG;
    }
    out[len] = '\0';
    *plain = out;
    *plain_len = len;
    return 0;
}

void sealed_free(unsigned char *plain, size_t len)
{
    if (plain)
        OPENSSL_clear_free(plain, len + 1);
}

int sealed_key_check_value(const unsigned char key[SEALED_KEY_BYTES],
                           unsigned char out[SEALED_CHECK_BYTES])
{
    unsigned int len = SEALED_CHECK_BYTES;

    return HMAC(EVP_sha256(), key, SEALED_KEY_BYTES, (const unsigned char *)CHECK_LABEL,
                strlen(CHECK_LABEL), out, &len) &&
                   len == SEALED_CHECK_BYTES
               ? 0
               : -EIO;
}
