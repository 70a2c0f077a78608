/* Unit tests for the certificate file watcher: real files, real inotify, a real event loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

#include "cert_watch.h"
#include "log.h"
#include "x509_make.h"

#include <event2/event.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SETTLE_MS 50
#define QUIET_MS 400   /* long enough for any report a test must not see */
#define REPORT_MS 3000 /* the longest a report a test expects may take */

/* Two leaf pairs and a CA from one CA, made once for every test. */
static char *ca_pem, *other_ca_pem;
static char *cert_a, *key_a, *cert_b, *key_b;

struct reported {
    char *name;
    char *cert;
    char *key; /* NULL when the callback got none */
    size_t key_len;
};

struct fixture {
    char dir[64];
    char log_path[PATH_MAX];
    struct event_base *base;
    struct cert_watch *watch;
    struct reported reports[16];
    int n_reports;
    int expect; /* the loop stops when n_reports reaches it */
};

static char *make_key(EVP_PKEY **ret_key)
{
    char err[256];

    assert_int_equal(x509_make_key(KEY_EC_P256, ret_key, err, sizeof(err)), 0);
    return x509_pem_of_key(*ret_key);
}

static char *make_leaf(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *key)
{
    static const char *const dns[] = {"db.example.com"};
    struct x509_subject_spec spec = {"db.example.com", dns, 1, NULL, 0};
    char err[256], *pem;
    X509 *cert;

    assert_int_equal(x509_make_leaf(ca, ca_key, key, &spec, 90, &cert, err, sizeof(err)), 0);
    pem = x509_pem_of_cert(cert);
    X509_free(cert);
    return pem;
}

static char *make_ca(const char *cn, X509 **ret_ca, EVP_PKEY **ret_key)
{
    char err[256], *key_pem = make_key(ret_key);

    OPENSSL_clear_free(key_pem, strlen(key_pem));
    assert_int_equal(x509_make_ca(*ret_key, cn, 3650, ret_ca, err, sizeof(err)), 0);
    return x509_pem_of_cert(*ret_ca);
}

static int group_setup(void **state)
{
    EVP_PKEY *ca_key, *other_key, *a, *b;
    X509 *ca, *other;

    (void)state;
    ca_pem = make_ca("Test CA", &ca, &ca_key);
    other_ca_pem = make_ca("Other CA", &other, &other_key);
    key_a = make_key(&a);
    key_b = make_key(&b);
    cert_a = make_leaf(ca, ca_key, a);
    cert_b = make_leaf(ca, ca_key, b);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(other_key);
    X509_free(ca);
    X509_free(other);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    free(ca_pem);
    free(other_ca_pem);
    free(cert_a);
    free(cert_b);
    OPENSSL_clear_free(key_a, strlen(key_a));
    OPENSSL_clear_free(key_b, strlen(key_b));
    return 0;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    assert_non_null(fx);
    unit_make_tempdir(fx->dir, sizeof(fx->dir), "certwatch");
    snprintf(fx->log_path, sizeof(fx->log_path), "%s/agent.log", fx->dir);
    assert_int_equal(log_setup("test", LOG_TARGET_FILE, fx->log_path, LOG_DEBUG), 0);
    fx->base = event_base_new();
    assert_non_null(fx->base);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    cert_watch_free(fx->watch);
    event_base_free(fx->base);
    log_setup("test", LOG_TARGET_CONSOLE, NULL, LOG_INFO);
    for (int i = 0; i < fx->n_reports; i++) {
        free(fx->reports[i].name);
        free(fx->reports[i].cert);
        free(fx->reports[i].key);
    }
    unit_remove_tree(fx->dir);
    free(fx);
    return 0;
}

static void on_report(void *data, const char *name, const char *cert_pem, size_t cert_len,
                      const char *key_pem, size_t key_len)
{
    struct fixture *fx = data;
    struct reported *r;

    assert_true(fx->n_reports < 16);
    r = &fx->reports[fx->n_reports++];
    r->name = strdup(name);
    r->cert = strndup(cert_pem, cert_len);
    r->key = key_pem ? strndup(key_pem, key_len) : NULL;
    r->key_len = key_len;
    if (fx->n_reports >= fx->expect)
        event_base_loopbreak(fx->base);
}

