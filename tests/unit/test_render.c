/*
 * Unit tests for rendering a service's TLS configuration: each plane's settings, the sentinel
 * following the data plane, security level 0 for TLS 1.0 and 1.1, peer verification, trusted CAs,
 * determinism, the certvisor file reading back, and the plane and format words.
 *
 * Golden files: tests/unit/golden/render_*.{certvisor,redis} hold the exact bytes some specs
 * render to, and the tests compare byte for byte. They are found next to this file through
 * __FILE__, which is absolute in the CMake build. After a deliberate change to the rendered
 * format, regenerate them with
 *     CERTVISOR_UPDATE_GOLDEN=1 ./test_render
 * (the tests then write the golden files instead of comparing), and review the diff before
 * committing it: the goldens are the record of what services are given.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

#include "policy.h"
#include "render.h"
#include "tls_config.h"

#include <errno.h>
#include <limits.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CERTVISOR_HEADER "# Rendered by certvisord; changes here are overwritten.\n"
#define CA_FILE "/var/lib/certvisor/certs/cluster_ca/1/cert.pem"

static const struct render_files plain_files = {
    .cert_file = "/var/lib/certvisor/certs/proxy/3/cert.pem",
    .key_file = "/var/lib/certvisor/certs/proxy/3/key.pem",
    .ca_file = NULL,
};

static const struct render_files trusting_files = {
    .cert_file = "/var/lib/certvisor/certs/proxy/3/cert.pem",
    .key_file = "/var/lib/certvisor/certs/proxy/3/key.pem",
    .ca_file = CA_FILE,
};

/* Sets a policy value the way the agent does: checked first, then set. */
static void set(struct policy *policy, enum policy_setting setting, const char *value)
{
    char err[512], warn[512];

    assert_int_equal(policy_check(policy, setting, value, err, sizeof(err), warn, sizeof(warn)), 0);
    assert_int_equal(policy_set(policy, setting, value, POLICY_FROM_FILE, "policy.conf", 1), 0);
}

static struct tls_spec make_spec(enum tls_plane plane, enum render_format format)
{
    struct tls_spec spec = {
        .certificate = "proxy",
        .plane = plane,
        .format = format,
        .output = "/var/run/certvisor/proxy/tls.conf",
        .verify_peer = TLS_VERIFY_NONE,
        .trust = NULL,
        .port = format == RENDER_REDIS ? 12000 : 0,
    };

    return spec;
}

static char *render(const struct tls_spec *spec, const struct render_files *files,
                    const struct policy *policy)
{
    char *text = NULL;

    assert_int_equal(render_text(spec, files, policy, &text), 0);
    assert_non_null(text);
    return text;
}

static struct tls_config *build(const struct tls_spec *spec, const struct render_files *files,
                                const struct policy *policy)
{
    struct tls_config *config = NULL;

    assert_int_equal(render_tls_config(spec, files, policy, &config), 0);
    assert_non_null(config);
    return config;
}

/* True when text has line (without its newline) as one whole line. */
static bool has_line(const char *text, const char *line)
{
    size_t len = strlen(line);

    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);

        if (n == len && memcmp(p, line, len) == 0)
            return true;
        p += n;
        if (*p == '\n')
            p++;
    }
    return false;
}

static void assert_has_line(const char *text, const char *line)
{
    if (!has_line(text, line))
        fail_msg("no line '%s' in:\n%s", line, text);
}

static void assert_lacks(const char *text, const char *part)
{
    if (strstr(text, part))
        fail_msg("'%s' should not be in:\n%s", part, text);
}

