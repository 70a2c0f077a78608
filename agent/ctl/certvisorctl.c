/* certvisorctl: the operator's client for certvisord's control socket. */
#include "config.h"
#include "control_client.h"
#include "control_proto.h"
#include "ctl_replica.h"
#include "ctl_users.h"
#include "cv_error.h"

#include <errno.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef CERTVISOR_VERSION
#define CERTVISOR_VERSION "0.0.0"
#endif

#define DEFAULT_SOCKET "/run/certvisor/control.sock"

enum { EXIT_USAGE = 2, EXIT_NO_AGENT = 4 };

struct ctl_options {
    const char *socket_path;
    const char *config_path;
    const char *prefix;
    bool json;
};

static void print_help(FILE *out, const char *only)
{
    if (!only)
        fprintf(out, "Usage: certvisorctl [-s SOCKET | -c FILE [-p DIR]] [--json] <command> "
                     "[args...]\n"
                     "\n"
                     "Commands:\n");
    for (int i = 0; i < CONTROL_CMD_COUNT; i++) {
        const struct control_command_info *c = &control_command_table[i];

        /* "help cluster" lists every command that starts with those words. */
        if (only && (strncmp(c->word, only, strlen(only)) != 0 ||
                     (c->word[strlen(only)] != '\0' && c->word[strlen(only)] != ' ')))
            continue;
        fprintf(out, "  %-45s %s%s\n", c->usage,
                c->access == CONTROL_ACCESS_ADMIN ? "[admin] " : "", c->summary);
    }
    if (!only)
        fprintf(out, "  %-45s %s\n", "help [<command>]", "Show this help, or one command's.");
    if (!only)
        fprintf(out,
                "\n"
                "Options:\n"
                "  -s, --socket PATH   the agent's control socket (or $CERTVISOR_SOCKET)\n"
                "  -c, --config FILE   read the socket path from the agent's configuration\n"
                "                      (default %s)\n"
                "  -p, --prefix DIR    the --prefix the agent was started with\n"
                "      --json          print the agent's answers as JSON lines\n"
                "  -h, --help          show this help\n"
                "  -V, --version       show certvisorctl's version\n"
                "\n"
                "Exit status: 0 success; 1 an operation failed; 2 usage; 3 a listed service is\n"
                "not running (status); 4 unknown service, no agent, or permission denied.\n",
                CERTVISOR_DEFAULT_CONFIG);
}

/* "help [<words>...]": the commands that start with the words, or an error for none. */
static int help_command(int argc, char **argv)
{
    char words[256] = "";
    size_t used = 0;

    for (int i = 0; i < argc && used < sizeof(words); i++)
        used += (size_t)snprintf(words + used, sizeof(words) - used, "%s%s", i ? " " : "", argv[i]);
    if (argc == 0) {
        print_help(stdout, NULL);
        return 0;
    }
    for (int i = 0; i < CONTROL_CMD_COUNT; i++) {
        const char *w = control_command_table[i].word;

        if (strncmp(w, words, strlen(words)) == 0 &&
            (w[strlen(words)] == '\0' || w[strlen(words)] == ' ')) {
            print_help(stdout, words);
            return 0;
        }
    }
    fprintf(stderr, "certvisorctl: unknown command '%s'\n", words);
    return EXIT_USAGE;
}

/*
 * Where the socket is, the first that applies: --socket; --config (with
 * --prefix, as the agent was started); $CERTVISOR_SOCKET; the default
 * configuration file when it exists; the packaged default path.
 */
