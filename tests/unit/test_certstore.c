/* Unit tests for the certificate store: generations, the atomic current pointer, recovery, modes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

#include "certstore.h"

#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
    char dir[64];
    char root[128];
    struct certstore *store;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char err[256];

    assert_non_null(fx);
    unit_make_tempdir(fx->dir, sizeof(fx->dir), "certstore");
    snprintf(fx->root, sizeof(fx->root), "%s/certs", fx->dir);
    assert_int_equal(certstore_open(fx->root, (gid_t)-1, &fx->store, err, sizeof(err)), 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    certstore_free(fx->store);
    unit_remove_tree(fx->dir);
    free(fx);
    return 0;
}

static unsigned stage(struct fixture *fx, const char *name, const char *cert, const char *key)
{
    unsigned generation = 0;
    char err[256];

    assert_int_equal(certstore_stage(fx->store, name, cert, strlen(cert), key,
                                     key ? strlen(key) : 0, true, &generation, err, sizeof(err)),
                     0);
    return generation;
}

static mode_t mode_of(const char *path)
{
    struct stat st;

    assert_int_equal(lstat(path, &st), 0);
    return st.st_mode & 07777;
}

static bool exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

static void staged_is_not_current_until_committed(void **state)
{
    struct fixture *fx = *state;
    unsigned current = 0;
    char err[256];
    unsigned g = stage(fx, "proxy", "CERT1", "KEY1");

    assert_int_equal(g, 1);
    assert_int_equal(certstore_current(fx->store, "proxy", &current), -ENOENT);
    assert_int_equal(certstore_commit(fx->store, "proxy", g, err, sizeof(err)), 0);
    assert_int_equal(certstore_current(fx->store, "proxy", &current), 0);
    assert_int_equal(current, 1);
}

static void generations_count_up_and_the_pointer_switches(void **state)
{
    struct fixture *fx = *state;
    char err[256], *pem = NULL;
    size_t len = 0;
    unsigned current = 0, g1, g2;

    g1 = stage(fx, "api", "CERT-A", "KEY-A");
    assert_int_equal(certstore_commit(fx->store, "api", g1, err, sizeof(err)), 0);
    g2 = stage(fx, "api", "CERT-B", "KEY-B");
    assert_int_equal(g2, g1 + 1);
    assert_int_equal(certstore_read_cert(fx->store, "api", g1, &pem, &len), 0);
    assert_string_equal(pem, "CERT-A");
    free(pem);
    assert_int_equal(certstore_commit(fx->store, "api", g2, err, sizeof(err)), 0);
    assert_int_equal(certstore_current(fx->store, "api", &current), 0);
    assert_int_equal(current, g2);
    assert_int_equal(certstore_read_key(fx->store, "api", g2, &pem, &len), 0);
    assert_string_equal(pem, "KEY-B");
    OPENSSL_cleanse(pem, len);
    free(pem);
    /* Rolling back is committing the old generation again. */
    assert_int_equal(certstore_commit(fx->store, "api", g1, err, sizeof(err)), 0);
    assert_int_equal(certstore_current(fx->store, "api", &current), 0);
    assert_int_equal(current, g1);
}

static void files_get_the_narrowest_modes(void **state)
{
    struct fixture *fx = *state;
    char cert[PATH_MAX], key[PATH_MAX], err[256];
    unsigned g = 0;

    g = stage(fx, "cm", "CERT", "KEY");
    assert_int_equal(certstore_paths(fx->store, "cm", g, cert, sizeof(cert), key, sizeof(key)), 0);
    assert_int_equal(mode_of(cert), 0644);
    /* No key group configured: owner only, even for a service key. */
    assert_int_equal(mode_of(key), 0600);
    assert_int_equal(mode_of(fx->root), 0750);
    assert_int_equal(
        certstore_stage(fx->store, "ca", "CA", 2, "CAKEY", 5, false, &g, err, sizeof(err)), 0);
    assert_int_equal(certstore_paths(fx->store, "ca", g, cert, sizeof(cert), key, sizeof(key)), 0);
    assert_int_equal(mode_of(key), 0600);
}

