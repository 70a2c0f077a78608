/* The rendered database list: rendering, parsing and reading the file the proxy serves from. */
#include "db_config.h"

#include "admin_commands.h"
#include "cv_error.h"
#include "kv_text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DB_CONFIG_MAX_BYTES (1024 * 1024)
#define DB_NAME_MAX 63

#define DB_CONFIG_HEADER "# Rendered by certvisord; changes here are overwritten.\n"

static const char *const tls_mode_names[] = {
    [DB_TLS_ENABLED] = "enabled",
    [DB_TLS_DISABLED] = "disabled",
    [DB_TLS_REPLICA_SSL] = "replica_ssl",
};

static const char *const verify_names[] = {
    [TLS_VERIFY_NONE] = "none",
    [TLS_VERIFY_OPTIONAL] = "optional",
    [TLS_VERIFY_REQUIRE] = "require",
};

const char *db_tls_mode_name(enum db_tls_mode mode)
{
    return (unsigned)mode < sizeof(tls_mode_names) / sizeof(tls_mode_names[0])
               ? tls_mode_names[mode]
               : "?";
}

int db_tls_mode_parse(const char *text, enum db_tls_mode *ret_mode)
{
    for (size_t i = 0; i < sizeof(tls_mode_names) / sizeof(tls_mode_names[0]); i++) {
        if (strcmp(text, tls_mode_names[i]) == 0) {
            *ret_mode = (enum db_tls_mode)i;
            return 0;
        }
    }
    return -EINVAL;
}

int db_split_address(const char *address, char *host_buf, size_t host_len, int *ret_port)
{
    const char *colon, *host = address;
    size_t len;
    char *end;
    long port;

    if (address[0] == '[') {
        const char *close = strchr(address, ']');

        if (!close || close[1] != ':')
            return -EINVAL;
        host = address + 1;
        len = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(address, ':');
        if (!colon || strchr(address, ':') != colon)
            return -EINVAL; /* an IPv6 address needs its brackets */
        len = (size_t)(colon - address);
    }
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (len == 0 || len >= host_len || *end || colon[1] == '\0' || errno || port < 1 ||
        port > 65535)
        return -EINVAL;
    memcpy(host_buf, host, len);
    host_buf[len] = '\0';
    *ret_port = (int)port;
    return 0;
}

static void put(FILE *f, const char *key, const char *value)
{
    if (value)
        fprintf(f, "%s = %s\n", key, value);
}