static void assert_same_string(const char *a, const char *b)
{
    if (!a || !b)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void assert_configs_equal(const struct tls_config *a, const struct tls_config *b)
{
    assert_same_string(a->cert_file, b->cert_file);
    assert_same_string(a->key_file, b->key_file);
    assert_same_string(a->ca_file, b->ca_file);
    assert_same_string(a->min_version, b->min_version);
    assert_same_string(a->ciphers, b->ciphers);
    assert_same_string(a->ciphersuites, b->ciphersuites);
    assert_int_equal(a->security_level, b->security_level);
    assert_int_equal(a->verify_peer, b->verify_peer);
    assert_same_string(a->tls_mode, b->tls_mode);
    assert_same_string(a->http, b->http);
}

/* The golden file name, in tests/unit/golden/ next to this source file. */
static void golden_path(char *path, size_t len, const char *name)
{
    static const char self[] = "test_render.c";
    const char *file = __FILE__;
    size_t dir_len = strlen(file);

    if (file[0] != '/' || dir_len < sizeof(self) - 1 ||
        strcmp(file + dir_len - (sizeof(self) - 1), self) != 0)
        fail_msg("__FILE__ is '%s', not an absolute path ending in %s: cannot find the goldens",
                 file, self);
    dir_len -= sizeof(self) - 1;
    assert_true(snprintf(path, len, "%.*sgolden/%s", (int)dir_len, file, name) < (int)len);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *text;
    long len;

    if (!f)
        return NULL;
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    len = ftell(f);
    assert_true(len >= 0 && len < 65536);
    rewind(f);
    text = malloc((size_t)len + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
    text[len] = '\0';
    assert_int_equal(fclose(f), 0);
    assert_int_equal(strlen(text), (size_t)len); /* no NUL byte in a golden */
    return text;
}

/*
 * Compares text with the golden file name byte for byte, or (with
 * CERTVISOR_UPDATE_GOLDEN=1) writes it there first.
 */
static void check_golden(const char *name, const char *text)
{
    const char *update = getenv("CERTVISOR_UPDATE_GOLDEN");
    char path[PATH_MAX];
    char *golden;

    golden_path(path, sizeof(path), name);
    if (update && strcmp(update, "1") == 0) {
        char dir[PATH_MAX];
        FILE *f;

        golden_path(dir, sizeof(dir), "");
        assert_true(mkdir(dir, 0755) == 0 || errno == EEXIST);
        f = fopen(path, "wb");
        if (!f)
            fail_msg("%s: cannot write: %s", path, strerror(errno));
        assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
        assert_int_equal(fclose(f), 0);
        print_message("wrote %s\n", path);
    }
    golden = read_text(path);
    if (!golden)
        fail_msg("%s: cannot read (%s); CERTVISOR_UPDATE_GOLDEN=1 writes it", path,
                 strerror(errno));
    if (strcmp(golden, text) != 0)
        print_error("%s differs from the rendered text (CERTVISOR_UPDATE_GOLDEN=1 rewrites it "
                    "after a deliberate change)\n",
                    path);
    assert_string_equal(text, golden);
    free(golden);
}

static void plane_and_format_words(void **state)
{
    static const char *const bad[] = {"",         "Control", "DATA", "datas", "dat",
                                      "control ", " data",   "1",    "redis", "sentinel\n"};
    static const char *const bad_formats[] = {"",     "Redis",  "REDIS", "certvisord",
                                              "cert", "redis ", "data",  "conf"};
    enum tls_plane plane;
    enum render_format format;

    (void)state;
    plane = TLS_PLANE_SENTINEL;
    assert_int_equal(render_plane_parse("control", &plane), 0);
    assert_int_equal(plane, TLS_PLANE_CONTROL);
    assert_int_equal(render_plane_parse("data", &plane), 0);
    assert_int_equal(plane, TLS_PLANE_DATA);
    assert_int_equal(render_plane_parse("sentinel", &plane), 0);
    assert_int_equal(plane, TLS_PLANE_SENTINEL);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        plane = TLS_PLANE_SENTINEL;
        assert_int_equal(render_plane_parse(bad[i], &plane), -EINVAL);
        assert_int_equal(plane, TLS_PLANE_SENTINEL); /* untouched */
    }
    assert_int_equal(render_plane_parse(NULL, &plane), -EINVAL);

    format = RENDER_REDIS;
    assert_int_equal(render_format_parse("certvisor", &format), 0);
    assert_int_equal(format, RENDER_CERTVISOR);
    assert_int_equal(render_format_parse("redis", &format), 0);
    assert_int_equal(format, RENDER_REDIS);
    for (size_t i = 0; i < sizeof(bad_formats) / sizeof(bad_formats[0]); i++) {
        format = RENDER_REDIS;
        assert_int_equal(render_format_parse(bad_formats[i], &format), -EINVAL);
        assert_int_equal(format, RENDER_REDIS);
    }
    assert_int_equal(render_format_parse(NULL, &format), -EINVAL);
}

/* A policy where every plane's version, list and suites differ from every other plane's. */
static void distinct_policy(struct policy *p)
{
    policy_init(p);
    set(p, POLICY_MIN_CONTROL_TLS_VERSION, "1.3");
    set(p, POLICY_CONTROL_CIPHER_SUITES, "ECDHE-ECDSA-AES128-GCM-SHA256");
    set(p, POLICY_CONTROL_CIPHER_SUITES_TLS_1_3, "TLS_AES_256_GCM_SHA384");
    set(p, POLICY_MIN_DATA_TLS_VERSION, "1.2");
    set(p, POLICY_DATA_CIPHER_LIST, "ECDHE-RSA-AES256-GCM-SHA384");
    set(p, POLICY_DATA_CIPHER_SUITES_TLS_1_3, "TLS_CHACHA20_POLY1305_SHA256");
    set(p, POLICY_MIN_SENTINEL_TLS_VERSION, "TLSv1.1");
    set(p, POLICY_SENTINEL_CIPHER_SUITES, "ECDHE-RSA-AES128-SHA");
}

static void each_plane_takes_its_own_settings(void **state)
{
    static const struct {
        enum tls_plane plane;
        const char *min_version, *ciphers, *ciphersuites;
        int security_level;
        const char *protocols, *redis_ciphers;
    } want[] = {
        {TLS_PLANE_CONTROL, "1.3", "ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_AES_256_GCM_SHA384", -1,
         "tls-protocols \"TLSv1.3\"", "tls-ciphers \"ECDHE-ECDSA-AES128-GCM-SHA256\""},
        {TLS_PLANE_DATA, "1.2", "ECDHE-RSA-AES256-GCM-SHA384", "TLS_CHACHA20_POLY1305_SHA256", -1,
         "tls-protocols \"TLSv1.2 TLSv1.3\"", "tls-ciphers \"ECDHE-RSA-AES256-GCM-SHA384\""},
        {TLS_PLANE_SENTINEL, "1.1", "ECDHE-RSA-AES128-SHA", NULL, 0,
         "tls-protocols \"TLSv1.1 TLSv1.2 TLSv1.3\"",
         "tls-ciphers \"ECDHE-RSA-AES128-SHA:@SECLEVEL=0\""},
    };
    static const char *const every_value[] = {
        "ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",  "ECDHE-RSA-AES128-SHA",
    };
    struct policy p;

    (void)state;
    distinct_policy(&p);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        struct tls_spec spec = make_spec(want[i].plane, RENDER_CERTVISOR);
        struct tls_config *config = build(&spec, &plain_files, &p);
        char line[256], *text, *redis;

        assert_string_equal(config->cert_file, plain_files.cert_file);
        assert_string_equal(config->key_file, plain_files.key_file);
        assert_string_equal(config->min_version, want[i].min_version);
        assert_string_equal(config->ciphers, want[i].ciphers);
        assert_same_string(config->ciphersuites, want[i].ciphersuites);
        assert_int_equal(config->security_level, want[i].security_level);

        text = render(&spec, &plain_files, &p);
        snprintf(line, sizeof(line), "min_version = %s", want[i].min_version);
        assert_has_line(text, line);
        snprintf(line, sizeof(line), "ciphers = %s", want[i].ciphers);
        assert_has_line(text, line);
        if (want[i].ciphersuites) {
            snprintf(line, sizeof(line), "ciphersuites = %s", want[i].ciphersuites);
            assert_has_line(text, line);
        } else {
            assert_lacks(text, "ciphersuites");
        }

        spec.format = RENDER_REDIS;
        redis = render(&spec, &plain_files, &p);
        assert_has_line(redis, want[i].protocols);
        assert_has_line(redis, want[i].redis_ciphers);
        if (want[i].ciphersuites) {
            snprintf(line, sizeof(line), "tls-ciphersuites \"%s\"", want[i].ciphersuites);
            assert_has_line(redis, line);
        } else {
            assert_lacks(redis, "tls-ciphersuites");
        }

        /* No other plane's value leaks in. */
        for (size_t v = 0; v < sizeof(every_value) / sizeof(every_value[0]); v++) {
            if (strcmp(every_value[v], want[i].ciphers) == 0 ||
                (want[i].ciphersuites && strcmp(every_value[v], want[i].ciphersuites) == 0))
                continue;
            assert_lacks(text, every_value[v]);
            assert_lacks(redis, every_value[v]);
        }
        free(redis);
        free(text);
        tls_config_free(config);
    }
    policy_clear(&p);
}