static char *resolve_socket(const struct ctl_options *opts)
{
    const char *env = getenv("CERTVISOR_SOCKET");
    const char *config = opts->config_path ? opts->config_path : CERTVISOR_DEFAULT_CONFIG;
    char *path = NULL;
    char *prefix = NULL;
    int r;

    char *error = NULL;

    if (opts->socket_path)
        return strdup(opts->socket_path);
    /* --prefix is about a configuration file: the default one when -c is not given. */
    if (!opts->config_path && !opts->prefix && env && *env)
        return strdup(env);
    if (!opts->config_path && !opts->prefix && access(config, F_OK) != 0)
        return strdup(DEFAULT_SOCKET);
    if (opts->prefix && !(prefix = realpath(opts->prefix, NULL))) {
        fprintf(stderr, "certvisorctl: --prefix %s: %s\n", opts->prefix, strerror(errno));
        return NULL;
    }
    r = config_control_socket(config, prefix, &path, &error);
    free(prefix);
    if (r < 0) {
        fprintf(stderr, "certvisorctl: cannot find the control socket: %s\n",
                error ? error : cv_strerror(r));
        free(error);
        return NULL;
    }
    return path;
}

static const char *str(json_t *object, const char *key)
{
    const char *value = json_string_value(json_object_get(object, key));

    return value ? value : "";
}

static void print_error_item(json_t *item)
{
    printf("%s: ERROR (%s)\n", str(item, "name"), str(item, "error"));
}

static void print_status(json_t *items)
{
    size_t i;
    json_t *item;

    json_array_foreach(items, i, item)
    {
        if (json_object_get(item, "error"))
            print_error_item(item);
        else
            printf("%-33s%-10s%s\n", str(item, "name"), str(item, "state"),
                   str(item, "description"));
    }
}

static void print_operation(const char *command, json_t *items)
{
    size_t i;
    json_t *item;

    json_array_foreach(items, i, item)
    {
        if (json_is_true(json_object_get(item, "stopped")))
            printf("%s: stopped\n", str(item, "name"));
        if (json_object_get(item, "error"))
            print_error_item(item);
        else if (json_is_true(json_object_get(item, "restarted")))
            printf("%s: restarted (it has no reload signal)\n", str(item, "name"));
        else
            printf("%s: %s\n", str(item, "name"), str(item, "result"));
    }
    (void)command;
}

static void print_plan(json_t *reply);

static void print_reload_summary(json_t *reply)
{
    static const char *const keys[] = {"added", "changed", "updated", "removed"};
    static const char *const words[] = {"added", "changed (restarting)",
                                        "changed (stays stopped until started)", "removed"};
    bool dry_run = json_is_true(json_object_get(reply, "dry_run"));
    bool any = false;
    size_t w;
    json_t *warning;

    json_array_foreach(json_object_get(reply, "warnings"), w, warning)
    {
        fprintf(stderr, "certvisorctl: warning: %s\n", json_string_value(warning));
    }
    for (size_t k = 0; k < 4; k++) {
        size_t i;
        json_t *name;

        json_array_foreach(json_object_get(reply, keys[k]), i, name)
        {
            printf("%s%s: %s\n", dry_run ? "Dry run: " : "", json_string_value(name), words[k]);
            any = true;
        }
    }
    if (dry_run) {
        print_plan(reply);
        return;
    }
    /* Services whose settings did not change but whose rendered TLS files did. */
    json_array_foreach(json_object_get(reply, "services"), w, warning)
    {
        printf("%s: TLS configuration changed (reloaded)\n", json_string_value(warning));
        any = true;
    }
    if (!any)
        printf("No changes\n");
}

static void print_pids(json_t *reply)
{
    size_t i;
    json_t *item;

    if (json_object_get(reply, "pid")) {
        printf("%lld\n", (long long)json_integer_value(json_object_get(reply, "pid")));
        return;
    }
    json_array_foreach(json_object_get(reply, "items"), i, item)
    {
        if (json_object_get(item, "error"))
            print_error_item(item);
        else
            printf("%lld\n", (long long)json_integer_value(json_object_get(item, "pid")));
    }
}

static void print_avail(json_t *items)
{
    size_t i;
    json_t *item;

    json_array_foreach(items, i, item)
    {
        printf("%-33s%-10s%-8s%s:%lld\n", str(item, "name"),
               json_is_true(json_object_get(item, "removing")) ? "removing" : "in use",
               json_is_true(json_object_get(item, "autostart")) ? "auto" : "manual",
               str(item, "file"), (long long)json_integer_value(json_object_get(item, "line")));
    }
}

