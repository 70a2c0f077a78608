/* What certvisor-sentinel serves: its TLS settings and the databases, read from the rendered files.
 */
#ifndef CERTVISOR_SENTINEL_SETTINGS_H
#define CERTVISOR_SENTINEL_SETTINGS_H

#include "db_config.h"

#include <openssl/ssl.h>
#include <stddef.h>

/* sentinel_tls_mode (sentinel_ssl_policy): which clients the port takes. */
enum sentinel_tls_mode {
    SENTINEL_TLS_ALLOWED,  /* TLS and plain, told apart by the first byte */
    SENTINEL_TLS_REQUIRED, /* TLS only: a plain client is told so, then closed */
    SENTINEL_TLS_DISABLED, /* plain only: a TLS ClientHello gets a handshake_failure alert */
};

struct sentinel_settings {
    enum sentinel_tls_mode mode;
    SSL_CTX *ctx; /* built whatever the mode, so a broken TLS file fails at start in every mode */
    char min_version[8]; /* "1.2": for the start-up message */
    struct db_list dbs;
};

/*
 * Reads the rendered TLS file (which must carry tls_mode: it is rendered for
 * the sentinel plane), builds its server context, and reads the databases
 * file. Returns 0 with *ret_settings filled, or a negative error with a
 * message naming the file and the fault; *ret_settings is untouched then.
 */
int settings_load(const char *tls_path, const char *databases_path,
                  struct sentinel_settings *ret_settings, char *err, size_t err_len);

void settings_clear(struct sentinel_settings *settings);

const char *sentinel_tls_mode_name(enum sentinel_tls_mode mode);

#endif