static void the_sentinel_follows_the_data_plane_unless_set(void **state)
{
    struct tls_spec spec = make_spec(TLS_PLANE_SENTINEL, RENDER_CERTVISOR);
    struct tls_config *config;
    struct policy p;

    (void)state;
    policy_init(&p);
    set(&p, POLICY_CONTROL_CIPHER_SUITES_TLS_1_3, "TLS_AES_128_GCM_SHA256");
    set(&p, POLICY_DATA_CIPHER_SUITES_TLS_1_3, "TLS_AES_256_GCM_SHA384");
    /* With a TLS 1.0 cipher, so that the data plane may go down to TLS 1.0 below. */
    set(&p, POLICY_DATA_CIPHER_LIST, "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-SHA");

    config = build(&spec, &plain_files, &p);
    assert_string_equal(config->min_version, "1.2"); /* the data plane's default */
    assert_null(config->ciphers);      /* the sentinel's own list: OpenSSL's default */
    assert_null(config->ciphersuites); /* no sentinel TLS 1.3 setting, whatever others say */
    assert_int_equal(config->security_level, -1);
    tls_config_free(config);

    set(&p, POLICY_MIN_DATA_TLS_VERSION, "1.3");
    config = build(&spec, &plain_files, &p);
    assert_string_equal(config->min_version, "1.3");
    assert_null(config->ciphersuites);
    tls_config_free(config);

    set(&p, POLICY_MIN_DATA_TLS_VERSION, "1");
    config = build(&spec, &plain_files, &p);
    assert_string_equal(config->min_version, "1");
    assert_int_equal(config->security_level, 0); /* following data down to TLS 1.0 */
    tls_config_free(config);

    /* Once set, the sentinel's own version holds, whatever the data plane's. */
    set(&p, POLICY_MIN_SENTINEL_TLS_VERSION, "1.2");
    set(&p, POLICY_MIN_DATA_TLS_VERSION, "1.3");
    set(&p, POLICY_SENTINEL_CIPHER_SUITES, "ECDHE-ECDSA-AES256-GCM-SHA384");
    config = build(&spec, &plain_files, &p);
    assert_string_equal(config->min_version, "1.2");
    assert_string_equal(config->ciphers, "ECDHE-ECDSA-AES256-GCM-SHA384");
    assert_int_equal(config->security_level, -1);
    tls_config_free(config);

    spec.plane = TLS_PLANE_DATA;
    config = build(&spec, &plain_files, &p);
    assert_string_equal(config->min_version, "1.3");
    assert_string_equal(config->ciphers, "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-SHA");
    assert_string_equal(config->ciphersuites, "TLS_AES_256_GCM_SHA384");
    tls_config_free(config);
    policy_clear(&p);
}