static void print_certificates(json_t *items, bool with_pem)
{
    size_t i, j;
    json_t *item, *value;

    json_array_foreach(items, i, item)
    {
        char sans[2048] = "", users[512] = "";
        size_t used = 0;

        json_array_foreach(json_object_get(item, "sans"), j, value)
        {
            used += (size_t)snprintf(sans + used, sizeof(sans) - used, "%s%s", j ? ", " : "",
                                     json_string_value(value));
            if (used >= sizeof(sans))
                break;
        }
        used = 0;
        json_array_foreach(json_object_get(item, "used_by"), j, value)
        {
            used += (size_t)snprintf(users + used, sizeof(users) - used, "%s%s", j ? ", " : "",
                                     json_string_value(value));
            if (used >= sizeof(users))
                break;
        }
        printf("%s%s\n", i ? "\n" : "", str(item, "name"));
        if (json_object_get(item, "error")) {
            printf("  %s\n", str(item, "error"));
            continue;
        }
        printf("  subject:      %s\n  issuer:       %s\n", str(item, "subject"),
               str(item, "issuer"));
        if (*sans)
            printf("  names:        %s\n", sans);
        printf("  not after:    %s (%lld days left)\n", str(item, "not_after"),
               (long long)json_integer_value(json_object_get(item, "days_left")));
        printf("  key:          %s\n  origin:       %s\n  fingerprint:  SHA256 %s\n",
               str(item, "key"), str(item, "origin"), str(item, "fingerprint"));
        printf("  used by:      %s\n", *users ? users : "-");
        if (with_pem)
            printf("\n%s", str(item, "pem"));
    }
}

static void print_policy(json_t *items)
{
    size_t i;
    json_t *item;

    json_array_foreach(items, i, item)
    {
        printf("%-32s %-24s %s\n", str(item, "name"),
               json_is_string(json_object_get(item, "value")) ? str(item, "value") : "-",
               str(item, "source"));
    }
}

/* The certificate file named on the command line, for the message operators know. */
static const char *certificate_file_name;

static void print_plan(json_t *reply)
{
    size_t i, j;
    json_t *step, *file;

    if (json_array_size(json_object_get(reply, "plan")) == 0)
        printf("Dry run: no service's TLS files would change; nothing would reload\n");
    json_array_foreach(json_object_get(reply, "plan"), i, step)
    {
        printf("Dry run: %s %s (%s)\n", str(step, "action"), str(step, "service"),
               str(step, "state"));
        json_array_foreach(json_object_get(step, "files"), j, file)
        {
            if (json_is_string(file))
                printf("  rewrite %s\n", json_string_value(file));
            else
                printf("  rewrite %s\n%s", str(file, "path"), str(file, "diff"));
        }
    }
    printf("Nothing was changed\n");
}

/* The plan of a dry run, or the messages operators know from rladmin. */
static void print_change(const char *command, json_t *reply)
{
    size_t i;
    json_t *change;

    if (*str(reply, "warning"))
        fprintf(stderr, "certvisorctl: warning: %s\n", str(reply, "warning"));
    if (json_is_true(json_object_get(reply, "dry_run"))) {
        print_plan(reply);
        return;
    }
    if (strcmp(command, "cluster config") == 0) {
        printf("Cluster configured successfully\n");
        return;
    }
    if (json_array_size(json_object_get(reply, "changes")) == 0 &&
        strcmp(command, "cluster certificate rotate") == 0)
        printf("No generated certificate to rotate: every one was replaced by the operator\n");
    json_array_foreach(json_object_get(reply, "changes"), i, change)
    {
        const char *name = str(change, "certificate");

        if (strcmp(command, "cluster certificate set") == 0)
            printf("Set %s certificate to contents of file %s%s\n", name,
                   certificate_file_name ? certificate_file_name : "?",
                   json_object_get(change, "unchanged") ? " (unchanged: already in force)" : "");
        else if (strcmp(command, "cluster certificate set-many") == 0)
            printf("Set %s certificate (SHA256 %s)%s\n", name, str(change, "new"),
                   json_object_get(change, "unchanged") ? " (unchanged: already in force)" : "");
        else if (strcmp(command, "cluster certificate rotate") == 0)
            printf("Rotated %s certificate (SHA256 %s)\n", name, str(change, "new"));
        else
            printf("Deleted %s certificate\n", name);
    }
}

