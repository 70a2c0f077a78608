/* Unit tests for the rendered TLS configuration: rendering, parsing, reading and atomic writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

#include "cv_error.h"
#include "tls_config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER "# Rendered by certvisord; changes here are overwritten.\n"

struct fixture {
    char dir[64];
    char path[PATH_MAX]; /* dir/tls.conf */
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    assert_non_null(fx);
    unit_make_tempdir(fx->dir, sizeof(fx->dir), "tlsconf");
    assert_true(snprintf(fx->path, sizeof(fx->path), "%s/tls.conf", fx->dir) <
                (int)sizeof(fx->path));
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    unit_remove_tree(fx->dir);
    free(fx);
    return 0;
}

static const struct tls_config full = {
    .cert_file = "/etc/certvisor/tls/proxy.crt",
    .key_file = "/etc/certvisor/tls/proxy.key",
    .ca_file = "/etc/certvisor/tls/mtls_trusted_ca.pem",
    .min_version = "1.2",
    .ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384",
    .ciphersuites = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
    .security_level = 2,
    .verify_peer = TLS_VERIFY_REQUIRE,
    .http = "enabled",
};

static const char full_text[] = HEADER "cert_file = /etc/certvisor/tls/proxy.crt\n"
                                       "key_file = /etc/certvisor/tls/proxy.key\n"
                                       "ca_file = /etc/certvisor/tls/mtls_trusted_ca.pem\n"
                                       "min_version = 1.2\n"
                                       "ciphers = ECDHE-ECDSA-AES256-GCM-SHA384:"
                                       "ECDHE-RSA-AES256-GCM-SHA384\n"
                                       "ciphersuites = TLS_AES_256_GCM_SHA384:"
                                       "TLS_CHACHA20_POLY1305_SHA256\n"
                                       "security_level = 2\n"
                                       "verify_peer = require\n"
                                       "http = enabled\n";

static const struct tls_config minimal = {
    .cert_file = "a.crt",
    .key_file = "a.key",
    .min_version = "1.3",
    .security_level = -1,
    .verify_peer = TLS_VERIFY_NONE,
};

static const char minimal_text[] = HEADER "cert_file = a.crt\n"
                                          "key_file = a.key\n"
                                          "min_version = 1.3\n";