static void a_group_readable_key_when_a_key_group_is_set(void **state)
{
    struct fixture *fx = *state;
    struct certstore *grouped;
    char root[128], cert[PATH_MAX], key[PATH_MAX], err[256];
    unsigned g = 0;
    struct stat st;

    snprintf(root, sizeof(root), "%s/grouped", fx->dir);
    assert_int_equal(certstore_open(root, getegid(), &grouped, err, sizeof(err)), 0);
    assert_int_equal(certstore_stage(grouped, "proxy", "C", 1, "K", 1, true, &g, err, sizeof(err)),
                     0);
    assert_int_equal(certstore_paths(grouped, "proxy", g, cert, sizeof(cert), key, sizeof(key)), 0);
    assert_int_equal(mode_of(key), 0640);
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_gid, getegid());
    certstore_free(grouped);
}

static void bundles_have_no_key_file(void **state)
{
    struct fixture *fx = *state;
    char cert[PATH_MAX], key[PATH_MAX];
    unsigned g = stage(fx, "mtls_trusted_ca", "CA1\nCA2", NULL);

    assert_int_equal(
        certstore_paths(fx->store, "mtls_trusted_ca", g, cert, sizeof(cert), key, sizeof(key)), 0);
    assert_true(exists(cert));
    assert_false(exists(key));
}

static void recovery_removes_interrupted_and_uncommitted_writes(void **state)
{
    struct fixture *fx = *state;
    char err[256], path[PATH_MAX];
    unsigned current = 0, g1, g2;

    g1 = stage(fx, "syncer", "C1", "K1");
    assert_int_equal(certstore_commit(fx->store, "syncer", g1, err, sizeof(err)), 0);
    g2 = stage(fx, "syncer", "C2", "K2"); /* a crash before commit */
    snprintf(path, sizeof(path), "%s/syncer/.tmp-9-1", fx->root);
    assert_int_equal(mkdir(path, 0700), 0); /* a crash in the middle of a write */
    snprintf(path, sizeof(path), "%s/syncer/.current-tmp-1", fx->root);
    assert_int_equal(symlink("2", path), 0); /* a crash between symlink and rename */
    stage(fx, "ldap_client", "C", "K");      /* never committed at all */
    assert_int_equal(certstore_recover(fx->store, err, sizeof(err)), 0);
    assert_int_equal(certstore_current(fx->store, "syncer", &current), 0);
    assert_int_equal(current, g1);
    snprintf(path, sizeof(path), "%s/syncer/%u", fx->root, g2);
    assert_false(exists(path));
    snprintf(path, sizeof(path), "%s/syncer/.tmp-9-1", fx->root);
    assert_false(exists(path));
    snprintf(path, sizeof(path), "%s/syncer/.current-tmp-1", fx->root);
    assert_false(exists(path));
    snprintf(path, sizeof(path), "%s/ldap_client/1", fx->root);
    assert_false(exists(path));
    /* Numbering continues from what is on disk. */
    assert_int_equal(stage(fx, "syncer", "C3", "K3"), g1 + 1);
}

static void prune_keeps_the_current_and_the_newest_older_ones(void **state)
{
    struct fixture *fx = *state;
    char err[256], path[PATH_MAX];
    unsigned g[6];

    for (int i = 0; i < 6; i++)
        g[i] = stage(fx, "proxy", "C", "K");
    assert_int_equal(certstore_commit(fx->store, "proxy", g[4], err, sizeof(err)), 0);
    assert_int_equal(certstore_prune(fx->store, "proxy", 2), 0);
    for (int i = 0; i < 6; i++) {
        snprintf(path, sizeof(path), "%s/proxy/%u", fx->root, g[i]);
        /* kept: two below current (g[2], g[3]), current g[4], and staged g[5] */
        assert_int_equal(exists(path), i >= 2);
    }
}

static void the_current_generation_cannot_be_discarded(void **state)
{
    struct fixture *fx = *state;
    char err[256];
    unsigned g = stage(fx, "api", "C", "K");

    assert_int_equal(certstore_commit(fx->store, "api", g, err, sizeof(err)), 0);
    assert_int_equal(certstore_discard(fx->store, "api", g), -EBUSY);
}