static void print_csr(json_t *reply)
{
    if (json_is_true(json_object_get(reply, "dry_run"))) {
        printf("Dry run: a new key for %s would be made in the store and a CSR printed\n"
               "Nothing was changed\n",
               str(reply, "name"));
        return;
    }
    fputs(str(reply, "csr"), stdout);
    fprintf(stderr,
            "certvisorctl: the new key stays in the store; once your CA has signed this request:\n"
            "  certvisorctl cluster certificate set %s certificate_file <signed.pem>\n",
            str(reply, "name"));
}

/* The reply itself, indented, for commands whose answer is data for programs ("metrics"). */
static void print_json(json_t *reply)
{
    char *text = json_dumps(reply, JSON_INDENT(2));

    printf("%s\n", text ? text : "{}");
    free(text);
}

/* Oldest first, as a log reads: "2026-11-22 16:10:05 UTC  who  message". */
static void print_audit(json_t *items)
{
    for (size_t i = json_array_size(items); i-- > 0;) {
        json_t *item = json_array_get(items, i);
        time_t when = (time_t)json_integer_value(json_object_get(item, "time"));
        char stamp[32] = "";
        struct tm tm;

        if (gmtime_r(&when, &tm))
            strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S UTC", &tm);
        printf("%s  %s %s\n", stamp, str(item, "who"), str(item, "message"));
    }
}

static void print_reply(const char *command, json_t *reply)
{
    json_t *items = json_object_get(reply, "items");

    if (json_object_get(reply, "error")) {
        fprintf(stderr, "certvisorctl: %s\n", str(reply, "error"));
        return;
    }
    if (strcmp(command, "status") == 0)
        print_status(items);
    else if (strcmp(command, "pid") == 0)
        print_pids(reply);
    else if (strcmp(command, "avail") == 0)
        print_avail(items);
    else if (strcmp(command, "version") == 0)
        printf("%s\n", str(reply, "version"));
    else if (strcmp(command, "metrics") == 0)
        print_json(reply);
    else if (strcmp(command, "reload") == 0 && !items)
        print_reload_summary(reply);
    else if (strcmp(command, "cluster certificate list") == 0)
        print_certificates(items, false);
    else if (strcmp(command, "cluster certificate show") == 0)
        print_certificates(items, true);
    else if (strcmp(command, "cluster certificate ca") == 0)
        fputs(str(reply, "pem"), stdout);
    else if (strcmp(command, "cluster config show") == 0)
        print_policy(items);
    else if (strcmp(command, "cluster certificate csr") == 0)
        print_csr(reply);
    else if (strncmp(command, "user ", 5) == 0)
        ctl_print_user_reply(command, reply);
    else if (strncmp(command, "replica ", 8) == 0 &&
             json_is_true(json_object_get(reply, "dry_run")))
        print_change(command, reply);
    else if (strncmp(command, "replica ", 8) == 0)
        ctl_print_replica_reply(command, reply);
    else if (strcmp(command, "audit") == 0)
        print_audit(items);
    else if (strcmp(command, "cluster certificate set") == 0 ||
             strcmp(command, "cluster certificate set-many") == 0 ||
             strcmp(command, "cluster certificate rotate") == 0 ||
             strcmp(command, "cluster certificate delete") == 0 ||
             strcmp(command, "cluster config") == 0)
        print_change(command, reply);
    else if (items)
        print_operation(command, items);
}

#define CTL_MAX_PEM_FILE (512 * 1024) /* the agent refuses more than 256 KiB with its reason */