/* The value of the redis include's tls-ciphers line (its quotes stripped), malloc'd, or NULL. */
static char *redis_ciphers(const char *text)
{
    const char *start = strstr(text, "\ntls-ciphers \"");
    const char *end;

    if (!start)
        return NULL;
    start += strlen("\ntls-ciphers \"");
    end = strchr(start, '\n');
    assert_non_null(end);
    assert_true(end > start && end[-1] == '"');
    return strndup(start, (size_t)(end - 1 - start));
}

/* The security level an SSL_CTX ends up at once redis-server applies this tls-ciphers value. */
static int level_after(const char *ciphers)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    int level;

    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_set_cipher_list(ctx, ciphers), 1);
    level = SSL_CTX_get_security_level(ctx);
    SSL_CTX_free(ctx);
    return level;
}

static void tls_1_0_and_1_1_get_security_level_zero(void **state)
{
    static const struct {
        const char *version, *protocols;
        bool old;
    } cases[] = {
        {"1", "tls-protocols \"TLSv1 TLSv1.1 TLSv1.2 TLSv1.3\"", true},
        {"1.0", "tls-protocols \"TLSv1 TLSv1.1 TLSv1.2 TLSv1.3\"", true},
        {"1.1", "tls-protocols \"TLSv1.1 TLSv1.2 TLSv1.3\"", true},
        {"1.2", "tls-protocols \"TLSv1.2 TLSv1.3\"", false},
        {"TLSv1.3", "tls-protocols \"TLSv1.3\"", false},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tls_spec spec = make_spec(TLS_PLANE_DATA, RENDER_CERTVISOR);
        struct tls_config *config;
        char *text, *redis, *ciphers;
        struct policy p;

        policy_init(&p);
        set(&p, POLICY_MIN_DATA_TLS_VERSION, cases[i].version);
        config = build(&spec, &plain_files, &p);
        text = render(&spec, &plain_files, &p);
        spec.format = RENDER_REDIS;
        redis = render(&spec, &plain_files, &p);
        assert_has_line(redis, cases[i].protocols);
        ciphers = redis_ciphers(redis);
        if (cases[i].old) {
            assert_int_equal(config->security_level, 0);
            assert_has_line(text, "security_level = 0");
            /* No list set: OpenSSL's DEFAULT, at level 0, which the default level refuses. */
            assert_has_line(redis, "tls-ciphers \"DEFAULT:@SECLEVEL=0\"");
            assert_non_null(ciphers);
            assert_int_equal(level_after(ciphers), 0);
            assert_int_not_equal(level_after("DEFAULT"), 0);
        } else {
            assert_int_equal(config->security_level, -1);
            assert_lacks(text, "security_level");
            assert_lacks(redis, "SECLEVEL");
            assert_null(ciphers); /* no list set: redis-server keeps OpenSSL's */
        }
        free(ciphers);
        free(redis);
        free(text);
        tls_config_free(config);

        /* A list of the plane's own gets the level appended, last, where it wins. */
        set(&p, POLICY_DATA_CIPHER_LIST, "ECDHE-RSA-AES128-SHA:@SECLEVEL=2");
        redis = render(&spec, &plain_files, &p);
        ciphers = redis_ciphers(redis);
        assert_non_null(ciphers);
        if (cases[i].old) {
            assert_string_equal(ciphers, "ECDHE-RSA-AES128-SHA:@SECLEVEL=2:@SECLEVEL=0");
            assert_int_equal(level_after(ciphers), 0);
        } else {
            assert_string_equal(ciphers, "ECDHE-RSA-AES128-SHA:@SECLEVEL=2");
        }
        free(ciphers);
        free(redis);
        policy_clear(&p);
    }
}