static void pending_keys_and_delete(void **state)
{
    struct fixture *fx = *state;
    char err[256], path[PATH_MAX], *pem = NULL;
    size_t len = 0;

    assert_int_equal(
        certstore_write_pending_key(fx->store, "proxy", "PENDING", 7, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/proxy/pending-key.pem", fx->root);
    assert_int_equal(mode_of(path), 0600);
    assert_int_equal(certstore_read_pending_key(fx->store, "proxy", &pem, &len), 0);
    assert_string_equal(pem, "PENDING");
    OPENSSL_cleanse(pem, len);
    free(pem);
    assert_int_equal(certstore_drop_pending_key(fx->store, "proxy"), 0);
    assert_false(exists(path));
    stage(fx, "ldap_client", "C", "K");
    assert_int_equal(certstore_delete(fx->store, "ldap_client", err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/ldap_client", fx->root);
    assert_false(exists(path));
}

static void names_that_could_escape_the_store_are_refused(void **state)
{
    struct fixture *fx = *state;
    char err[256];
    unsigned g;

    assert_int_equal(
        certstore_stage(fx->store, "../etc", "C", 1, "K", 1, true, &g, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not a certificate name"));
    assert_int_equal(certstore_stage(fx->store, "", "C", 1, NULL, 0, true, &g, err, sizeof(err)),
                     -EINVAL);
    assert_int_equal(
        certstore_stage(fx->store, "Proxy", "C", 1, NULL, 0, true, &g, err, sizeof(err)), -EINVAL);
}

static void commit_many_switches_every_certificate(void **state)
{
    struct fixture *fx = *state;
    const char *names[] = {"api", "cm"};
    unsigned generations[2], current = 0;
    char err[256], path[PATH_MAX];

    generations[0] = stage(fx, "api", "C1", "K1");
    generations[1] = stage(fx, "cm", "C1", "K1");
    assert_int_equal(certstore_commit_many(fx->store, names, generations, 2, err, sizeof(err)), 0);
    assert_int_equal(certstore_current(fx->store, "api", &current), 0);
    assert_int_equal(current, generations[0]);
    assert_int_equal(certstore_current(fx->store, "cm", &current), 0);
    assert_int_equal(current, generations[1]);
    snprintf(path, sizeof(path), "%s/commit-journal", fx->root);
    assert_false(exists(path)); /* done: no journal left */
}

/* A crash after the first switch of several: the journal completes the change at recovery. */
static void recovery_rolls_an_interrupted_commit_forward(void **state)
{
    struct fixture *fx = *state;
    unsigned g_api, g_cm, current = 0;
    char err[256], path[PATH_MAX];
    FILE *journal;

    assert_int_equal(
        certstore_commit(fx->store, "cm", stage(fx, "cm", "C0", "K0"), err, sizeof(err)), 0);
    g_api = stage(fx, "api", "C1", "K1");
    g_cm = stage(fx, "cm", "C1", "K1");
    snprintf(path, sizeof(path), "%s/commit-journal", fx->root);
    journal = fopen(path, "w");
    assert_non_null(journal);
    fprintf(journal, "api %u\ncm %u\n", g_api, g_cm);
    fclose(journal);
    assert_int_equal(certstore_commit(fx->store, "api", g_api, err, sizeof(err)), 0);
    /* ...and the agent dies here, before cm switches. */
    assert_int_equal(certstore_recover(fx->store, err, sizeof(err)), 0);
    assert_int_equal(certstore_current(fx->store, "cm", &current), 0);
    assert_int_equal(current, g_cm); /* not removed as "staged, never committed" */
    assert_int_equal(certstore_current(fx->store, "api", &current), 0);
    assert_int_equal(current, g_api);
    assert_false(exists(path));
}

/*
 * A worker thread stages from a copy of where the store is (agent/core/offload.h): the store itself
 * may be gone. The origin is in the generation when it appears, and it is not current.
 */
static void a_target_stages_without_the_store(void **state)
{
    struct fixture *fx = *state;
    struct certstore_target target;
    char err[256], path[PATH_MAX], origin[32];
    unsigned generation = 0, current;

    certstore_target_of(fx->store, &target);
    certstore_free(fx->store);
    fx->store = NULL;
    assert_int_equal(certstore_stage_at(&target, "api", "CERT", 4, "KEY", 3, true, "generated",
                                        &generation, err, sizeof(err)),
                     0);
    assert_int_equal(generation, 1);
    snprintf(path, sizeof(path), "%s/api/1/origin", fx->root);
    assert_int_equal(mode_of(path), 0644);
    snprintf(path, sizeof(path), "%s/api/1/key.pem", fx->root);
    assert_int_equal(mode_of(path), 0600); /* no key group */
    assert_int_equal(certstore_open(fx->root, (gid_t)-1, &fx->store, err, sizeof(err)), 0);
    assert_int_equal(certstore_current(fx->store, "api", &current), -ENOENT);
    certstore_get_origin(fx->store, "api", 1, origin, sizeof(origin));
    assert_string_equal(origin, "generated");
    assert_int_equal(certstore_stage_at(&target, "api", "C2", 2, NULL, 0, true, NULL, &generation,
                                        err, sizeof(err)),
                     0);
    assert_int_equal(generation, 2);
    certstore_get_origin(fx->store, "api", 2, origin, sizeof(origin));
    assert_string_equal(origin, "user-provided"); /* none recorded */
    assert_int_equal(certstore_stage_at(&target, "../x", "C", 1, NULL, 0, true, NULL, &generation,
                                        err, sizeof(err)),
                     -EINVAL);
}

struct pending_writer {
    struct certstore *store;        /* one thread writes through the store */
    struct certstore_target target; /* the other from a copy, as a worker does */
    bool from_target;
    int failures;
    char err[256];
};

#define PENDING_WRITES 40

static void *write_pending_keys(void *arg)
{
    struct pending_writer *writer = arg;

    for (int i = 0; i < PENDING_WRITES; i++) {
        int r = writer->from_target
                    ? certstore_write_pending_key_at(&writer->target, "proxy", "PENDING", 7,
                                                     writer->err, sizeof(writer->err))
                    : certstore_write_pending_key(writer->store, "proxy", "PENDING", 7, writer->err,
                                                  sizeof(writer->err));

        writer->failures += r < 0;
    }
    return NULL;
}

/* Two CSRs for one name on the two offload workers at once: neither write fails for sharing a
 * temporary file with the other, and one key is left whole. */
static void pending_keys_written_at_once_do_not_collide(void **state)
{
    struct fixture *fx = *state;
    struct pending_writer writers[2] = {{.store = fx->store}, {.from_target = true}};
    pthread_t threads[2];
    char *pem = NULL;
    size_t len = 0;

    certstore_target_of(fx->store, &writers[1].target);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, write_pending_keys, &writers[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    if (writers[0].failures || writers[1].failures)
        fail_msg("%d and %d of %d writes failed: %s; %s", writers[0].failures, writers[1].failures,
                 PENDING_WRITES, writers[0].err, writers[1].err);
    assert_int_equal(certstore_read_pending_key(fx->store, "proxy", &pem, &len), 0);
    assert_string_equal(pem, "PENDING");
    free(pem);
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(staged_is_not_current_until_committed),
        TEST(generations_count_up_and_the_pointer_switches),
        TEST(files_get_the_narrowest_modes),
        TEST(a_group_readable_key_when_a_key_group_is_set),
        TEST(bundles_have_no_key_file),
        TEST(recovery_removes_interrupted_and_uncommitted_writes),
        TEST(prune_keeps_the_current_and_the_newest_older_ones),
        TEST(the_current_generation_cannot_be_discarded),
        TEST(pending_keys_and_delete),
        TEST(names_that_could_escape_the_store_are_refused),
        TEST(commit_many_switches_every_certificate),
        TEST(recovery_rolls_an_interrupted_commit_forward),
        TEST(a_target_stages_without_the_store),
        TEST(pending_keys_written_at_once_do_not_collide),
    };
    return cmocka_run_group_tests_name("certstore", tests, NULL, NULL);
}