/* Reads a file given on the command line into a JSON string (the agent validates it). */
json_t *read_pem_file(const char *path)
{
    FILE *f = fopen(path, "re");
    char *buf;
    size_t n;
    json_t *s;

    if (!f) {
        fprintf(stderr, "certvisorctl: cannot read %s: %s\n", path, strerror(errno));
        return NULL;
    }
    buf = malloc(CTL_MAX_PEM_FILE + 1);
    n = buf ? fread(buf, 1, CTL_MAX_PEM_FILE + 1, f) : 0;
    fclose(f);
    if (!buf || n > CTL_MAX_PEM_FILE) {
        fprintf(stderr,
                "certvisorctl: %s is larger than %d bytes; it is not a certificate or key\n", path,
                CTL_MAX_PEM_FILE);
        free(buf);
        return NULL;
    }
    s = json_stringn_nocheck(buf, n);
    OPENSSL_cleanse(buf, n); /* it may be a private key */
    free(buf);
    return s;
}

/* "<name> certificate_file <f> [key_file <f>]" (rladmin's grammar) into args and options. */
static int certificate_set_arguments(int argc, char **argv, json_t *args, json_t *options)
{
    if (argc < 3 || strcmp(argv[1], "certificate_file") != 0 ||
        (argc != 3 && (argc != 5 || strcmp(argv[3], "key_file") != 0))) {
        fprintf(stderr, "certvisorctl: usage: cluster certificate set <name> certificate_file "
                        "<file> [key_file <file>] [--dry-run]\n");
        return -1;
    }
    json_array_append_new(args, json_string(argv[0]));
    certificate_file_name = argv[2];
    json_object_set_new(options, "certificate", read_pem_file(argv[2]));
    if (!json_object_get(options, "certificate"))
        return -1;
    if (argc == 5) {
        json_object_set_new(options, "key", read_pem_file(argv[4]));
        if (!json_object_get(options, "key"))
            return -1;
    }
    return 0;
}

/* "<name> certificate_file <f> [key_file <f>]..." into options.certificates. */
static int certificate_set_many_arguments(int argc, char **argv, json_t *options)
{
    json_t *list = json_array();
    int i = 0;

    json_object_set_new(options, "certificates", list);
    while (i < argc) {
        json_t *item, *pem;

        if (i + 3 > argc || strcmp(argv[i + 1], "certificate_file") != 0)
            goto usage;
        item = json_pack("{s:s}", "name", argv[i]);
        json_array_append_new(list, item);
        if (!(pem = read_pem_file(argv[i + 2])))
            return -1;
        json_object_set_new(item, "certificate", pem);
        i += 3;
        if (i < argc && strcmp(argv[i], "key_file") == 0) {
            if (i + 1 >= argc || !(pem = read_pem_file(argv[i + 1])))
                goto usage;
            json_object_set_new(item, "key", pem);
            i += 2;
        }
    }
    if (json_array_size(list) > 0)
        return 0;
usage:
    fprintf(stderr, "certvisorctl: usage: cluster certificate set-many <name> certificate_file "
                    "<file> [key_file <file>] [<name> certificate_file <file>...] [--dry-run]\n");
    return -1;
}

/* "<name> [--subject <dn>] [--san <name>[,<name>...]]..." into args and options. */
static int csr_arguments(int argc, char **argv, json_t *args, json_t *options)
{
    json_t *sans = json_array();

    for (int i = 0; i < argc; i++) {
        if ((strcmp(argv[i], "--subject") == 0 || strcmp(argv[i], "--san") == 0) && i + 1 < argc) {
            if (strcmp(argv[i], "--subject") == 0) {
                json_object_set_new(options, "subject", json_string(argv[++i]));
                continue;
            }
            /* Repeated, or comma-separated as openssl's -addext writes them. */
            for (char *save = NULL, *item = strtok_r(argv[++i], ",", &save); item;
                 item = strtok_r(NULL, ",", &save))
                json_array_append_new(sans, json_string(item));
        } else if (argv[i][0] != '-' && json_array_size(args) == 0) {
            json_array_append_new(args, json_string(argv[i]));
        } else {
            fprintf(stderr, "certvisorctl: usage: cluster certificate csr <name> "
                            "[--subject <dn>] [--san <name>...]\n");
            json_decref(sans);
            return -1;
        }
    }
    json_object_set_new(options, "sans", sans);
    return 0;
}