static void verify_peer_maps_to_each_format(void **state)
{
    static const struct {
        enum tls_verify verify;
        const char *certvisor_line; /* NULL: no verify_peer line (none is the default) */
        const char *redis_line;
    } cases[] = {
        {TLS_VERIFY_NONE, NULL, "tls-auth-clients no"},
        {TLS_VERIFY_OPTIONAL, "verify_peer = optional", "tls-auth-clients optional"},
        {TLS_VERIFY_REQUIRE, "verify_peer = require", "tls-auth-clients yes"},
    };
    struct policy p;

    (void)state;
    policy_init(&p);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tls_spec spec = make_spec(TLS_PLANE_DATA, RENDER_CERTVISOR);
        struct tls_config *config;
        char *text, *redis;

        spec.verify_peer = cases[i].verify;
        spec.trust = "cluster_ca";
        config = build(&spec, &trusting_files, &p);
        assert_int_equal(config->verify_peer, cases[i].verify);
        text = render(&spec, &trusting_files, &p);
        if (cases[i].certvisor_line)
            assert_has_line(text, cases[i].certvisor_line);
        else
            assert_lacks(text, "verify_peer");
        spec.format = RENDER_REDIS;
        redis = render(&spec, &trusting_files, &p);
        assert_has_line(redis, cases[i].redis_line);
        assert_lacks(redis, "verify_peer");
        free(redis);
        free(text);
        tls_config_free(config);
    }
    policy_clear(&p);
}

static void trusted_cas_only_when_given(void **state)
{
    struct tls_spec spec = make_spec(TLS_PLANE_CONTROL, RENDER_CERTVISOR);
    struct tls_config *config;
    char *text, *redis;
    struct policy p;

    (void)state;
    policy_init(&p);
    spec.trust = "mtls_trusted_ca";
    spec.verify_peer = TLS_VERIFY_REQUIRE;
    config = build(&spec, &trusting_files, &p);
    assert_string_equal(config->ca_file, CA_FILE);
    text = render(&spec, &trusting_files, &p);
    assert_has_line(text, "ca_file = " CA_FILE);
    spec.format = RENDER_REDIS;
    redis = render(&spec, &trusting_files, &p);
    assert_has_line(redis, "tls-ca-cert-file \"" CA_FILE "\"");
    free(redis);
    free(text);
    tls_config_free(config);

    spec = make_spec(TLS_PLANE_CONTROL, RENDER_CERTVISOR);
    config = build(&spec, &plain_files, &p);
    assert_null(config->ca_file);
    text = render(&spec, &plain_files, &p);
    assert_lacks(text, "ca_file");
    assert_lacks(text, "cluster_ca");
    spec.format = RENDER_REDIS;
    redis = render(&spec, &plain_files, &p);
    assert_lacks(redis, "tls-ca-cert");
    assert_lacks(redis, "cluster_ca");
    free(redis);
    free(text);
    tls_config_free(config);
    policy_clear(&p);
}