static void start(struct fixture *fx, const char *name, const char *cert_file, const char *key_file)
{
    struct external_cert conf = {(char *)name, (char *)cert_file, (char *)key_file,
                                 (char *)"test.conf:1"};
    char err[256] = "";
    int r =
        cert_watch_new(fx->base, &conf, 1, SETTLE_MS, on_report, fx, &fx->watch, err, sizeof(err));

    if (r != 0)
        print_error("cert_watch_new: %d %s\n", r, err);
    assert_int_equal(r, 0);
    assert_non_null(fx->watch);
}

/* Runs the loop until there are count reports, or for at most ms. */
static void run_until(struct fixture *fx, int count, int ms)
{
    struct timeval limit = {ms / 1000, (ms % 1000) * 1000};

    fx->expect = count;
    if (fx->n_reports >= count && count > 0)
        return;
    event_base_loopexit(fx->base, &limit);
    event_base_dispatch(fx->base);
}

/* Runs the loop for ms and expects no new report. */
static void expect_quiet(struct fixture *fx, int ms)
{
    int before = fx->n_reports;

    run_until(fx, 1000, ms);
    assert_int_equal(fx->n_reports, before);
}

static void expect_report(struct fixture *fx, int number, const char *name, const char *cert,
                          const char *key)
{
    struct reported *r;

    run_until(fx, number, REPORT_MS);
    assert_int_equal(fx->n_reports, number);
    r = &fx->reports[number - 1];
    assert_string_equal(r->name, name);
    assert_string_equal(r->cert, cert);
    if (key) {
        assert_non_null(r->key);
        assert_string_equal(r->key, key);
        assert_int_equal(r->key_len, strlen(key));
    } else {
        assert_null(r->key);
        assert_int_equal(r->key_len, 0);
    }
}

static char *path_in(const struct fixture *fx, const char *relative, char *buf, size_t len)
{
    assert_true(snprintf(buf, len, "%s/%s", fx->dir, relative) < (int)len);
    return buf;
}

/* Writes a file in place, as an editor or "cat > file" would. */
static void write_in_place(const struct fixture *fx, const char *relative, const char *text)
{
    unit_write_file(fx->dir, relative, text);
}

/* Replaces relative with a link to target, the way certbot does: a new link renamed over. */
static void swap_link(const struct fixture *fx, const char *relative, const char *target)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];

    path_in(fx, relative, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.new", path);
    assert_int_equal(symlink(target, tmp), 0);
    assert_int_equal(rename(tmp, path), 0);
}

static void make_dir(const struct fixture *fx, const char *relative)
{
    char path[PATH_MAX];

    assert_int_equal(mkdir(path_in(fx, relative, path, sizeof(path)), 0755), 0);
}

