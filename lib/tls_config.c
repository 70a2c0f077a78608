/* The rendered TLS configuration of a service: rendering, parsing, reading and atomic writing. */
#include "tls_config.h"

#include "cv_error.h"
#include "fsutil.h"

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
    for (int s = 0; s < SET_COUNT; s++) {
        char **slot = string_slot((struct tls_config *)config, (enum tls_setting)s);

        if (slot && *slot)
            fprintf(f, "%s = %s\n", setting_names[s], *slot);
    }
    if (config->security_level >= 0)
        fprintf(f, "%s = %d\n", setting_names[SET_SECURITY_LEVEL], config->security_level);
    if (config->verify_peer == TLS_VERIFY_OPTIONAL || config->verify_peer == TLS_VERIFY_REQUIRE)
        fprintf(f, "%s = %s\n", setting_names[SET_VERIFY_PEER], verify_names[config->verify_peer]);
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

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Trims blanks from both ends of [*start, *start + *len). */
static void trim(const char **start, size_t *len)
{
    while (*len && is_blank(**start)) {
        (*start)++;
        (*len)--;
    }
    while (*len && is_blank((*start)[*len - 1]))
        (*len)--;
}

/* Parses one line (without its newline). seen[] holds the line each setting was set on. */
static int parse_line(struct tls_config *config, const char *line, size_t len, int number,
                      int seen[SET_COUNT], char *err, size_t err_len)
{
    const char *eq, *key, *value_start;
    size_t key_len, value_len;
    int setting = -1;
    char *value;
    int r = 0;

    trim(&line, &len);
    if (len == 0 || line[0] == '#')
        return 0;
    eq = memchr(line, '=', len);
    if (!eq) {
        snprintf(err, err_len, "line %d: expected 'key = value'", number);
        return CV_EINVALID_TLS;
    }
    key = line;
    key_len = (size_t)(eq - line);
    trim(&key, &key_len);
    value_start = eq + 1;
    value_len = (size_t)(line + len - value_start);
    trim(&value_start, &value_len);
    if (key_len == 0) {
        snprintf(err, err_len, "line %d: expected 'key = value'", number);
        return CV_EINVALID_TLS;
    }
    for (int s = 0; s < SET_COUNT; s++) {
        if (strlen(setting_names[s]) == key_len && memcmp(setting_names[s], key, key_len) == 0)
            setting = s;
    }
    if (setting < 0) {
        snprintf(err, err_len, "line %d: unknown setting '%.*s'", number,
                 (int)(key_len > 64 ? 64 : key_len), key);
        return CV_EINVALID_TLS;
    }
    if (seen[setting]) {
        snprintf(err, err_len, "line %d: duplicate setting '%s' (already set on line %d)", number,
                 setting_names[setting], seen[setting]);
        return CV_EINVALID_TLS;
    }
    seen[setting] = number;
    if (value_len == 0) {
        snprintf(err, err_len, "line %d: %s has no value", number, setting_names[setting]);
        return CV_EINVALID_TLS;
    }
    for (size_t i = 0; i < value_len; i++) {
        unsigned char c = (unsigned char)value_start[i];

        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            snprintf(err, err_len, "line %d: %s contains a control character", number,
                     setting_names[setting]);
            return CV_EINVALID_TLS;
        }
    }
    value = strndup(value_start, value_len);
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
    int number = 0;
    int r;

    if (!config) {
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    config->security_level = -1;
    config->verify_peer = TLS_VERIFY_NONE;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);

        r = parse_line(config, p, len, ++number, seen, err, err_len);
        if (r < 0) {
            tls_config_free(config);
            return r;
        }
        p += len;
        if (*p == '\n')
            p++;
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
    char message[512];
    struct stat st;
    char *text;
    ssize_t n;
    size_t len = 0;
    int fd, r;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        r = -errno;
        snprintf(err, err_len, "%s: cannot read: %s", path, strerror(-r));
        return r;
    }
    if (fstat(fd, &st) < 0) {
        r = -errno;
        snprintf(err, err_len, "%s: cannot read: %s", path, strerror(-r));
        close(fd);
        return r;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, err_len, "%s: not a regular file", path);
        close(fd);
        return CV_EINVALID_TLS;
    }
    text = malloc(TLS_CONFIG_MAX_BYTES + 2);
    if (!text) {
        close(fd);
        snprintf(err, err_len, "%s: out of memory", path);
        return -ENOMEM;
    }
    /* Read one byte more than allowed, to tell a full file from a too large one. */
    while (len <= TLS_CONFIG_MAX_BYTES) {
        n = read(fd, text + len, TLS_CONFIG_MAX_BYTES + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            snprintf(err, err_len, "%s: cannot read: %s", path, strerror(-r));
            free(text);
            close(fd);
            return r;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (len > TLS_CONFIG_MAX_BYTES) {
        snprintf(err, err_len, "%s: larger than %d bytes", path, TLS_CONFIG_MAX_BYTES);
        free(text);
        return CV_EINVALID_TLS;
    }
    text[len] = '\0';
    if (strlen(text) != len) {
        snprintf(err, err_len, "%s: contains a NUL byte; not a text file", path);
        free(text);
        return CV_EINVALID_TLS;
    }
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