static void assert_string_or_null_equal(const char *a, const char *b)
{
    if (!a || !b)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void assert_config_equal(const struct tls_config *a, const struct tls_config *b)
{
    assert_string_or_null_equal(a->cert_file, b->cert_file);
    assert_string_or_null_equal(a->key_file, b->key_file);
    assert_string_or_null_equal(a->ca_file, b->ca_file);
    assert_string_or_null_equal(a->min_version, b->min_version);
    assert_string_or_null_equal(a->ciphers, b->ciphers);
    assert_string_or_null_equal(a->ciphersuites, b->ciphersuites);
    assert_int_equal(a->security_level, b->security_level);
    assert_int_equal(a->verify_peer, b->verify_peer);
    assert_string_or_null_equal(a->tls_mode, b->tls_mode);
    assert_string_or_null_equal(a->http, b->http);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    char *text = calloc(1, 70000);
    size_t len;

    assert_non_null(f);
    assert_non_null(text);
    len = fread(text, 1, 69999, f);
    fclose(f);
    text[len] = '\0';
    return text;
}

/* The number of entries in dir, other than "." and "..". */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void render_is_ordered_and_omits_unset_values(void **state)
{
    struct tls_config zero_level = minimal;
    char *text;

    (void)state;
    text = tls_config_render(&full);
    assert_non_null(text);
    assert_string_equal(text, full_text);
    free(text);

    text = tls_config_render(&minimal);
    assert_non_null(text);
    assert_string_equal(text, minimal_text);
    free(text);

    /* 0 is a level (needed for TLS 1.0), not "unset"; optional verification is rendered. */
    zero_level.security_level = 0;
    zero_level.verify_peer = TLS_VERIFY_OPTIONAL;
    text = tls_config_render(&zero_level);
    assert_non_null(text);
    assert_string_equal(text, HEADER "cert_file = a.crt\nkey_file = a.key\nmin_version = 1.3\n"
                                     "security_level = 0\nverify_peer = optional\n");
    free(text);
}

static void render_is_deterministic(void **state)
{
    struct tls_config copy = full;
    char *a, *b, *c;
    char cert[64];

    (void)state;
    /* Equal contents at different addresses render the same bytes. */
    snprintf(cert, sizeof(cert), "%s", full.cert_file);
    copy.cert_file = cert;
    a = tls_config_render(&full);
    b = tls_config_render(&full);
    c = tls_config_render(&copy);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_string_equal(a, b);
    assert_string_equal(a, c);
    free(a);
    free(b);
    free(c);
}

static void parse_round_trips(void **state)
{
    const struct tls_config *configs[] = {&full, &minimal};

    (void)state;
    for (size_t i = 0; i < 2; i++) {
        char err[256] = "";
        struct tls_config *parsed = NULL;
        char *text = tls_config_render(configs[i]);
        char *again;

        assert_non_null(text);
        assert_int_equal(tls_config_parse(text, &parsed, err, sizeof(err)), 0);
        assert_string_equal(err, "");
        assert_config_equal(parsed, configs[i]);
        again = tls_config_render(parsed);
        assert_non_null(again);
        assert_string_equal(again, text);
        free(again);
        free(text);
        tls_config_free(parsed);
    }
}

static void parse_accepts_comments_blanks_any_order_and_trims(void **state)
{
    const char text[] = "# a comment\n"
                        "\n"
                        "   # an indented comment\n"
                        "verify_peer=optional\r\n"
                        "\t security_level   =   0  \n"
                        "min_version = TLSv1.1\n"
                        "ciphers = DEFAULT:@SECLEVEL=0 # not a comment\n"
                        "key_file = /k e y.pem\n"
                        "cert_file =   /c.pem\t\n"
                        "   \t  \n"
                        "ca_file = /ca.pem"; /* no final newline */
    struct tls_config *parsed = NULL;
    char err[256] = "";
    char *rendered;

    (void)state;
    assert_int_equal(tls_config_parse(text, &parsed, err, sizeof(err)), 0);
    assert_string_equal(parsed->cert_file, "/c.pem");
    assert_string_equal(parsed->key_file, "/k e y.pem");
    assert_string_equal(parsed->ca_file, "/ca.pem");
    assert_string_equal(parsed->min_version, "TLSv1.1");
    /* '#' only starts a comment at the beginning of a line; values run to its end. */
    assert_string_equal(parsed->ciphers, "DEFAULT:@SECLEVEL=0 # not a comment");
    assert_null(parsed->ciphersuites);
    assert_int_equal(parsed->security_level, 0);
    assert_int_equal(parsed->verify_peer, TLS_VERIFY_OPTIONAL);
    /* Rendered back in the canonical order. */
    rendered = tls_config_render(parsed);
    assert_non_null(rendered);
    assert_string_equal(rendered, HEADER "cert_file = /c.pem\n"
                                         "key_file = /k e y.pem\n"
                                         "ca_file = /ca.pem\n"
                                         "min_version = TLSv1.1\n"
                                         "ciphers = DEFAULT:@SECLEVEL=0 # not a comment\n"
                                         "security_level = 0\n"
                                         "verify_peer = optional\n");
    free(rendered);
    tls_config_free(parsed);

    /* Unset optional values take their defaults. */
    assert_int_equal(tls_config_parse(minimal_text, &parsed, err, sizeof(err)), 0);
    assert_config_equal(parsed, &minimal);
    tls_config_free(parsed);
}

static void parse_errors_name_the_line(void **state)
{
#define REQUIRED "cert_file = c\nkey_file = k\nmin_version = 1.2\n"
    static const struct {
        const char *text;
        const char *message;
    } cases[] = {
        {REQUIRED "# fine\nbogus = 1\n", "line 5: unknown setting 'bogus'"},
        {"\n\n  Cert_File = c\n", "line 3: unknown setting 'Cert_File'"},
        {REQUIRED "\ncert_file = again\n",
         "line 5: duplicate setting 'cert_file' (already set on line 1)"},
        {REQUIRED "verify_peer = none\nverify_peer = none\n",
         "line 5: duplicate setting 'verify_peer' (already set on line 4)"},
        {"key_file = k\nmin_version = 1.2\n", "missing required setting 'cert_file'"},
        {"cert_file = c\nmin_version = 1.2\n", "missing required setting 'key_file'"},
        {"# only\ncert_file = c\nkey_file = k\n", "missing required setting 'min_version'"},
        {"", "missing required setting 'cert_file'"},
        {REQUIRED "ca_file /etc/ca.pem\n", "line 4: expected 'key = value'"},
        {REQUIRED "  = value\n", "line 4: expected 'key = value'"},
        {REQUIRED "ca_file =   \n", "line 4: ca_file has no value"},
        {"cert_file = c\nkey_file = k\nmin_version = 1.4\n",
         "line 3: min_version '1.4' is not a TLS version (1, 1.1, 1.2 or 1.3)"},
        {"min_version = SSLv3\n",
         "line 1: min_version 'SSLv3' is not a TLS version (1, 1.1, 1.2 or 1.3)"},
        {REQUIRED "security_level = 6\n", "line 4: security_level '6' is not a number from 0 to 5"},
        {REQUIRED "security_level = -1\n",
         "line 4: security_level '-1' is not a number from 0 to 5"},
        {REQUIRED "security_level = 01\n",
         "line 4: security_level '01' is not a number from 0 to 5"},
        {REQUIRED "security_level = two\n",
         "line 4: security_level 'two' is not a number from 0 to 5"},
        {REQUIRED "verify_peer = yes\n",
         "line 4: verify_peer 'yes' is not none, optional or require"},
        {REQUIRED "ciphers = ALL\x01:eNULL\n", "line 4: ciphers contains a control character"},
        {REQUIRED "http = on\n", "line 4: http 'on' is not enabled or disabled"},
    };
#undef REQUIRED

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tls_config *parsed = NULL;
        char err[256] = "";

        assert_int_equal(tls_config_parse(cases[i].text, &parsed, err, sizeof(err)),
                         CV_EINVALID_TLS);
        assert_null(parsed);
        assert_string_equal(err, cases[i].message);
    }
}