/* The log so far (malloc'd). */
static char *log_text(const struct fixture *fx)
{
    FILE *f = fopen(fx->log_path, "r");
    char *text = calloc(1, 1 << 20);
    size_t n;

    assert_non_null(f);
    assert_non_null(text);
    n = fread(text, 1, (1 << 20) - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

static int count_in(const char *text, const char *needle)
{
    int n = 0;

    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* The base64 body of a PEM key: none of it may reach the log. */
static void assert_key_not_logged(const struct fixture *fx, const char *key_pem)
{
    char *text = log_text(fx);
    char line[80];
    const char *body = strchr(key_pem, '\n') + 1;
    size_t len = strcspn(body, "\n");

    snprintf(line, sizeof(line), "%.*s", (int)(len < 40 ? len : 40), body);
    assert_true(strlen(line) >= 20);
    assert_null(strstr(text, line));
    free(text);
}

/* --- tests --- */

static void check_now_reports_the_current_pair_once(void **state)
{
    struct fixture *fx = *state;
    char cert[PATH_MAX], key[PATH_MAX];

    write_in_place(fx, "cert.pem", cert_a);
    write_in_place(fx, "key.pem", key_a);
    start(fx, "proxy", path_in(fx, "cert.pem", cert, sizeof(cert)),
          path_in(fx, "key.pem", key, sizeof(key)));
    assert_int_equal(fx->n_reports, 0); /* nothing before check_now */
    cert_watch_check_now(fx->watch);
    assert_int_equal(fx->n_reports, 1);
    expect_report(fx, 1, "proxy", cert_a, key_a);
    cert_watch_check_now(fx->watch);
    expect_quiet(fx, QUIET_MS);
    assert_key_not_logged(fx, key_a);
}

static void a_pair_written_later_is_reported_once(void **state)
{
    struct fixture *fx = *state;
    char cert[PATH_MAX], key[PATH_MAX];

    start(fx, "proxy", path_in(fx, "cert.pem", cert, sizeof(cert)),
          path_in(fx, "key.pem", key, sizeof(key)));
    cert_watch_check_now(fx->watch); /* neither file exists: a warning, no report */
    assert_int_equal(fx->n_reports, 0);
    write_in_place(fx, "cert.pem", cert_a);
    write_in_place(fx, "key.pem", key_a);
    expect_report(fx, 1, "proxy", cert_a, key_a);
    expect_quiet(fx, QUIET_MS);
}

static void a_mismatched_key_waits_for_the_matching_one(void **state)
{
    struct fixture *fx = *state;
    char cert[PATH_MAX], key[PATH_MAX];

    write_in_place(fx, "cert.pem", cert_a);
    write_in_place(fx, "key.pem", key_a);
    start(fx, "api", path_in(fx, "cert.pem", cert, sizeof(cert)),
          path_in(fx, "key.pem", key, sizeof(key)));
    cert_watch_check_now(fx->watch);
    expect_report(fx, 1, "api", cert_a, key_a);
    write_in_place(fx, "cert.pem", cert_b); /* key.pem still holds key A */
    expect_quiet(fx, QUIET_MS);
    write_in_place(fx, "key.pem", key_b);
    expect_report(fx, 2, "api", cert_b, key_b);
    expect_quiet(fx, QUIET_MS);
}

static void identical_content_is_not_reported_again(void **state)
{
    struct fixture *fx = *state;
    char cert[PATH_MAX], key[PATH_MAX];

    write_in_place(fx, "cert.pem", cert_a);
    write_in_place(fx, "key.pem", key_a);
    start(fx, "cm", path_in(fx, "cert.pem", cert, sizeof(cert)),
          path_in(fx, "key.pem", key, sizeof(key)));
    cert_watch_check_now(fx->watch);
    expect_report(fx, 1, "cm", cert_a, key_a);
    write_in_place(fx, "cert.pem", cert_a);
    write_in_place(fx, "key.pem", key_a);
    assert_int_equal(chmod(key, 0600), 0);
    expect_quiet(fx, QUIET_MS);
    /* The watch is still alive: a real change after the non-changes is seen. */
    write_in_place(fx, "cert.pem", cert_b);
    write_in_place(fx, "key.pem", key_b);
    expect_report(fx, 2, "cm", cert_b, key_b);
}

static void certbot_renewal_swaps_links_into_live(void **state)
{
    struct fixture *fx = *state;
    char cert[PATH_MAX], key[PATH_MAX];

    make_dir(fx, "archive");
    make_dir(fx, "archive/db");
    make_dir(fx, "live");
    make_dir(fx, "live/db");
    write_in_place(fx, "archive/db/fullchain1.pem", cert_a);
    write_in_place(fx, "archive/db/privkey1.pem", key_a);
    swap_link(fx, "live/db/fullchain.pem", "../../archive/db/fullchain1.pem");
    swap_link(fx, "live/db/privkey.pem", "../../archive/db/privkey1.pem");
    start(fx, "proxy", path_in(fx, "live/db/fullchain.pem", cert, sizeof(cert)),
          path_in(fx, "live/db/privkey.pem", key, sizeof(key)));
    cert_watch_check_now(fx->watch);
    expect_report(fx, 1, "proxy", cert_a, key_a);

    /* certbot renew: new files in archive/, then new links renamed into live/. */
    write_in_place(fx, "archive/db/fullchain2.pem", cert_b);
    write_in_place(fx, "archive/db/privkey2.pem", key_b);
    swap_link(fx, "live/db/fullchain.pem", "../../archive/db/fullchain2.pem");
    swap_link(fx, "live/db/privkey.pem", "../../archive/db/privkey2.pem");
    expect_report(fx, 2, "proxy", cert_b, key_b);
    expect_quiet(fx, QUIET_MS);
}

static void a_link_to_a_new_directory_is_followed_and_watched(void **state)
{
    struct fixture *fx = *state;
    char cert[PATH_MAX], key[PATH_MAX];

    make_dir(fx, "v1");
    make_dir(fx, "v2");
    make_dir(fx, "live");
    write_in_place(fx, "v1/cert.pem", cert_a);
    write_in_place(fx, "v1/key.pem", key_a);
    swap_link(fx, "live/cert.pem", "../v1/cert.pem");
    swap_link(fx, "live/key.pem", "../v1/key.pem");
    start(fx, "syncer", path_in(fx, "live/cert.pem", cert, sizeof(cert)),
          path_in(fx, "live/key.pem", key, sizeof(key)));
    cert_watch_check_now(fx->watch);
    expect_report(fx, 1, "syncer", cert_a, key_a);

    write_in_place(fx, "v2/cert.pem", cert_b);
    write_in_place(fx, "v2/key.pem", key_b);
    swap_link(fx, "live/cert.pem", "../v2/cert.pem");
    swap_link(fx, "live/key.pem", "../v2/key.pem");
    expect_report(fx, 2, "syncer", cert_b, key_b);

    /* Only a watch on v2, added when the links moved there, sees this rewrite in place. */
    write_in_place(fx, "v2/cert.pem", cert_a);
    write_in_place(fx, "v2/key.pem", key_a);
    expect_report(fx, 3, "syncer", cert_a, key_a);
    /* And v1 no longer matters. */
    write_in_place(fx, "v1/cert.pem", cert_b);
    write_in_place(fx, "v1/key.pem", key_b);
    expect_quiet(fx, QUIET_MS);
}

static void a_trusted_ca_bundle_has_no_key(void **state)
{
    struct fixture *fx = *state;
    char cert[PATH_MAX];

    write_in_place(fx, "ca.pem", ca_pem);
    start(fx, "mtls_trusted_ca", path_in(fx, "ca.pem", cert, sizeof(cert)), NULL);
    cert_watch_check_now(fx->watch);
    expect_report(fx, 1, "mtls_trusted_ca", ca_pem, NULL);
    write_in_place(fx, "ca.pem", other_ca_pem);
    expect_report(fx, 2, "mtls_trusted_ca", other_ca_pem, NULL);
}

static void a_half_written_chain_is_not_reported(void **state)
{
    struct fixture *fx = *state;
    char cert[PATH_MAX], key[PATH_MAX];
    size_t full_len = strlen(cert_a) + strlen(ca_pem);
    char *full = malloc(full_len + 1);

    assert_non_null(full);
    snprintf(full, full_len + 1, "%s%s", cert_a, ca_pem);
    write_in_place(fx, "key.pem", key_a);
    start(fx, "proxy", path_in(fx, "cert.pem", cert, sizeof(cert)),
          path_in(fx, "key.pem", key, sizeof(key)));
    /* The leaf and half of its CA: the first certificate parses, the file is not whole. */
    full[strlen(cert_a) + strlen(ca_pem) / 2] = '\0';
    write_in_place(fx, "cert.pem", full);
    expect_quiet(fx, QUIET_MS);
    full[strlen(cert_a) + strlen(ca_pem) / 2] = ca_pem[strlen(ca_pem) / 2];
    write_in_place(fx, "cert.pem", full);
    expect_report(fx, 1, "proxy", full, key_a);
    free(full);
}

static void an_encrypted_key_is_never_reported_and_warned_about_once(void **state)
{
    struct fixture *fx = *state;
    char cert[PATH_MAX], key[PATH_MAX], *text;
    BIO *in = BIO_new_mem_buf(key_a, -1), *out = BIO_new(BIO_s_mem());
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL);
    char *encrypted;
    long len;

    assert_non_null(pkey);
    assert_int_equal(
        PEM_write_bio_PKCS8PrivateKey(out, pkey, EVP_aes_256_cbc(), "secret", 6, NULL, NULL), 1);
    len = BIO_get_mem_data(out, &encrypted);
    encrypted = strndup(encrypted, (size_t)len);
    EVP_PKEY_free(pkey);
    BIO_free(in);
    BIO_free(out);

    write_in_place(fx, "cert.pem", cert_a);
    write_in_place(fx, "key.pem", encrypted);
    start(fx, "proxy", path_in(fx, "cert.pem", cert, sizeof(cert)),
          path_in(fx, "key.pem", key, sizeof(key)));
    cert_watch_check_now(fx->watch);
    assert_int_equal(fx->n_reports, 0);
    write_in_place(fx, "key.pem", encrypted); /* the same content again: no second warning */
    expect_quiet(fx, QUIET_MS);
    text = log_text(fx);
    assert_int_equal(count_in(text, "warning: certificate 'proxy' (test.conf:1): "), 1);
    assert_non_null(strstr(text, "holds an encrypted private key"));
    free(text);
    write_in_place(fx, "key.pem", key_a);
    expect_report(fx, 1, "proxy", cert_a, key_a);
    free(encrypted);
}

static void an_inconsistent_pair_is_warned_about_after_the_grace_time(void **state)
{
    struct fixture *fx = *state;
    char cert[PATH_MAX], key[PATH_MAX], *text;

    write_in_place(fx, "cert.pem", cert_a);
    write_in_place(fx, "key.pem", key_a);
    start(fx, "api", path_in(fx, "cert.pem", cert, sizeof(cert)),
          path_in(fx, "key.pem", key, sizeof(key)));
    cert_watch_check_now(fx->watch);
    expect_report(fx, 1, "api", cert_a, key_a);
    write_in_place(fx, "key.pem", key_b);
    expect_quiet(fx, CERT_WATCH_GRACE_MS / 2);
    text = log_text(fx);
    assert_non_null(strstr(text, "debug: certificate 'api': pair not consistent yet (key does "
                                 "not match certificate)"));
    assert_int_equal(count_in(text, "warning: certificate 'api'"), 0);
    free(text);
    expect_quiet(fx, CERT_WATCH_GRACE_MS / 2 + 1000);
    text = log_text(fx);
    assert_int_equal(count_in(text, "warning: certificate 'api' (test.conf:1): key does not match "
                                    "certificate (cert_file "),
                     1);
    assert_non_null(strstr(text, key));
    free(text);
    assert_key_not_logged(fx, key_b);
}

static void a_missing_directory_is_not_an_error(void **state)
{
    struct fixture *fx = *state;
    char cert[PATH_MAX], key[PATH_MAX], *text;

    start(fx, "proxy", path_in(fx, "nowhere/cert.pem", cert, sizeof(cert)),
          path_in(fx, "nowhere/key.pem", key, sizeof(key)));
    cert_watch_check_now(fx->watch);
    assert_int_equal(fx->n_reports, 0);
    text = log_text(fx);
    /* Said once for the directory, though both files are in it. */
    assert_int_equal(count_in(text, "cannot watch"), 1);
    assert_non_null(strstr(text, "nowhere: No such file or directory"));
    free(text);
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(check_now_reports_the_current_pair_once),
        TEST(a_pair_written_later_is_reported_once),
        TEST(a_mismatched_key_waits_for_the_matching_one),
        TEST(identical_content_is_not_reported_again),
        TEST(certbot_renewal_swaps_links_into_live),
        TEST(a_link_to_a_new_directory_is_followed_and_watched),
        TEST(a_trusted_ca_bundle_has_no_key),
        TEST(a_half_written_chain_is_not_reported),
        TEST(an_encrypted_key_is_never_reported_and_warned_about_once),
        TEST(an_inconsistent_pair_is_warned_about_after_the_grace_time),
        TEST(a_missing_directory_is_not_an_error),
    };
    return cmocka_run_group_tests_name("cert_watch", tests, group_setup, group_teardown);
}