/* The commands that go through the apply pipeline and can show their plan instead. */
static bool supports_dry_run(const char *command, int argc)
{
    if (strcmp(command, "reload") == 0)
        return argc == 0;
    if (strcmp(command, "replica trust add") == 0 || strcmp(command, "replica trust remove") == 0)
        return true;
    return strncmp(command, "cluster ", 8) == 0 && strcmp(command, "cluster config show") != 0 &&
           strcmp(command, "cluster certificate list") != 0 &&
           strcmp(command, "cluster certificate show") != 0 &&
           strcmp(command, "cluster certificate ca") != 0;
}

/* Builds the request; tail's -f and -n become options. Returns NULL on a usage error. */
static json_t *build_request(const char *command, int argc, char **argv)
{
    json_t *args = json_array(), *options = json_object();
    char *words[64];
    int n_words = 0;

    /* --dry-run may stand anywhere among the arguments of a changing command. */
    for (int i = 0; i < argc && n_words < 64; i++) {
        if (strcmp(argv[i], "--dry-run") == 0)
            json_object_set_new(options, "dry_run", json_true());
        else
            words[n_words++] = argv[i];
    }
    argc = n_words;
    argv = words;
    if (json_object_get(options, "dry_run") && !supports_dry_run(command, argc)) {
        fprintf(stderr,
                "certvisorctl: --dry-run is not supported by '%s'%s (it applies to the cluster "
                "commands that change something, and to reload without names)\n",
                command, strcmp(command, "reload") == 0 ? " with service names" : "");
        json_decref(args);
        json_decref(options);
        return NULL;
    }
    if (strcmp(command, "cluster certificate set") == 0) {
        if (certificate_set_arguments(argc, argv, args, options) < 0) {
            json_decref(args);
            json_decref(options);
            return NULL;
        }
        return json_pack("{s:s, s:o, s:o}", "command", command, "args", args, "options", options);
    }
    if (strcmp(command, "cluster certificate set-many") == 0) {
        if (certificate_set_many_arguments(argc, argv, options) < 0) {
            json_decref(args);
            json_decref(options);
            return NULL;
        }
        return json_pack("{s:s, s:o, s:o}", "command", command, "args", args, "options", options);
    }
    if (strcmp(command, "user add") == 0 || strcmp(command, "user passwd") == 0) {
        if (ctl_user_arguments(command, argc, argv, args, options) < 0) {
            json_decref(args);
            json_decref(options);
            return NULL;
        }
        return json_pack("{s:s, s:o, s:o}", "command", command, "args", args, "options", options);
    }
    if (strcmp(command, "replica trust add") == 0 || strcmp(command, "replica trust remove") == 0) {
        if (ctl_replica_arguments(command, argc, argv, args, options) < 0) {
            json_decref(args);
            json_decref(options);
            return NULL;
        }
        return json_pack("{s:s, s:o, s:o}", "command", command, "args", args, "options", options);
    }
    if (strcmp(command, "cluster certificate csr") == 0) {
        if (csr_arguments(argc, argv, args, options) < 0) {
            json_decref(args);
            json_decref(options);
            return NULL;
        }
        return json_pack("{s:s, s:o, s:o}", "command", command, "args", args, "options", options);
    }
    for (int i = 0; i < argc; i++) {
        if (strcmp(command, "tail") == 0 && strcmp(argv[i], "-f") == 0) {
            json_object_set_new(options, "follow", json_true());
        } else if ((strcmp(command, "tail") == 0 || strcmp(command, "audit") == 0) &&
                   strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
            json_object_set_new(options, "lines", json_integer(atoi(argv[++i])));
        } else if (strcmp(command, "tail") == 0 && argv[i][0] == '-' && argv[i][1] &&
                   strspn(argv[i] + 1, "0123456789") == strlen(argv[i] + 1)) {
            json_object_set_new(options, "lines", json_integer(atoi(argv[i] + 1)));
        } else {
            json_array_append_new(args, json_string(argv[i]));
        }
    }
    return json_pack("{s:s, s:o, s:o}", "command", command, "args", args, "options", options);
}