static void version_parse_table(void **state)
{
    static const struct {
        const char *text;
        int version;
    } good[] = {
        {"1", TLS1_VERSION},         {"1.0", TLS1_VERSION},       {"1.1", TLS1_1_VERSION},
        {"1.2", TLS1_2_VERSION},     {"1.3", TLS1_3_VERSION},     {"TLSv1", TLS1_VERSION},
        {"TLSv1.1", TLS1_1_VERSION}, {"TLSv1.2", TLS1_2_VERSION}, {"TLSv1.3", TLS1_3_VERSION},
    };
    static const char *const bad[] = {"",        "0",    "2",     "1.4",    "1.2.0", " 1.2", "1.2 ",
                                      "TLSv1.4", "TLSv", "SSLv3", "TLS1.2", "v1.2",  "1,2",  "13"};

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int version = -1;

        assert_int_equal(tls_version_parse(good[i].text, &version), 0);
        assert_int_equal(version, good[i].version);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int version = 12345;

        assert_int_equal(tls_version_parse(bad[i], &version), CV_EINVALID_TLS);
        assert_int_equal(version, 12345);
    }
}

static void write_is_atomic_with_mode_0640(void **state)
{
    struct fixture *fx = *state;
    struct tls_config *back = NULL;
    struct stat before, after;
    char err[512] = "";
    mode_t old_umask;
    char *text;

    /* The mode is set, not masked: a strict umask does not change it. */
    old_umask = umask(077);
    assert_int_equal(tls_config_write(fx->path, &full, err, sizeof(err)), 0);
    umask(old_umask);
    assert_string_equal(err, "");
    assert_int_equal(stat(fx->path, &before), 0);
    assert_true(S_ISREG(before.st_mode));
    assert_int_equal(before.st_mode & 07777, 0640);
    text = read_text(fx->path);
    assert_string_equal(text, full_text);
    free(text);
    assert_int_equal(tls_config_read(fx->path, &back, err, sizeof(err)), 0);
    assert_config_equal(back, &full);
    tls_config_free(back);
    /* No temporary file is left next to it. */
    assert_int_equal(count_entries(fx->dir), 1);

    /* Replacing renames a new file over the old one: a reader never sees half a file. */
    assert_int_equal(tls_config_write(fx->path, &minimal, err, sizeof(err)), 0);
    assert_int_equal(stat(fx->path, &after), 0);
    assert_int_not_equal(after.st_ino, before.st_ino);
    assert_int_equal(after.st_mode & 07777, 0640);
    text = read_text(fx->path);
    assert_string_equal(text, minimal_text);
    free(text);
    assert_int_equal(count_entries(fx->dir), 1);
}