static void the_same_input_gives_the_same_bytes(void **state)
{
    struct policy p, copy;

    (void)state;
    distinct_policy(&p);
    assert_int_equal(policy_copy(&copy, &p), 0);
    for (int plane = TLS_PLANE_CONTROL; plane <= TLS_PLANE_SENTINEL; plane++) {
        for (int format = RENDER_CERTVISOR; format <= RENDER_REDIS; format++) {
            struct tls_spec spec = make_spec((enum tls_plane)plane, (enum render_format)format);
            char *first, *second, *third, *other;

            spec.trust = "cluster_ca";
            spec.verify_peer = TLS_VERIFY_OPTIONAL;
            first = render(&spec, &trusting_files, &p);
            second = render(&spec, &trusting_files, &p);
            third = render(&spec, &trusting_files, &copy); /* equal, not the same, policy */
            assert_string_equal(first, second);
            assert_string_equal(first, third);
            assert_true(strlen(first) > strlen(CERTVISOR_HEADER));
            /* And a different input is different bytes: the comparison can tell. */
            spec.verify_peer = TLS_VERIFY_REQUIRE;
            other = render(&spec, &trusting_files, &p);
            assert_string_not_equal(first, other);
            free(other);
            free(third);
            free(second);
            free(first);
        }
    }
    policy_clear(&copy);
    policy_clear(&p);
}

static void the_certvisor_file_reads_back_as_rendered(void **state)
{
    static const enum tls_verify verifies[] = {TLS_VERIFY_NONE, TLS_VERIFY_OPTIONAL,
                                               TLS_VERIFY_REQUIRE};
    struct policy defaults, distinct;
    const struct policy *policies[2] = {&defaults, &distinct};
    int checked = 0;

    (void)state;
    policy_init(&defaults);
    distinct_policy(&distinct);
    for (size_t pi = 0; pi < 2; pi++) {
        for (int plane = TLS_PLANE_CONTROL; plane <= TLS_PLANE_SENTINEL; plane++) {
            for (size_t v = 0; v < sizeof(verifies) / sizeof(verifies[0]); v++) {
                struct tls_spec spec = make_spec((enum tls_plane)plane, RENDER_CERTVISOR);
                const struct render_files *files = v == 0 ? &plain_files : &trusting_files;
                struct tls_config *config, *parsed = NULL, *direct;
                char err[512];
                char *text, *expected;

                spec.verify_peer = verifies[v];
                spec.trust = v == 0 ? NULL : "cluster_ca";
                config = build(&spec, files, policies[pi]);
                text = render(&spec, files, policies[pi]);
                /* The certvisor format is exactly lib's rendering of the config. */
                expected = tls_config_render(config);
                assert_non_null(expected);
                assert_string_equal(text, expected);
                if (tls_config_parse(text, &parsed, err, sizeof(err)) != 0)
                    fail_msg("rendered text does not parse (%s):\n%s", err, text);
                assert_configs_equal(parsed, config);
                /* And what it reads back is what render_tls_config() built. */
                direct = build(&spec, files, policies[pi]);
                assert_configs_equal(parsed, direct);
                checked++;
                tls_config_free(direct);
                tls_config_free(parsed);
                free(expected);
                free(text);
                tls_config_free(config);
            }
        }
    }
    assert_int_equal(checked, 18);
    policy_clear(&distinct);
    policy_clear(&defaults);
}

/* http_support reaches only the sections that ask for it (the REST API's), whatever the plane. */
static void http_support_only_for_sections_that_ask(void **state)
{
    struct tls_spec spec = make_spec(TLS_PLANE_CONTROL, RENDER_CERTVISOR);
    struct tls_config *config;
    struct policy p;
    char *text;

    (void)state;
    policy_init(&p);
    text = render(&spec, &plain_files, &p);
    assert_lacks(text, "http");
    free(text);
    spec.http = true;
    text = render(&spec, &plain_files, &p);
    assert_has_line(text, "http = enabled");
    free(text);
    set(&p, POLICY_HTTP_SUPPORT, "disabled");
    config = build(&spec, &plain_files, &p);
    assert_string_equal(config->http, "disabled");
    assert_null(config->tls_mode);
    tls_config_free(config);
    spec.plane = TLS_PLANE_SENTINEL; /* both choices in one file */
    text = render(&spec, &plain_files, &p);
    assert_has_line(text, "tls_mode = allowed");
    assert_has_line(text, "http = disabled");
    free(text);
    policy_clear(&p);
}

/*
 * certificate_auth asks for client certificates only while the policy enables
 * certificate sign-in, and then optionally (password clients go on), with the
 * CA the caller resolved (mtls_trusted_ca).
 */