static int run(const struct ctl_options *opts, const char *command, int argc, char **argv)
{
    struct control_client *client;
    json_t *request = build_request(command, argc, argv);
    char *socket_path = request ? resolve_socket(opts) : NULL;
    int r, exit_status = 1;

    if (!request)
        return EXIT_USAGE;
    if (!socket_path) {
        json_decref(request);
        return EXIT_NO_AGENT;
    }
    r = control_client_open(socket_path, &client);
    if (r < 0) {
        fprintf(stderr, "certvisorctl: cannot connect to %s: %s\n", socket_path, cv_strerror(r));
        free(socket_path);
        json_decref(request);
        return EXIT_NO_AGENT;
    }
    r = control_client_send(client, request);
    json_decref(request);
    while (r == 0) {
        json_t *message;

        r = control_client_receive(client, &message);
        if (r < 0)
            break;
        if (opts->json) {
            char *text = json_dumps(message, JSON_COMPACT);

            printf("%s\n", text ? text : "");
            free(text);
        } else if (json_object_get(message, "line")) {
            printf("%s\n", str(message, "line"));
        } else {
            print_reply(command, message);
        }
        fflush(stdout);
        if (json_object_get(message, "exit")) {
            exit_status = (int)json_integer_value(json_object_get(message, "exit"));
            json_decref(message);
            break;
        }
        json_decref(message);
    }
    if (r < 0) {
        fprintf(stderr, "certvisorctl: %s: %s\n", socket_path, cv_strerror(r));
        exit_status = EXIT_NO_AGENT;
    }
    control_client_close(client);
    free(socket_path);
    return exit_status;
}

int main(int argc, char **argv)
{
    static const struct option long_options[] = {{"socket", required_argument, NULL, 's'},
                                                 {"config", required_argument, NULL, 'c'},
                                                 {"prefix", required_argument, NULL, 'p'},
                                                 {"json", no_argument, NULL, 'j'},
                                                 {"help", no_argument, NULL, 'h'},
                                                 {"version", no_argument, NULL, 'V'},
                                                 {NULL, 0, NULL, 0}};
    struct ctl_options opts = {0};
    const char *command;
    int c, index, consumed = 0;

    /* '+' stops at the first non-option, so "tail -f name" keeps its -f. */
    while ((c = getopt_long(argc, argv, "+s:c:p:hV", long_options, NULL)) != -1) {
        switch (c) {
        case 's':
            opts.socket_path = optarg;
            break;
        case 'c':
            opts.config_path = optarg;
            break;
        case 'p':
            opts.prefix = optarg;
            break;
        case 'j':
            opts.json = true;
            break;
        case 'h':
            print_help(stdout, NULL);
            return 0;
        case 'V':
            printf("certvisorctl %s\n", CERTVISOR_VERSION);
            return 0;
        default:
            print_help(stderr, NULL);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        print_help(stderr, NULL);
        return EXIT_USAGE;
    }
    if (strcmp(argv[optind], "help") == 0)
        return help_command(argc - optind - 1, argv + optind + 1);
    index = control_command_match(argc - optind, argv + optind, &consumed);
    if (index < 0) {
        fprintf(stderr, "certvisorctl: unknown command '%s' (see 'certvisorctl help%s%s')\n",
                argv[optind], strcmp(argv[optind], "cluster") == 0 ? " " : "",
                strcmp(argv[optind], "cluster") == 0 ? argv[optind] : "");
        return EXIT_USAGE;
    }
    command = control_command_table[index].word;
    return run(&opts, command, argc - optind - consumed, argv + optind + consumed);
}