static void failed_write_leaves_the_old_file(void **state)
{
    struct fixture *fx = *state;
    struct tls_config bad = minimal;
    struct rlimit limit, old_limit;
    char missing[PATH_MAX], as_dir[PATH_MAX];
    void (*old_handler)(int);
    char err[512] = "";
    char *text;
    int r;

    /* A directory that does not exist: the error names the path. */
    assert_true(snprintf(missing, sizeof(missing), "%s/nope/tls.conf", fx->dir) <
                (int)sizeof(missing));
    assert_int_equal(tls_config_write(missing, &full, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, missing));
    assert_non_null(strstr(err, strerror(ENOENT)));

    assert_int_equal(tls_config_write(fx->path, &full, err, sizeof(err)), 0);

    /* A write that fails half way (the file size limit): the old file is untouched. */
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
    limit = old_limit;
    limit.rlim_cur = 20;
    old_handler = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &limit), 0);
    err[0] = '\0';
    r = tls_config_write(fx->path, &minimal, err, sizeof(err));
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old_limit), 0);
    signal(SIGXFSZ, old_handler);
    assert_int_equal(r, -EFBIG);
    assert_true(strncmp(err, fx->path, strlen(fx->path)) == 0);
    text = read_text(fx->path);
    assert_string_equal(text, full_text);
    free(text);
    assert_int_equal(count_entries(fx->dir), 1);

    /* A value that would not read back as given is refused before anything is written. */
    bad.ciphers = "DEFAULT\nca_file = /tmp/evil.pem";
    assert_int_equal(tls_config_write(fx->path, &bad, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, fx->path));
    assert_non_null(strstr(err, "would not read back"));
    bad = minimal;
    bad.key_file = "  padded.key";
    assert_int_equal(tls_config_write(fx->path, &bad, err, sizeof(err)), -EINVAL);
    bad = minimal;
    bad.security_level = 9;
    assert_int_equal(tls_config_write(fx->path, &bad, err, sizeof(err)), -EINVAL);
    bad = minimal;
    bad.min_version = "1.9";
    assert_int_equal(tls_config_write(fx->path, &bad, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "min_version '1.9'"));
    bad = minimal;
    bad.key_file = NULL;
    assert_int_equal(tls_config_write(fx->path, &bad, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "missing required setting 'key_file'"));
    text = read_text(fx->path);
    assert_string_equal(text, full_text);
    free(text);

    /* The rename fails (a directory is in the way): the temporary file is removed. */
    assert_true(snprintf(as_dir, sizeof(as_dir), "%s/sub", fx->dir) < (int)sizeof(as_dir));
    assert_int_equal(mkdir(as_dir, 0755), 0);
    unit_write_file(fx->dir, "sub/keep", "x");
    assert_true(tls_config_write(as_dir, &full, err, sizeof(err)) < 0);
    assert_true(strncmp(err, as_dir, strlen(as_dir)) == 0);
    assert_int_equal(count_entries(fx->dir), 2); /* tls.conf and sub */
    assert_int_equal(count_entries(as_dir), 1);
}

