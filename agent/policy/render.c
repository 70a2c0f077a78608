/* Rendering a service's TLS configuration from the certificate store's paths and the policy. */
#include "render.h"

#include <errno.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per plane: its minimum version, its TLS 1.2-and-below cipher list, its TLS 1.3 suites (or -1). */
static const struct {
    enum policy_setting min_version;
    enum policy_setting ciphers;
    int ciphersuites;
} plane_settings[] = {
    [TLS_PLANE_CONTROL] = {POLICY_MIN_CONTROL_TLS_VERSION, POLICY_CONTROL_CIPHER_SUITES,
                           POLICY_CONTROL_CIPHER_SUITES_TLS_1_3},
    [TLS_PLANE_DATA] = {POLICY_MIN_DATA_TLS_VERSION, POLICY_DATA_CIPHER_LIST,
                        POLICY_DATA_CIPHER_SUITES_TLS_1_3},
    /* No TLS 1.3 setting: OpenSSL's default suites. The minimum follows the data plane's. */
    [TLS_PLANE_SENTINEL] = {POLICY_MIN_SENTINEL_TLS_VERSION, POLICY_SENTINEL_CIPHER_SUITES, -1},
};

static const char *const plane_words[] = {
    [TLS_PLANE_CONTROL] = "control",
    [TLS_PLANE_DATA] = "data",
    [TLS_PLANE_SENTINEL] = "sentinel",
};

static const char *const format_words[] = {
    [RENDER_CERTVISOR] = "certvisor",
    [RENDER_REDIS] = "redis",
};

/* The protocol names redis-server's tls-protocols takes, oldest first. */
static const struct {
    int version;
    const char *name;
} redis_protocols[] = {
    {TLS1_VERSION, "TLSv1"},
    {TLS1_1_VERSION, "TLSv1.1"},
    {TLS1_2_VERSION, "TLSv1.2"},
    {TLS1_3_VERSION, "TLSv1.3"},
};

static const char *const redis_auth_clients[] = {
    [TLS_VERIFY_NONE] = "no",
    [TLS_VERIFY_OPTIONAL] = "optional",
    [TLS_VERIFY_REQUIRE] = "yes",
};

/* strdup() of an optional string: 0, or -ENOMEM with *to left NULL. */
static int copy_optional(char **to, const char *from)
{
    *to = NULL;
    if (!from)
        return 0;
    *to = strdup(from);
    return *to ? 0 : -ENOMEM;
}

bool render_certificate_auth(const struct tls_spec *spec, const struct policy *policy)
{
    return spec->certificate_auth && policy_enabled(policy, POLICY_MTLS_CERTIFICATE_AUTHENTICATION);
}

int render_tls_config(const struct tls_spec *spec, const struct render_files *files,
                      const struct policy *policy, struct tls_config **ret_config)
{
    const char *min_version, *ciphers, *ciphersuites;
    /* Only for the sections that serve plain HTTP beside TLS (the REST API's). */
    const char *http = spec->http ? policy_get(policy, POLICY_HTTP_SUPPORT) : NULL;
    struct tls_config *config;
    int version;

    if ((unsigned)spec->plane >= sizeof(plane_settings) / sizeof(plane_settings[0]) ||
        (unsigned)spec->verify_peer > TLS_VERIFY_REQUIRE || !files->cert_file || !files->key_file)
        return -EINVAL;
    /*
     * policy_set() stores what policy_check() accepted, normalised; anything
     * else in the policy is a caller's bug, and rendering it would give every
     * service of the plane a file it refuses.
     */
    min_version = policy_get(policy, plane_settings[spec->plane].min_version);
    if (!min_version || tls_version_parse(min_version, &version) < 0)
        return -EINVAL;
    ciphers = policy_get(policy, plane_settings[spec->plane].ciphers);
    ciphersuites =
        plane_settings[spec->plane].ciphersuites < 0
            ? NULL
            : policy_get(policy, (enum policy_setting)plane_settings[spec->plane].ciphersuites);
    config = calloc(1, sizeof(*config));
    if (!config)
        return -ENOMEM;
    if (copy_optional(&config->cert_file, files->cert_file) < 0 ||
        copy_optional(&config->key_file, files->key_file) < 0 ||
        copy_optional(&config->ca_file, files->ca_file) < 0 ||
        copy_optional(&config->min_version, min_version) < 0 ||
        copy_optional(&config->ciphers, ciphers) < 0 ||
        copy_optional(&config->ciphersuites, ciphersuites) < 0 ||
        copy_optional(&config->tls_mode, spec->plane == TLS_PLANE_SENTINEL
                                             ? policy_get(policy, POLICY_SENTINEL_TLS_MODE)
                                             : NULL) < 0 ||
        copy_optional(&config->http, http) < 0 ||
        copy_optional(&config->ocsp_response,
                      spec->format == RENDER_CERTVISOR ? files->ocsp_response : NULL) < 0) {
        tls_config_free(config);
        return -ENOMEM;
    }
    /* OpenSSL 3 refuses TLS 1.0 and 1.1 at its default security level 1. */
    config->security_level = version < TLS1_2_VERSION ? 0 : -1;
    /* Asked for, never required: clients that sign in with a password keep working. */
    config->verify_peer =
        render_certificate_auth(spec, policy) ? TLS_VERIFY_OPTIONAL : spec->verify_peer;
    *ret_config = config;
    return 0;
}

