/* The rendered TLS configuration of a service: rendering, parsing, reading and atomic writing. */
#include "tls_config.h"

#include "cv_error.h"
#include "fsutil.h"
#include "kv_text.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TLS_CONFIG_HEADER "# Rendered by certvisord; changes here are overwritten.\n"
#define TLS_CONFIG_MAX_BYTES (64 * 1024)

/* The settings in the order they are rendered. */
enum tls_setting {
    SET_CERT_FILE,
    SET_KEY_FILE,
    SET_CA_FILE,
    SET_MIN_VERSION,
    SET_CIPHERS,
    SET_CIPHERSUITES,
    SET_SECURITY_LEVEL,
    SET_VERIFY_PEER,
    SET_TLS_MODE,
    SET_HTTP,
    SET_OCSP_RESPONSE,
    SET_COUNT,
};

static const char *const setting_names[SET_COUNT] = {
    [SET_CERT_FILE] = "cert_file",
    [SET_KEY_FILE] = "key_file",
    [SET_CA_FILE] = "ca_file",
    [SET_MIN_VERSION] = "min_version",
    [SET_CIPHERS] = "ciphers",
    [SET_CIPHERSUITES] = "ciphersuites",
    [SET_SECURITY_LEVEL] = "security_level",
    [SET_VERIFY_PEER] = "verify_peer",
    [SET_TLS_MODE] = "tls_mode",
    [SET_HTTP] = "http",
    [SET_OCSP_RESPONSE] = "ocsp_response",
};

static const char *const verify_names[] = {
    [TLS_VERIFY_NONE] = "none",
    [TLS_VERIFY_OPTIONAL] = "optional",
    [TLS_VERIFY_REQUIRE] = "require",
};

/* The string setting's slot in config, or NULL for the settings that are not strings. */
static char **string_slot(struct tls_config *config, enum tls_setting setting)
{
    switch (setting) {
    case SET_CERT_FILE:
        return &config->cert_file;
    case SET_KEY_FILE:
        return &config->key_file;
    case SET_CA_FILE:
        return &config->ca_file;
    case SET_MIN_VERSION:
        return &config->min_version;
    case SET_CIPHERS:
        return &config->ciphers;
    case SET_CIPHERSUITES:
        return &config->ciphersuites;
    case SET_TLS_MODE:
        return &config->tls_mode;
    case SET_HTTP:
        return &config->http;
    case SET_OCSP_RESPONSE:
        return &config->ocsp_response;
    default:
        return NULL;
    }
}

int tls_version_parse(const char *text, int *ret_version)
{
    static const struct {
        const char *text;
        int version;
    } versions[] = {
        {"1", TLS1_VERSION},         {"1.0", TLS1_VERSION},       {"1.1", TLS1_1_VERSION},
        {"1.2", TLS1_2_VERSION},     {"1.3", TLS1_3_VERSION},     {"TLSv1", TLS1_VERSION},
        {"TLSv1.0", TLS1_VERSION},   {"TLSv1.1", TLS1_1_VERSION}, {"TLSv1.2", TLS1_2_VERSION},
        {"TLSv1.3", TLS1_3_VERSION},
    };

    for (size_t i = 0; text && i < sizeof(versions) / sizeof(versions[0]); i++) {
        if (strcmp(text, versions[i].text) == 0) {
            *ret_version = versions[i].version;
            return 0;
        }
    }
    return CV_EINVALID_TLS;
}

char *tls_config_render(const struct tls_config *config)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    if (!f)
        return NULL;
    fputs(TLS_CONFIG_HEADER, f);
    for (int s = 0; s < SET_SECURITY_LEVEL; s++) {
        char **slot = string_slot((struct tls_config *)config, (enum tls_setting)s);

        if (slot && *slot)
            fprintf(f, "%s = %s\n", setting_names[s], *slot);
    }
    if (config->security_level >= 0)
        fprintf(f, "%s = %d\n", setting_names[SET_SECURITY_LEVEL], config->security_level);
    if (config->verify_peer == TLS_VERIFY_OPTIONAL || config->verify_peer == TLS_VERIFY_REQUIRE)
        fprintf(f, "%s = %s\n", setting_names[SET_VERIFY_PEER], verify_names[config->verify_peer]);
    if (config->tls_mode)
        fprintf(f, "%s = %s\n", setting_names[SET_TLS_MODE], config->tls_mode);
    if (config->http)
        fprintf(f, "%s = %s\n", setting_names[SET_HTTP], config->http);
    if (config->ocsp_response)
        fprintf(f, "%s = %s\n", setting_names[SET_OCSP_RESPONSE], config->ocsp_response);
    if (ferror(f)) {
        fclose(f);
        free(text);
        return NULL;
    }
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

void tls_config_free(struct tls_config *config)
{
    if (!config)
        return;
    for (int s = 0; s < SET_COUNT; s++) {
        char **slot = string_slot(config, (enum tls_setting)s);

        if (slot)
            free(*slot);
    }
    free(config);
}