char *db_list_render(const struct db_list *list)
{
    const struct db_config **order = calloc(list->n + 1, sizeof(*order));
    char *text = NULL;
    size_t len = 0;
    FILE *f = order ? open_memstream(&text, &len) : NULL;

    if (!f) {
        free(order);
        return NULL;
    }
    /* In name order, so that equal lists are equal bytes whatever order they were declared. */
    for (size_t i = 0; i < list->n; i++) {
        size_t at = i;

        while (at > 0 && strcmp(order[at - 1]->name, list->dbs[i].name) > 0) {
            order[at] = order[at - 1];
            at--;
        }
        order[at] = &list->dbs[i];
    }
    fputs(DB_CONFIG_HEADER, f);
    for (size_t i = 0; i < list->n; i++) {
        const struct db_config *db = order[i];

        fprintf(f, "\n[%s]\n", db->name);
        put(f, "listen", db->listen);
        fprintf(f, "port = %d\n", db->port);
        put(f, "advertise", db->advertise);
        put(f, "shard", db->shard);
        fprintf(f, "shard_tls = %s\n", db->shard_tls ? "yes" : "no");
        put(f, "shard_cert_file", db->shard_cert_file);
        put(f, "shard_key_file", db->shard_key_file);
        put(f, "shard_ca_file", db->shard_ca_file);
        fprintf(f, "tls_mode = %s\n", db_tls_mode_name(db->tls_mode));
        fprintf(f, "client_verify = %s\n", verify_names[db->client_verify]);
        put(f, "client_ca_file", db->client_ca_file);
        if (db->multiplex_off)
            fputs("multiplex = no\n", f);
        if (db->commands_allowed) {
            char words[1024];

            admin_commands_format(db->commands_allowed, words, sizeof(words));
            fprintf(f, "allow_commands = %s\n", words);
        }
        if (!db->replica_source)
            continue;
        put(f, "replica_source", db->replica_source);
        put(f, "replica_ca_file", db->replica_ca_file);
        put(f, "replica_server_name", db->replica_server_name);
        fprintf(f, "replica_verify_hostname = %s\n", db->replica_verify_hostname ? "yes" : "no");
        if (db->replica_local_port)
            fprintf(f, "replica_local_port = %d\n", db->replica_local_port);
    }
    free(order);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

static void db_free_fields(struct db_config *db)
{
    free(db->name);
    free(db->listen);
    free(db->advertise);
    free(db->shard);
    free(db->shard_cert_file);
    free(db->shard_key_file);
    free(db->shard_ca_file);
    free(db->client_ca_file);
    free(db->replica_source);
    free(db->replica_ca_file);
    free(db->replica_server_name);
}

void db_list_clear(struct db_list *list)
{
    for (size_t i = 0; i < list->n; i++)
        db_free_fields(&list->dbs[i]);
    free(list->dbs);
    list->dbs = NULL;
    list->n = 0;
}

const struct db_config *db_list_find(const struct db_list *list, const char *name)
{
    for (size_t i = 0; i < list->n; i++)
        if (strcmp(list->dbs[i].name, name) == 0)
            return &list->dbs[i];
    return NULL;
}

static bool valid_name(const char *name, size_t len)
{
    if (len == 0 || len > DB_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

bool db_config_name_valid(const char *name)
{
    return valid_name(name, strlen(name));
}

/* The string settings: where each goes. */
static char **string_slot(struct db_config *db, const struct kv_line *line)
{
    static const struct {
        const char *key;
        size_t offset;
    } slots[] = {
        {"listen", offsetof(struct db_config, listen)},
        {"advertise", offsetof(struct db_config, advertise)},
        {"shard", offsetof(struct db_config, shard)},
        {"shard_cert_file", offsetof(struct db_config, shard_cert_file)},
        {"shard_key_file", offsetof(struct db_config, shard_key_file)},
        {"shard_ca_file", offsetof(struct db_config, shard_ca_file)},
        {"client_ca_file", offsetof(struct db_config, client_ca_file)},
        {"replica_source", offsetof(struct db_config, replica_source)},
        {"replica_ca_file", offsetof(struct db_config, replica_ca_file)},
        {"replica_server_name", offsetof(struct db_config, replica_server_name)},
    };

    for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++)
        if (kv_key_is(line, slots[i].key))
            return (char **)((char *)db + slots[i].offset);
    return NULL;
}

/* One setting of the current database. */
static int parse_setting(struct db_config *db, const struct kv_line *line, char *err,
                         size_t err_len)
{
    char value[4096];
    char **slot = string_slot(db, line);

    if (line->value_len >= sizeof(value)) {
        snprintf(err, err_len, "line %d: value too long", line->number);
        return CV_EINVALID_TLS;
    }
    memcpy(value, line->value, line->value_len);
    value[line->value_len] = '\0';
    if (slot) {
        if (*slot) {
            snprintf(err, err_len, "line %d: %.*s is set twice", line->number, (int)line->key_len,
                     line->key);
            return CV_EINVALID_TLS;
        }
        *slot = strdup(value);
        return *slot ? 0 : -ENOMEM;
    }
    if (kv_key_is(line, "port")) {
        char *end;
        long port = strtol(value, &end, 10);

        if (*end || port < 1 || port > 65535) {
            snprintf(err, err_len, "line %d: port '%s' is not a port number", line->number, value);
            return CV_EINVALID_TLS;
        }
        db->port = (int)port;
        return 0;
    }
    if (kv_key_is(line, "replica_local_port")) {
        char *end;
        long port = strtol(value, &end, 10);

        if (*end || port < 1 || port > 65535) {
            snprintf(err, err_len, "line %d: replica_local_port '%s' is not a port number",
                     line->number, value);
            return CV_EINVALID_TLS;
        }
        db->replica_local_port = (int)port;
        return 0;
    }
    if (kv_key_is(line, "shard_tls") || kv_key_is(line, "replica_verify_hostname") ||
        kv_key_is(line, "multiplex")) {
        bool on;

        if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0) {
            snprintf(err, err_len, "line %d: %.*s '%s' is not yes or no", line->number,
                     (int)line->key_len, line->key, value);
            return CV_EINVALID_TLS;
        }
        on = strcmp(value, "yes") == 0;
        if (kv_key_is(line, "shard_tls"))
            db->shard_tls = on;
        else if (kv_key_is(line, "multiplex"))
            db->multiplex_off = !on;
        else
            db->replica_verify_hostname = on;
        return 0;
    }
    if (kv_key_is(line, "allow_commands")) {
        char why[768];

        if (admin_commands_parse(value, &db->commands_allowed, why, sizeof(why)) < 0) {
            snprintf(err, err_len, "line %d: allow_commands: %s", line->number, why);
            return CV_EINVALID_TLS;
        }
        return 0;
    }
    if (kv_key_is(line, "tls_mode")) {
        if (db_tls_mode_parse(value, &db->tls_mode) < 0) {
            snprintf(err, err_len, "line %d: tls_mode '%s' is not enabled, disabled or replica_ssl",
                     line->number, value);
            return CV_EINVALID_TLS;
        }
        return 0;
    }
    if (kv_key_is(line, "client_verify")) {
        for (size_t v = 0; v < sizeof(verify_names) / sizeof(verify_names[0]); v++) {
            if (strcmp(value, verify_names[v]) == 0) {
                db->client_verify = (enum tls_verify)v;
                return 0;
            }
        }
        snprintf(err, err_len, "line %d: client_verify '%s' is not none, optional or require",
                 line->number, value);
        return CV_EINVALID_TLS;
    }
    snprintf(err, err_len, "line %d: unknown setting '%.*s'", line->number,
             (int)(line->key_len > 64 ? 64 : line->key_len), line->key);
    return CV_EINVALID_TLS;
}

/* What a database needs once its lines are read. */
static int check_db(const struct db_list *list, const struct db_config *db, int line, char *err,
                    size_t err_len)
{
    char host[256];
    int port;

    if (db->port == 0 || !db->shard) {
        snprintf(err, err_len, "line %d: database '%s' needs port and shard", line, db->name);
        return CV_EINVALID_TLS;
    }
    if (db_split_address(db->shard, host, sizeof(host), &port) < 0) {
        snprintf(err, err_len, "line %d: database '%s': shard '%s' is not host:port", line,
                 db->name, db->shard);
        return CV_EINVALID_TLS;
    }
    if (db->shard_tls && (!db->shard_cert_file || !db->shard_key_file || !db->shard_ca_file)) {
        snprintf(err, err_len,
                 "line %d: database '%s': shard_tls needs shard_cert_file, shard_key_file and "
                 "shard_ca_file",
                 line, db->name);
        return CV_EINVALID_TLS;
    }
    if (db->client_verify != TLS_VERIFY_NONE && !db->client_ca_file) {
        snprintf(err, err_len, "line %d: database '%s': client_verify needs client_ca_file", line,
                 db->name);
        return CV_EINVALID_TLS;
    }
    if (db->replica_source &&
        (db_split_address(db->replica_source, host, sizeof(host), &port) < 0 ||
         !db->replica_ca_file)) {
        snprintf(err, err_len,
                 "line %d: database '%s': replica_source '%s' needs the form host:port and "
                 "replica_ca_file",
                 line, db->name, db->replica_source);
        return CV_EINVALID_TLS;
    }
    if (!db->replica_source && (db->replica_ca_file || db->replica_server_name ||
                                db->replica_verify_hostname || db->replica_local_port)) {
        snprintf(err, err_len, "line %d: database '%s': replica_ settings need replica_source",
                 line, db->name);
        return CV_EINVALID_TLS;
    }
    for (size_t i = 0; i + 1 < list->n; i++) {
        const struct db_config *other = &list->dbs[i];

        if (other->port == db->port &&
            strcmp(other->listen ? other->listen : "", db->listen ? db->listen : "") == 0) {
            snprintf(err, err_len, "line %d: database '%s' uses port %d, as '%s' does", line,
                     db->name, db->port, other->name);
            return CV_EINVALID_TLS;
        }
    }
    return 0;
}

int db_list_parse(const char *text, struct db_list *list, char *err, size_t err_len)
{
    struct db_config *current = NULL;
    const char *cursor = text;
    struct kv_line line;
    int number = 0, opened = 0, r;

    memset(list, 0, sizeof(*list));
    while ((r = kv_next(&cursor, &number, &line, err, err_len)) > 0) {
        if (!line.key) {
            struct db_config *grown;

            if (current && (r = check_db(list, current, opened, err, err_len)) < 0)
                break;
            if (!valid_name(line.value, line.value_len)) {
                snprintf(err, err_len,
                         "line %d: '%.*s' is not a database name (a-z, 0-9, _ and -, at most "
                         "%d)",
                         line.number, (int)(line.value_len > 64 ? 64 : line.value_len), line.value,
                         DB_NAME_MAX);
                r = CV_EINVALID_TLS;
                break;
            }
            grown = realloc(list->dbs, (list->n + 1) * sizeof(*grown));
            if (!grown) {
                r = -ENOMEM;
                break;
            }
            list->dbs = grown;
            current = &list->dbs[list->n++];
            memset(current, 0, sizeof(*current));
            current->name = strndup(line.value, line.value_len);
            opened = line.number;
            if (!current->name) {
                r = -ENOMEM;
                break;
            }
            if (db_list_find(list, current->name) != current) {
                snprintf(err, err_len, "line %d: database '%s' is listed twice", line.number,
                         current->name);
                r = CV_EINVALID_TLS;
                break;
            }
            continue;
        }
        if (!current) {
            snprintf(err, err_len, "line %d: a setting before the first [database] heading",
                     line.number);
            r = CV_EINVALID_TLS;
            break;
        }
        r = parse_setting(current, &line, err, err_len);
        if (r < 0)
            break;
    }
    if (r == 0 && current)
        r = check_db(list, current, opened, err, err_len);
    if (r == -ENOMEM)
        snprintf(err, err_len, "out of memory");
    if (r < 0)
        db_list_clear(list);
    return r;
}

int db_list_read(const char *path, struct db_list *list, char *err, size_t err_len)
{
    char message[1024], *text = NULL;
    int r = kv_read_file(path, DB_CONFIG_MAX_BYTES, &text, err, err_len);

    if (r < 0)
        return r;
    r = db_list_parse(text, list, message, sizeof(message));
    free(text);
    if (r < 0)
        snprintf(err, err_len, "%s: %s", path, message);
    return r;
}