/*
 * Writes text for the inside of a double-quoted redis.conf argument.
 * redis-server splits its lines with sdssplitargs(), which inside double
 * quotes reads \" \\ and \xHH escapes: quotes and backslashes are escaped,
 * and so is every control character, so that no value can end its line or
 * its quotes early.
 */
static void put_redis_escaped(FILE *f, const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
}

/* directive "value"; every value is quoted, whether or not it holds a blank. */
static void put_redis_line(FILE *f, const char *directive, const char *value)
{
    fprintf(f, "%s \"", directive);
    put_redis_escaped(f, value);
    fputs("\"\n", f);
}

/* Writes the redis.conf include for spec into f. */
static void render_redis(FILE *f, const struct tls_spec *spec, const struct tls_config *config)
{
    int min_version = TLS1_2_VERSION;
    const char *sep = "";

    /* One comment line, whatever the name holds. */
    fputs("# Rendered by certvisord", f);
    if (spec->certificate) {
        fputs(" for ", f);
        for (const unsigned char *p = (const unsigned char *)spec->certificate; *p; p++)
            fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f);
    }
    fputs("; changes here are overwritten.\n", f);

    fprintf(f, "tls-port %d\n", spec->port);
    put_redis_line(f, "tls-cert-file", config->cert_file);
    put_redis_line(f, "tls-key-file", config->key_file);
    if (config->ca_file)
        put_redis_line(f, "tls-ca-cert-file", config->ca_file);

    tls_version_parse(config->min_version, &min_version); /* checked by render_tls_config() */
    fputs("tls-protocols \"", f);
    for (size_t i = 0; i < sizeof(redis_protocols) / sizeof(redis_protocols[0]); i++) {
        if (redis_protocols[i].version >= min_version) {
            fprintf(f, "%s%s", sep, redis_protocols[i].name);
            sep = " ";
        }
    }
    fputs("\"\n", f);

    /*
     * redis-server has no setting for OpenSSL's security level, and OpenSSL 3
     * refuses TLS 1.0 and 1.1 at its default level 1 (their MD5+SHA-1
     * handshake is below its 80 bits): told to accept TLSv1, redis-server
     * would still fail every TLS 1.0 and 1.1 handshake. A cipher string's
     * "@SECLEVEL=0" sets the context's level when redis-server applies
     * tls-ciphers, so the level rides on the cipher string: appended last,
     * where it also wins over any @SECLEVEL the plane's list holds, or after
     * DEFAULT (OpenSSL's own list) when the plane sets none.
     */
    if (config->security_level == 0) {
        fputs("tls-ciphers \"", f);
        put_redis_escaped(f, config->ciphers ? config->ciphers : "DEFAULT");
        fputs(":@SECLEVEL=0\"\n", f);
    } else if (config->ciphers) {
        put_redis_line(f, "tls-ciphers", config->ciphers);
    }
    if (config->ciphersuites)
        put_redis_line(f, "tls-ciphersuites", config->ciphersuites);
    fprintf(f, "tls-auth-clients %s\n", redis_auth_clients[config->verify_peer]);
}

int render_text(const struct tls_spec *spec, const struct render_files *files,
                const struct policy *policy, char **ret_text)
{
    struct tls_config *config;
    char *text = NULL;
    size_t len = 0;
    FILE *f;
    int r;

    if (spec->format != RENDER_CERTVISOR && spec->format != RENDER_REDIS)
        return -EINVAL;
    r = render_tls_config(spec, files, policy, &config);
    if (r < 0)
        return r;
    if (spec->format == RENDER_CERTVISOR) {
        text = tls_config_render(config);
        tls_config_free(config);
        if (!text)
            return -ENOMEM;
        *ret_text = text;
        return 0;
    }
    f = open_memstream(&text, &len);
    if (!f) {
        tls_config_free(config);
        return -ENOMEM;
    }
    render_redis(f, spec, config);
    tls_config_free(config);
    r = ferror(f) ? -ENOMEM : 0;
    if (fclose(f) != 0)
        r = -ENOMEM;
    if (r < 0) {
        free(text);
        return r;
    }
    *ret_text = text;
    return 0;
}

int render_plane_parse(const char *word, enum tls_plane *ret_plane)
{
    for (size_t i = 0; word && i < sizeof(plane_words) / sizeof(plane_words[0]); i++) {
        if (strcmp(word, plane_words[i]) == 0) {
            *ret_plane = (enum tls_plane)i;
            return 0;
        }
    }
    return -EINVAL;
}

int render_format_parse(const char *word, enum render_format *ret_format)
{
    for (size_t i = 0; word && i < sizeof(format_words) / sizeof(format_words[0]); i++) {
        if (strcmp(word, format_words[i]) == 0) {
            *ret_format = (enum render_format)i;
            return 0;
        }
    }
    return -EINVAL;
}