static void certificate_auth_follows_the_policy(void **state)
{
    struct tls_spec spec = make_spec(TLS_PLANE_CONTROL, RENDER_CERTVISOR);
    struct policy p;
    char *text;

    (void)state;
    policy_init(&p);
    spec.http = true;
    spec.certificate_auth = true;
    assert_string_equal(policy_get(&p, POLICY_MTLS_CERTIFICATE_AUTHENTICATION), "disabled");
    assert_false(render_certificate_auth(&spec, &p));
    text = render(&spec, &plain_files, &p);
    assert_lacks(text, "verify_peer");
    free(text);
    set(&p, POLICY_MTLS_CERTIFICATE_AUTHENTICATION, "enabled");
    assert_true(render_certificate_auth(&spec, &p));
    text = render(&spec, &trusting_files, &p);
    assert_has_line(text, "verify_peer = optional");
    assert_has_line(text, "http = enabled");
    free(text);
    spec.certificate_auth = false; /* another section of the same node: untouched */
    assert_false(render_certificate_auth(&spec, &p));
    text = render(&spec, &plain_files, &p);
    assert_lacks(text, "verify_peer");
    free(text);
    policy_clear(&p);
}

static void redis_values_are_quoted_and_escaped(void **state)
{
    static const struct render_files odd_files = {
        .cert_file = "/srv/my certs/\"odd\"\\dir/cert.pem",
        .key_file = "/srv/my certs/key\twith tab.pem",
        .ca_file = "/srv/ca dir/ca.pem",
    };
    struct tls_spec spec = make_spec(TLS_PLANE_DATA, RENDER_REDIS);
    struct policy p;
    char *redis;

    (void)state;
    policy_init(&p);
    set(&p, POLICY_DATA_CIPHER_LIST, "HIGH:!aNULL:!MD5");
    set(&p, POLICY_DATA_CIPHER_SUITES_TLS_1_3, "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256");
    spec.certificate = "db\nINJECTED";
    spec.trust = "cluster_ca";
    spec.port = 12443;
    redis = render(&spec, &odd_files, &p);
    assert_true(strncmp(redis,
                        "# Rendered by certvisord for db?INJECTED; changes here are overwritten.\n",
                        strlen("# Rendered by certvisord for db?INJECTED; changes here are "
                               "overwritten.\n")) == 0);
    assert_false(has_line(redis, "INJECTED; changes here are overwritten."));
    assert_has_line(redis, "tls-port 12443");
    assert_has_line(redis, "tls-cert-file \"/srv/my certs/\\\"odd\\\"\\\\dir/cert.pem\"");
    assert_has_line(redis, "tls-key-file \"/srv/my certs/key\\x09with tab.pem\"");
    assert_has_line(redis, "tls-ca-cert-file \"/srv/ca dir/ca.pem\"");
    assert_has_line(redis, "tls-ciphers \"HIGH:!aNULL:!MD5\"");
    assert_has_line(redis, "tls-ciphersuites \"TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256\"");
    /* Each line is a comment or "directive value"; nothing else got a line of its own. */
    for (const char *line = redis; *line;) {
        const char *nl = strchr(line, '\n');

        assert_non_null(nl); /* every line ends */
        assert_true(*line == '#' || strncmp(line, "tls-", 4) == 0);
        line = nl + 1;
    }
    free(redis);
    policy_clear(&p);
}

static void an_unusable_policy_is_refused(void **state)
{
    struct tls_spec spec = make_spec(TLS_PLANE_CONTROL, RENDER_CERTVISOR);
    struct tls_config *config = NULL;
    char *text = NULL;
    struct policy p;

    (void)state;
    policy_init(&p);
    /* policy_set() without policy_check(): a caller's bug, not a file to hand a service. */
    assert_int_equal(
        policy_set(&p, POLICY_MIN_CONTROL_TLS_VERSION, "1.4", POLICY_FROM_RUNTIME, NULL, 0), 0);
    assert_int_equal(render_tls_config(&spec, &plain_files, &p, &config), -EINVAL);
    assert_null(config);
    assert_int_equal(render_text(&spec, &plain_files, &p, &text), -EINVAL);
    assert_null(text);
    spec.format = RENDER_REDIS;
    assert_int_equal(render_text(&spec, &plain_files, &p, &text), -EINVAL);
    assert_null(text);
    /* The other planes are unaffected. */
    spec.plane = TLS_PLANE_DATA;
    text = render(&spec, &plain_files, &p);
    assert_has_line(text, "tls-protocols \"TLSv1.2 TLSv1.3\"");
    free(text);
    policy_clear(&p);
}

static void golden_proxy_certvisor_with_data_ciphers(void **state)
{
    struct tls_spec spec = make_spec(TLS_PLANE_DATA, RENDER_CERTVISOR);
    struct policy p;
    char *text;

    (void)state;
    policy_init(&p);
    set(&p, POLICY_DATA_CIPHER_LIST, "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384");
    set(&p, POLICY_CONTROL_CIPHER_SUITES, "ECDHE-ECDSA-AES128-GCM-SHA256"); /* not proxy's */
    text = render(&spec, &plain_files, &p);
    assert_has_line(text, "ciphers = ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384");
    check_golden("render_proxy.certvisor", text);
    free(text);
    policy_clear(&p);
}

