/* Unit tests for sealing private keys with the cluster's data key (agent/cluster/sealed.c):
 * what seals opens only with the same key, for the same etcd path, unchanged; the key file is
 * refused when others could read it or when it is not a key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sealed.h"
#include "unit_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH "/certvisor/prod/spec/certs/proxy/gen/3/key"
#define PEM "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n"

static void a_sealed_key_opens_only_as_it_was_sealed(void **unused)
{
    unsigned char key[SEALED_KEY_BYTES], other[SEALED_KEY_BYTES], *sealed, *plain;
    size_t sealed_len, plain_len;
    char err[256];

    (void)unused;
    assert_int_equal(sealed_key_generate(key), 0);
    assert_int_equal(sealed_key_generate(other), 0);
    assert_int_equal(sealed_seal(key, PATH, strlen(PATH), PEM, strlen(PEM), &sealed, &sealed_len),
                     0);
    assert_int_equal(sealed_len, strlen(PEM) + SEALED_OVERHEAD);
    assert_null(memmem(sealed, sealed_len, "PRIVATE KEY", 11)); /* nothing of it in clear */
    assert_int_equal(sealed_open(key, PATH, strlen(PATH), sealed, sealed_len, &plain, &plain_len,
                                 err, sizeof(err)),
                     0);
    assert_int_equal(plain_len, strlen(PEM));
    assert_string_equal((char *)plain, PEM);
    sealed_free(plain, plain_len);
    /* Another key, another path, one bit changed, cut short: refused, nothing returned. */
    assert_int_equal(sealed_open(other, PATH, strlen(PATH), sealed, sealed_len, &plain, &plain_len,
                                 err, sizeof(err)),
                     -EBADMSG);
    assert_null(plain);
    assert_non_null(strstr(err, "does not open with this node's cluster data key"));
    assert_int_equal(sealed_open(key, PATH "x", strlen(PATH) + 1, sealed, sealed_len, &plain,
                                 &plain_len, err, sizeof(err)),
                     -EBADMSG);
    sealed[SEALED_OVERHEAD] ^= 1;
    assert_int_equal(sealed_open(key, PATH, strlen(PATH), sealed, sealed_len, &plain, &plain_len,
                                 err, sizeof(err)),
                     -EBADMSG);
    sealed[SEALED_OVERHEAD] ^= 1;
    assert_int_equal(sealed_open(key, PATH, strlen(PATH), sealed, SEALED_OVERHEAD - 1, &plain,
                                 &plain_len, err, sizeof(err)),
                     -EBADMSG);
    assert_non_null(strstr(err, "not a sealed key"));
    free(sealed);
}

static void two_seals_differ(void **unused)
{
    unsigned char key[SEALED_KEY_BYTES], *a, *b;
    size_t a_len, b_len;

    (void)unused;
    assert_int_equal(sealed_key_generate(key), 0);
    assert_int_equal(sealed_seal(key, PATH, strlen(PATH), PEM, strlen(PEM), &a, &a_len), 0);
    assert_int_equal(sealed_seal(key, PATH, strlen(PATH), PEM, strlen(PEM), &b, &b_len), 0);
    assert_int_equal(a_len, b_len);
    assert_memory_not_equal(a, b, a_len); /* a fresh nonce each time */
    free(a);
    free(b);
    assert_int_equal(
        sealed_seal(key, PATH, strlen(PATH), PEM, SEALED_MAX_PLAINTEXT + 1, &a, &a_len), -EFBIG);
}

static void the_key_file_is_private_and_whole(void **unused)
{
    unsigned char key[SEALED_KEY_BYTES], read_back[SEALED_KEY_BYTES], check[SEALED_CHECK_BYTES],
        check2[SEALED_CHECK_BYTES];
    char dir[] = "/tmp/cv-sealed-XXXXXX", path[64], err[512];
    struct stat st;

    (void)unused;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/cluster.key", dir);
    assert_int_equal(sealed_key_generate(key), 0);
    assert_int_equal(sealed_key_write(path, key, err, sizeof(err)), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(sealed_key_read(path, read_back, err, sizeof(err)), 0);
    assert_memory_equal(key, read_back, SEALED_KEY_BYTES);
    /* Never replaced: a node keeps the key it has. */
    assert_int_equal(sealed_key_write(path, key, err, sizeof(err)), -EEXIST);
    assert_non_null(strstr(err, "keeps the key it has"));
    /* Readable by its group: refused, with the fix. */
    chmod(path, 0640);
    assert_int_equal(sealed_key_read(path, read_back, err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "chmod 600"));
    chmod(path, 0600);
    /* Not 32 bytes: not a key. */
    unit_write_file(dir, "short.key", "0123456789");
    snprintf(path, sizeof(path), "%s/short.key", dir);
    chmod(path, 0600);
    assert_int_equal(sealed_key_read(path, read_back, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "holds 10 bytes, not 32"));
    /* The check value tells keys apart and reveals nothing of them. */
    assert_int_equal(sealed_key_check_value(key, check), 0);
    assert_int_equal(sealed_key_check_value(key, check2), 0);
    assert_memory_equal(check, check2, SEALED_CHECK_BYTES);
    assert_memory_not_equal(check, key, SEALED_CHECK_BYTES);
    key[0] ^= 1;
    assert_int_equal(sealed_key_check_value(key, check2), 0);
    assert_memory_not_equal(check, check2, SEALED_CHECK_BYTES);
    unit_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_sealed_key_opens_only_as_it_was_sealed),
        cmocka_unit_test(two_seals_differ),
        cmocka_unit_test(the_key_file_is_private_and_whole),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
