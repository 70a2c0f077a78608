/* Loading what certvisor-sentinel serves from the files certvisord renders for it. */
#include "settings.h"

#include "cv_error.h"
#include "tls_context.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const mode_names[] = {
    [SENTINEL_TLS_ALLOWED] = "allowed",
    [SENTINEL_TLS_REQUIRED] = "required",
    [SENTINEL_TLS_DISABLED] = "disabled",
};

const char *sentinel_tls_mode_name(enum sentinel_tls_mode mode)
{
    return (unsigned)mode < sizeof(mode_names) / sizeof(mode_names[0]) ? mode_names[mode] : "?";
}

static int mode_parse(const char *text, enum sentinel_tls_mode *ret_mode)
{
    for (size_t i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
        if (strcmp(text, mode_names[i]) == 0) {
            *ret_mode = (enum sentinel_tls_mode)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* The mode and the context, from the TLS file. */
static int load_tls(const char *path, struct sentinel_settings *settings, char *err, size_t err_len)
{
    struct tls_config *config = NULL;
    char reason[1024];
    int r = tls_config_read(path, &config, err, err_len);

    if (r < 0)
        return r;
    if (!config->tls_mode) {
        snprintf(err, err_len,
                 "%s has no tls_mode: the sentinel reads a file rendered for the sentinel plane "
                 "(plane = sentinel in its tls section)",
                 path);
        r = CV_EINVALID_TLS;
    } else if (mode_parse(config->tls_mode, &settings->mode) < 0) {
        snprintf(err, err_len, "%s: tls_mode '%s' is not allowed, required or disabled", path,
                 config->tls_mode);
        r = CV_EINVALID_TLS;
    } else if ((r = tls_context_build(config, TLS_ROLE_SERVER, &settings->ctx, reason,
                                      sizeof(reason))) < 0) {
        snprintf(err, err_len, "%s: %s", path, reason);
    } else {
        snprintf(settings->min_version, sizeof(settings->min_version), "%s", config->min_version);
    }
    tls_config_free(config);
    return r;
}

int settings_load(const char *tls_path, const char *databases_path,
                  struct sentinel_settings *ret_settings, char *err, size_t err_len)
{
    struct sentinel_settings settings = {0};
    int r = load_tls(tls_path, &settings, err, err_len);

    if (r == 0)
        r = db_list_read(databases_path, &settings.dbs, err, err_len);
    if (r < 0) {
        settings_clear(&settings);
        return r;
    }
    *ret_settings = settings;
    return 0;
}

void settings_clear(struct sentinel_settings *settings)
{
    SSL_CTX_free(settings->ctx);
    db_list_clear(&settings->dbs);
    memset(settings, 0, sizeof(*settings));
}