/* Applies one "key = value" line. seen[] holds the line each setting was set on. */
static int parse_line(struct tls_config *config, const struct kv_line *line, int seen[SET_COUNT],
                      char *err, size_t err_len)
{
    int number = line->number;
    int setting = -1;
    char *value;
    int r = 0;

    if (!line->key) {
        snprintf(err, err_len, "line %d: expected 'key = value'", number);
        return CV_EINVALID_TLS;
    }
    for (int s = 0; s < SET_COUNT; s++)
        if (kv_key_is(line, setting_names[s]))
            setting = s;
    if (setting < 0) {
        snprintf(err, err_len, "line %d: unknown setting '%.*s'", number,
                 (int)(line->key_len > 64 ? 64 : line->key_len), line->key);
        return CV_EINVALID_TLS;
    }
    if (seen[setting]) {
        snprintf(err, err_len, "line %d: duplicate setting '%s' (already set on line %d)", number,
                 setting_names[setting], seen[setting]);
        return CV_EINVALID_TLS;
    }
    seen[setting] = number;
    value = strndup(line->value, line->value_len);
    if (!value) {
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }

    switch (setting) {
    case SET_MIN_VERSION: {
        int version;

        if (tls_version_parse(value, &version) < 0) {
            snprintf(err, err_len,
                     "line %d: min_version '%s' is not a TLS version (1, 1.1, 1.2 or 1.3)", number,
                     value);
            r = CV_EINVALID_TLS;
            break;
        }
        config->min_version = value;
        value = NULL;
        break;
    }
    case SET_SECURITY_LEVEL:
        if (strlen(value) != 1 || value[0] < '0' || value[0] > '5') {
            snprintf(err, err_len, "line %d: security_level '%s' is not a number from 0 to 5",
                     number, value);
            r = CV_EINVALID_TLS;
            break;
        }
        config->security_level = value[0] - '0';
        break;
    case SET_VERIFY_PEER:
        r = CV_EINVALID_TLS;
        for (size_t v = 0; v < sizeof(verify_names) / sizeof(verify_names[0]); v++) {
            if (strcmp(value, verify_names[v]) == 0) {
                config->verify_peer = (enum tls_verify)v;
                r = 0;
            }
        }
        if (r < 0)
            snprintf(err, err_len, "line %d: verify_peer '%s' is not none, optional or require",
                     number, value);
        break;
    case SET_TLS_MODE:
        if (strcmp(value, "allowed") != 0 && strcmp(value, "required") != 0 &&
            strcmp(value, "disabled") != 0) {
            snprintf(err, err_len, "line %d: tls_mode '%s' is not allowed, required or disabled",
                     number, value);
            r = CV_EINVALID_TLS;
            break;
        }
        config->tls_mode = value;
        value = NULL;
        break;
    case SET_HTTP:
        if (strcmp(value, "enabled") != 0 && strcmp(value, "disabled") != 0) {
            snprintf(err, err_len, "line %d: http '%s' is not enabled or disabled", number, value);
            r = CV_EINVALID_TLS;
            break;
        }
        config->http = value;
        value = NULL;
        break;
    default:
        *string_slot(config, (enum tls_setting)setting) = value;
        value = NULL;
        break;
    }
    free(value);
    return r;
}

int tls_config_parse(const char *text, struct tls_config **ret_config, char *err, size_t err_len)
{
    static const enum tls_setting required[] = {SET_CERT_FILE, SET_KEY_FILE, SET_MIN_VERSION};
    struct tls_config *config = calloc(1, sizeof(*config));
    int seen[SET_COUNT] = {0};
    const char *p = text;
    struct kv_line line;
    int number = 0;
    int r;

    if (!config) {
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    config->security_level = -1;
    config->verify_peer = TLS_VERIFY_NONE;
    while ((r = kv_next(&p, &number, &line, err, err_len)) > 0) {
        r = parse_line(config, &line, seen, err, err_len);
        if (r < 0)
            break;
    }
    if (r < 0) {
        tls_config_free(config);
        return r;
    }
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        if (!seen[required[i]]) {
            snprintf(err, err_len, "missing required setting '%s'", setting_names[required[i]]);
            tls_config_free(config);
            return CV_EINVALID_TLS;
        }
    }
    *ret_config = config;
    return 0;
}

int tls_config_read(const char *path, struct tls_config **ret_config, char *err, size_t err_len)
{
    char message[512], *text = NULL;
    int r = kv_read_file(path, TLS_CONFIG_MAX_BYTES, &text, err, err_len);

    if (r < 0)
        return r;
    r = tls_config_parse(text, ret_config, message, sizeof(message));
    free(text);
    if (r < 0)
        snprintf(err, err_len, "%s: %s", path, message);
    return r;
}

static bool same_string(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/*
 * Checks that text (config rendered) reads back as config: a value with a line
 * break, a control character or blanks at either end would not, nor would a
 * missing required setting or an invalid version or level.
 */
static int check_reads_back(const char *text, const struct tls_config *config, char *err,
                            size_t err_len)
{
    struct tls_config *back;
    bool same;
    int r = tls_config_parse(text, &back, err, err_len);

    if (r < 0)
        return r;
    same =
        config->security_level == back->security_level && config->verify_peer == back->verify_peer;
    for (int s = 0; s < SET_COUNT; s++) {
        char **slot = string_slot((struct tls_config *)config, (enum tls_setting)s);

        if (slot && !same_string(*slot, *string_slot(back, (enum tls_setting)s)))
            same = false;
    }
    tls_config_free(back);
    if (!same) {
        snprintf(err, err_len,
                 "a value would not read back as given (a line break, a control "
                 "character, blanks at either end, or a level out of range)");
        return CV_EINVALID_TLS;
    }
    return 0;
}

int tls_config_write(const char *path, const struct tls_config *config, char *err, size_t err_len)
{
    char message[512];
    char *text;
    int r;

    text = tls_config_render(config);
    if (!text) {
        snprintf(err, err_len, "%s: out of memory", path);
        return -ENOMEM;
    }
    r = check_reads_back(text, config, message, sizeof(message));
    if (r < 0) {
        snprintf(err, err_len, "%s: refusing to write an invalid TLS configuration: %s", path,
                 message);
        free(text);
        return r == CV_EINVALID_TLS ? -EINVAL : r;
    }
    r = fs_write_atomic(path, text, strlen(text), 0640, err, err_len);
    free(text);
    return r;
}