static void golden_api_control_plane_defaults(void **state)
{
    static const struct render_files files = {
        .cert_file = "/var/lib/certvisor/certs/api/1/cert.pem",
        .key_file = "/var/lib/certvisor/certs/api/1/key.pem",
        .ca_file = CA_FILE,
    };
    struct tls_spec spec = make_spec(TLS_PLANE_CONTROL, RENDER_CERTVISOR);
    struct policy p;
    char *text;

    (void)state;
    policy_init(&p);
    spec.certificate = "api";
    spec.output = "/var/run/certvisor/api/tls.conf";
    spec.trust = "cluster_ca";
    spec.verify_peer = TLS_VERIFY_OPTIONAL;
    spec.http = true;
    text = render(&spec, &files, &p);
    assert_has_line(text, "min_version = 1.2");
    assert_has_line(text, "http = enabled"); /* http_support's default */
    check_golden("render_api.certvisor", text);
    free(text);
    policy_clear(&p);
}

static void golden_redis_db1_include(void **state)
{
    static const struct render_files files = {
        .cert_file = "/var/lib/certvisor/certs/data_internode_encryption/2/cert.pem",
        .key_file = "/var/lib/certvisor/certs/data_internode_encryption/2/key.pem",
        .ca_file = CA_FILE,
    };
    struct tls_spec spec = make_spec(TLS_PLANE_DATA, RENDER_REDIS);
    struct policy p;
    char *text;

    (void)state;
    policy_init(&p);
    set(&p, POLICY_DATA_CIPHER_LIST, "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305");
    set(&p, POLICY_DATA_CIPHER_SUITES_TLS_1_3,
        "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
    spec.certificate = "data_internode_encryption";
    spec.output = "/var/run/certvisor/redis-db1/tls.conf";
    spec.trust = "cluster_ca";
    spec.verify_peer = TLS_VERIFY_REQUIRE;
    spec.port = 12443;
    text = render(&spec, &files, &p);
    assert_has_line(text, "tls-port 12443");
    assert_has_line(text, "tls-auth-clients yes");
    check_golden("render_redis_db1.redis", text);
    free(text);
    policy_clear(&p);
}

static void golden_sentinel_following_data_at_1_3(void **state)
{
    struct tls_spec spec = make_spec(TLS_PLANE_SENTINEL, RENDER_CERTVISOR);
    struct policy p;
    char *text;

    (void)state;
    policy_init(&p);
    set(&p, POLICY_MIN_DATA_TLS_VERSION, "1.3");
    set(&p, POLICY_DATA_CIPHER_SUITES_TLS_1_3, "TLS_AES_128_GCM_SHA256"); /* data's, not ours */
    set(&p, POLICY_SENTINEL_CIPHER_SUITES, "ECDHE-ECDSA-AES256-GCM-SHA384");
    spec.output = "/var/run/certvisor/sentinel_service/tls.conf";
    text = render(&spec, &plain_files, &p);
    assert_has_line(text, "min_version = 1.3");
    assert_lacks(text, "TLS_AES_128_GCM_SHA256");
    check_golden("render_sentinel.certvisor", text);
    free(text);
    policy_clear(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plane_and_format_words),
        cmocka_unit_test(each_plane_takes_its_own_settings),
        cmocka_unit_test(the_sentinel_follows_the_data_plane_unless_set),
        cmocka_unit_test(tls_1_0_and_1_1_get_security_level_zero),
        cmocka_unit_test(verify_peer_maps_to_each_format),
        cmocka_unit_test(trusted_cas_only_when_given),
        cmocka_unit_test(the_same_input_gives_the_same_bytes),
        cmocka_unit_test(the_certvisor_file_reads_back_as_rendered),
        cmocka_unit_test(http_support_only_for_sections_that_ask),
        cmocka_unit_test(certificate_auth_follows_the_policy),
        cmocka_unit_test(redis_values_are_quoted_and_escaped),
        cmocka_unit_test(an_unusable_policy_is_refused),
        cmocka_unit_test(golden_proxy_certvisor_with_data_ciphers),
        cmocka_unit_test(golden_api_control_plane_defaults),
        cmocka_unit_test(golden_redis_db1_include),
        cmocka_unit_test(golden_sentinel_following_data_at_1_3),
    };
    return cmocka_run_group_tests_name("render", tests, NULL, NULL);
}