static void read_errors_name_the_path(void **state)
{
    struct fixture *fx = *state;
    struct tls_config *config = NULL;
    char expected[PATH_MAX + 100];
    char err[512] = "";
    char *big;
    size_t len;

    assert_int_equal(tls_config_read(fx->path, &config, err, sizeof(err)), -ENOENT);
    assert_true(snprintf(expected, sizeof(expected), "%s: cannot read: %s", fx->path,
                         strerror(ENOENT)) < (int)sizeof(expected));
    assert_string_equal(err, expected);

    unit_write_file(fx->dir, "tls.conf", "cert_file = c\nkey_file = k\nmin_version = 1.2\nx = 1\n");
    assert_int_equal(tls_config_read(fx->path, &config, err, sizeof(err)), CV_EINVALID_TLS);
    assert_true(snprintf(expected, sizeof(expected), "%s: line 4: unknown setting 'x'", fx->path) <
                (int)sizeof(expected));
    assert_string_equal(err, expected);
    assert_null(config);

    assert_int_equal(tls_config_read(fx->dir, &config, err, sizeof(err)), CV_EINVALID_TLS);
    assert_non_null(strstr(err, "not a regular file"));

    /* Exactly 64 KiB is read; one byte more is refused. */
    big = malloc(64 * 1024 + 2);
    assert_non_null(big);
    len = strlen(minimal_text);
    memcpy(big, minimal_text, len);
    memset(big + len, '#', 64 * 1024 - len - 1);
    big[64 * 1024 - 1] = '\n';
    big[64 * 1024] = '\0';
    unit_write_file(fx->dir, "tls.conf", big);
    assert_int_equal(tls_config_read(fx->path, &config, err, sizeof(err)), 0);
    assert_config_equal(config, &minimal);
    tls_config_free(config);
    config = NULL;
    big[64 * 1024] = '\n';
    big[64 * 1024 + 1] = '\0';
    unit_write_file(fx->dir, "tls.conf", big);
    assert_int_equal(tls_config_read(fx->path, &config, err, sizeof(err)), CV_EINVALID_TLS);
    assert_true(snprintf(expected, sizeof(expected), "%s: larger than 65536 bytes", fx->path) <
                (int)sizeof(expected));
    assert_string_equal(err, expected);
    free(big);

    {
        FILE *f = fopen(fx->path, "w");

        assert_non_null(f);
        assert_int_equal(fwrite("cert_file = c\0\n", 1, 15, f), 15);
        assert_int_equal(fclose(f), 0);
    }
    assert_int_equal(tls_config_read(fx->path, &config, err, sizeof(err)), CV_EINVALID_TLS);
    assert_non_null(strstr(err, "NUL byte"));
    assert_null(config);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(render_is_ordered_and_omits_unset_values),
        cmocka_unit_test(render_is_deterministic),
        cmocka_unit_test(parse_round_trips),
        cmocka_unit_test(parse_accepts_comments_blanks_any_order_and_trims),
        cmocka_unit_test(parse_errors_name_the_line),
        cmocka_unit_test(version_parse_table),
        cmocka_unit_test_setup_teardown(write_is_atomic_with_mode_0640, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_write_leaves_the_old_file, setup, teardown),
        cmocka_unit_test_setup_teardown(read_errors_name_the_path, setup, teardown),
    };
    return cmocka_run_group_tests_name("tls_config", tests, NULL, NULL);
}
