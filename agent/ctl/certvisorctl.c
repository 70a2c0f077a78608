/* certvisorctl: the operator's client for certvisord's control socket. */
#include "command_words.h"
#include "config.h"
#include "control_client.h"
#include "control_proto.h"
#include "ctl_join.h"
#include "ctl_ldap.h"
#include "ctl_ocsp.h"
#include "ctl_replica.h"
#include "ctl_users.h"
#include "cv_error.h"
#include "secure_alloc.h"
#include "x509_check.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef CERTVISOR_VERSION
#define CERTVISOR_VERSION "0.0.0"
#endif

#define DEFAULT_SOCKET "/run/certvisor/control.sock"

enum { EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_NO_AGENT = 4, EXIT_CONNECTION_LOST = 5 };

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

/* The first n words, space-separated, into buf. */
static void join_words(int n, char **argv, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (int i = 0; i < n && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? " " : "", argv[i]);
}

/* " (did you mean 'certificate'?)" when a word that may follow argv[0..n) is close to typo. */
static void print_suggestion(int n, char **argv, const char *typo)
{
    size_t len;
    const char *close = command_words_suggest(n, argv, typo, &len);

    if (close)
        fprintf(stderr, " (did you mean '%.*s'?)", (int)len, close);
}

/*
 * Why the words name no command: an unknown first word, a group without its subcommand
 * ("cluster"), or an unknown subcommand, each with what may stand there. Returns EXIT_USAGE.
 */
static int explain_unknown_words(int argc, char **argv)
{
    int known = command_words_known(argc, argv);
    char group[256], next[512];

    join_words(known, argv, group, sizeof(group));
    command_words_next(known, argv, next, sizeof(next));
    if (known == 0) {
        fprintf(stderr, "certvisorctl: unknown command '%s'", argv[0]);
        print_suggestion(0, argv, argv[0]);
        fprintf(stderr, "; see 'certvisorctl help'\n");
    } else if (known == argc || argv[known][0] == '-') {
        fprintf(stderr, "certvisorctl: '%s' needs a subcommand: %s\n", group, next);
        print_help(stderr, group);
    } else {
        fprintf(stderr, "certvisorctl: unknown subcommand '%s' of '%s'", argv[known], group);
        print_suggestion(known, argv, argv[known]);
        fprintf(stderr, "; its subcommands: %s (see 'certvisorctl help %s')\n", next, group);
    }
    return EXIT_USAGE;
}

/* The usage of the command, or of the group of commands, that the first n words name. */
static int help_for_words(int n, char **argv)
{
    int consumed = 0, command = control_command_match(n, argv, &consumed);
    char words[256];

    if (command < 0)
        consumed = command_words_known(n, argv);
    if (consumed == 0) {
        print_help(stdout, NULL);
        return 0;
    }
    join_words(consumed, argv, words, sizeof(words));
    print_help(stdout, words);
    return 0;
}

/* "help [<words>...]": the commands that start with the words, or why there are none. */
static int help_command(int argc, char **argv)
{
    int known = command_words_known(argc, argv);
    char next[8];

    if (argc == 0) {
        print_help(stdout, NULL);
        return 0;
    }
    /* Words after a whole command ("help status web") ask about that command. */
    if (known == 0 || (known < argc && command_words_next(known, argv, next, sizeof(next)) > 0))
        return explain_unknown_words(argc, argv);
    return help_for_words(known, argv);
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
        printf("%s: TLS configuration changed (%s)\n", json_string_value(warning),
               ctl_name_in(json_object_get(reply, "restarted"), json_string_value(warning))
                   ? "restarted: it has no reload"
                   : "reloaded");
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
/* A change a cluster applied: on how many nodes, at which revision of its store. */
static void print_cluster_nodes(json_t *reply)
{
    json_t *nodes = json_object_get(reply, "nodes");

    if (json_array_size(nodes))
        printf("Applied on every node (%zu) at the cluster's revision %lld\n",
               json_array_size(nodes),
               (long long)json_integer_value(json_object_get(reply, "revision")));
}

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
        print_cluster_nodes(reply);
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
    print_cluster_nodes(reply);
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

/* "1h 5m", "12m 30s": a lifetime as an operator reads it. */
static void format_lifetime(long long seconds, char *buf, size_t len)
{
    if (seconds >= 86400)
        snprintf(buf, len, "%lldd %lldh", seconds / 86400, seconds % 86400 / 3600);
    else if (seconds >= 3600)
        snprintf(buf, len, "%lldh %lldm", seconds / 3600, seconds % 3600 / 60);
    else
        snprintf(buf, len, "%lldm %llds", seconds / 60, seconds % 60);
}

static void format_utc(long long at, char *buf, size_t len)
{
    time_t t = (time_t)at;
    struct tm tm;

    if (!gmtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(buf, len, "?");
}

static void print_token_created(json_t *reply)
{
    char left[32], when[40];

    format_lifetime(json_integer_value(json_object_get(reply, "ttl")), left, sizeof(left));
    format_utc(json_integer_value(json_object_get(reply, "expires")), when, sizeof(when));
    printf("Join token '%s' made; it expires in %s (%s).\n"
           "On the new node, run (the token lets a node join until then: keep it secret):\n\n"
           "  %s\n",
           str(reply, "id"), left, when, str(reply, "join_command"));
}

static void print_tokens(json_t *reply)
{
    json_t *items = json_object_get(reply, "items");
    size_t i;
    json_t *item;

    if (json_array_size(items) == 0) {
        printf("No join tokens ('certvisorctl cluster token create' makes one)\n");
        return;
    }
    printf("%-8s %-10s %-24s %-20s %s\n", "ID", "LEFT", "EXPIRES", "CREATED BY", "DESCRIPTION");
    json_array_foreach(items, i, item)
    {
        char left[32], when[40];

        format_lifetime(json_integer_value(json_object_get(item, "ttl_left")), left, sizeof(left));
        format_utc(json_integer_value(json_object_get(item, "expires")), when, sizeof(when));
        printf("%-8s %-10s %-24s %-20s %s\n", str(item, "id"), left, when, str(item, "created_by"),
               str(item, "description"));
    }
    if (json_integer_value(json_object_get(reply, "unreadable")) > 0)
        printf("(%lld more that cannot be read: written by a newer certvisor, or damaged)\n",
               (long long)json_integer_value(json_object_get(reply, "unreadable")));
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

static void print_reexec(json_t *reply)
{
    json_int_t kept = json_integer_value(json_object_get(reply, "kept"));

    printf("certvisord re-executed %s: version %s (was %s), pid %d as before; %lld service%s "
           "kept running with their pids, in %.1f ms\n",
           str(reply, "binary"), str(reply, "version"), str(reply, "from_version"),
           (int)json_integer_value(json_object_get(reply, "pid")), (long long)kept,
           kept == 1 ? "" : "s", json_number_value(json_object_get(reply, "took_ms")));
}

/* What cluster status says of publish-then-converge: the store's state, this node's applied
 * revision, and one line per node with what it reported. */
static void print_cluster_sync(json_t *reply)
{
    json_t *nodes = json_object_get(reply, "nodes"), *node;
    const char *name;

    if (!json_object_get(reply, "state"))
        return;
    printf("state:    %s%s%s\n", str(reply, "state"), *str(reply, "state_error") ? ": " : "",
           str(reply, "state_error"));
    printf("applied:  revision %lld%s%s\n",
           (long long)json_integer_value(json_object_get(reply, "applied_revision")),
           *str(reply, "apply_error") ? ", FAILED: " : "", str(reply, "apply_error"));
    json_object_foreach(nodes, name, node)
    {
        printf("node %s: %s at revision %lld%s%s\n", name, str(node, "result"),
               (long long)json_integer_value(json_object_get(node, "revision")),
               *str(node, "reason") ? ": " : "", str(node, "reason"));
    }
}

/* cluster status: one "field: value" line each, as an operator reads it. */
/* A line of names ("" for an etcd member not started yet), when the array was read. */
static void print_names(const char *label, json_t *names)
{
    if (!json_is_array(names))
        return;
    printf("%s", label);
    for (size_t i = 0; i < json_array_size(names); i++)
        printf("%s%s", i ? ", " : "",
               *json_string_value(json_array_get(names, i))
                   ? json_string_value(json_array_get(names, i))
                   : "(not started)");
    printf("%s\n", json_array_size(names) ? "" : "(none)");
}

static void print_cluster_status(json_t *reply)
{
    json_t *alive = json_object_get(reply, "alive");
    const char *error = str(reply, "last_error");

    printf("cluster:  %s\nnode:     %s\nstore:    %s\n", str(reply, "cluster"), str(reply, "node"),
           str(reply, "store"));
    if (strcmp(str(reply, "store"), "etcd") != 0)
        return;
    if (!json_is_true(json_object_get(reply, "reachable")))
        printf("etcd:     unreachable\n");
    else
        printf("etcd:     %s through %s, version %s, revision %lld\n",
               json_is_true(json_object_get(reply, "has_leader")) ? "has a leader"
                                                                  : "NO LEADER (no quorum)",
               str(reply, "endpoint"), str(reply, "etcd_version"),
               (long long)json_integer_value(json_object_get(reply, "revision")));
    if (json_object_get(reply, "seconds_since_sync"))
        printf("synced:   %.1f s ago\n",
               json_real_value(json_object_get(reply, "seconds_since_sync")));
    else
        printf("synced:   never\n");
    if (*error)
        printf("error:    %s\n", error);
    if (*str(reply, "reads_stale"))
        printf("stale:    %s (reads answer from this node's copy)\n", str(reply, "reads_stale"));
    printf("alive:    ");
    if (!json_is_array(alive)) {
        printf("(not read yet)\n");
    } else {
        for (size_t i = 0; i < json_array_size(alive); i++)
            printf("%s%s", i ? ", " : "", json_string_value(json_array_get(alive, i)));
        printf("%s\n", json_array_size(alive) ? "" : "(none)");
    }
    print_names("voters:   ", json_object_get(reply, "voters"));
    print_names("learners: ", json_object_get(reply, "learners"));
    print_cluster_sync(reply);
}

static void print_reply(const char *command, json_t *reply)
{
    json_t *items = json_object_get(reply, "items");

    if (strcmp(command, "cluster ldap show") == 0 || strcmp(command, "cluster ldap test") == 0) {
        ctl_print_ldap_reply(command, reply);
        return;
    }
    if (strcmp(command, "cluster ocsp config") == 0 ||
        strcmp(command, "cluster ocsp status") == 0 || strcmp(command, "cluster ocsp test") == 0) {
        ctl_print_ocsp_reply(command, reply);
        return;
    }
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
    else if (strcmp(command, "daemon-reexec") == 0)
        print_reexec(reply);
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
    else if (strcmp(command, "cluster status") == 0)
        print_cluster_status(reply);
    else if (strcmp(command, "cluster init") == 0)
        printf("%s\n", json_is_true(json_object_get(reply, "already"))
                           ? str(reply, "message")
                           : "Cluster initialised: this node's certificates, CA and policy are in "
                             "the cluster's store; copy cluster.key from the state directory to "
                             "every other node (mode 0600)");
    else if (strcmp(command, "cluster certificate csr") == 0)
        print_csr(reply);
    else if (strcmp(command, "cluster token create") == 0)
        print_token_created(reply);
    else if (strcmp(command, "cluster token list") == 0)
        print_tokens(reply);
    else if (strcmp(command, "cluster token delete") == 0)
        printf("Join token '%s' deleted\n", str(reply, "id"));
    else if (strcmp(command, "cluster leave") == 0)
        printf("%s\n", str(reply, "message"));
    else if (strcmp(command, "cluster remove") == 0)
        printf("Node '%s' removed from the cluster%s%s\n", str(reply, "node"),
               *str(reply, "notes") ? ": " : "", str(reply, "notes"));
    else if (strcmp(command, "cluster join") == 0)
        printf("Joined cluster '%s' through %s as node '%s': the cluster's certificates and "
               "policy are applied here (revision %lld)\n",
               str(reply, "cluster"), str(reply, "peer"), str(reply, "node"),
               (long long)json_integer_value(json_object_get(reply, "revision")));
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
             strcmp(command, "cluster config") == 0 ||
             strcmp(command, "cluster ocsp config proxy") == 0 ||
             strcmp(command, "cluster ldap config") == 0 ||
             strcmp(command, "cluster ocsp config set") == 0)
        print_change(command, reply);
    else if (items)
        print_operation(command, items);
}

#define CTL_MAX_PEM_FILE (512 * 1024) /* the agent refuses more than 256 KiB with its reason */

/* "certvisorctl: usage: <usage>" after the problem, for a usage error. Returns EXIT_USAGE. */
__attribute__((format(printf, 2, 3))) static int usage_error(const char *usage, const char *fmt,
                                                             ...)
{
    va_list ap;

    fputs("certvisorctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\ncertvisorctl: usage: %s\n", usage);
    return EXIT_USAGE;
}

/* The whole file, or NULL after printing why (a directory, unreadable, too large). */
static char *read_whole_file(const char *path, size_t *ret_len)
{
    FILE *f = fopen(path, "re");
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    bool ok = false;

    if (!f) {
        fprintf(stderr, "certvisorctl: cannot read %s: %s\n", path, strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode))
        fprintf(stderr, "certvisorctl: %s is a directory; name the PEM file in it\n", path);
    else if (!(buf = malloc(CTL_MAX_PEM_FILE + 1)))
        fprintf(stderr, "certvisorctl: cannot read %s: %s\n", path, strerror(ENOMEM));
    else if ((n = fread(buf, 1, CTL_MAX_PEM_FILE + 1, f)), ferror(f))
        fprintf(stderr, "certvisorctl: cannot read %s: %s\n", path, strerror(errno));
    else if (n > CTL_MAX_PEM_FILE)
        fprintf(stderr,
                "certvisorctl: %s is larger than %d bytes; it is not a certificate or key\n", path,
                CTL_MAX_PEM_FILE);
    else
        ok = true;
    fclose(f);
    if (!ok && buf) {
        OPENSSL_cleanse(buf, CTL_MAX_PEM_FILE + 1);
        free(buf);
        return NULL;
    }
    *ret_len = n;
    return buf;
}

bool ctl_name_in(json_t *array, const char *name)
{
    size_t i;
    json_t *item;

    json_array_foreach(array, i, item)
    {
        if (name && json_is_string(item) && strcmp(json_string_value(item), name) == 0)
            return true;
    }
    return false;
}

int read_pem_file(const char *path, const char *what, bool is_key, json_t **ret_pem)
{
    size_t n = 0;
    char *buf = read_whole_file(path, &n), err[1024];
    json_t *pem = NULL;
    int r = 0;

    if (!buf)
        return EXIT_USAGE;
    /* The agent's messages cannot name the file, and JSON carries UTF-8 text without NUL bytes
     * only: the bytes that cannot be PEM (DER, UTF-16, binary) are refused here, saying why. */
    if (x509_check_text(what, is_key, path, buf, n, err, sizeof(err)) < 0) {
        fprintf(stderr, "certvisorctl: %s\n", err);
        r = EXIT_FAILED;
    } else if (!(pem = json_stringn(buf, n))) {
        fprintf(stderr, "certvisorctl: cannot read %s: %s\n", path, strerror(ENOMEM));
        r = EXIT_FAILED;
    }
    OPENSSL_cleanse(buf, n); /* it may be a private key */
    free(buf);
    if (pem)
        *ret_pem = pem;
    return r;
}

static const char *const certificate_keywords[] = {"certificate_file", "key_file", NULL};

static bool is_certificate_keyword(const char *word)
{
    return strcmp(word, "certificate_file") == 0 || strcmp(word, "key_file") == 0;
}

/* "unknown keyword 'certfile' (did you mean 'certificate_file'?); expected ..." */
static int unknown_keyword(const char *usage, const char *word, const char *expected)
{
    const char *close = command_words_closest(word, certificate_keywords);

    return usage_error(usage, "unknown keyword '%s'%s%s%s; expected %s", word,
                       close ? " (did you mean '" : "", close ? close : "", close ? "'?)" : "",
                       expected);
}

/*
 * One "<name> certificate_file <f> [key_file <f>]" from argv[*pos] (rladmin's grammar): the
 * name into item "name", the files' text into "certificate" and "key"; *pos moves past it.
 * Returns 0 or an exit status after printing the problem.
 */
static int certificate_files(const char *usage, int argc, char **argv, int *pos, json_t *item)
{
    int i = *pos, r;
    char what[192];
    json_t *pem;

    if (is_certificate_keyword(argv[i]))
        return usage_error(usage,
                           "'%s' is a keyword, not a certificate name: the name comes "
                           "first, then certificate_file <file>",
                           argv[i]);
    if (argv[i][0] == '-')
        return usage_error(usage, "unknown option '%s'", argv[i]);
    if (i + 1 >= argc)
        return usage_error(usage, "certificate_file <file> is missing after '%s'", argv[i]);
    if (strcmp(argv[i + 1], "certificate_file") != 0)
        return unknown_keyword(usage, argv[i + 1], "certificate_file <file>");
    if (i + 2 >= argc)
        return usage_error(usage, "certificate_file needs a file");
    json_object_set_new(item, "name", json_string(argv[i]));
    snprintf(what, sizeof(what), "certificate '%s'", argv[i]);
    if ((r = read_pem_file(argv[i + 2], what, false, &pem)) != 0)
        return r;
    json_object_set_new(item, "certificate", pem);
    i += 3;
    if (i < argc && strcmp(argv[i], "key_file") == 0) {
        if (i + 1 >= argc)
            return usage_error(usage, "key_file needs a file");
        snprintf(what, sizeof(what), "the key of certificate '%s'",
                 json_string_value(json_object_get(item, "name")));
        if ((r = read_pem_file(argv[i + 1], what, true, &pem)) != 0)
            return r;
        json_object_set_new(item, "key", pem);
        i += 2;
    }
    *pos = i;
    return 0;
}

/* "<name> certificate_file <f> [key_file <f>]" into args and options. */
static int certificate_set_arguments(int argc, char **argv, json_t *args, json_t *options)
{
    const char *usage = control_command_table[CONTROL_CMD_cluster_certificate_set].usage;
    json_t *item;
    int i = 0, r;

    if (argc == 0)
        return usage_error(usage, "the certificate's name is missing");
    item = json_object();
    r = certificate_files(usage, argc, argv, &i, item);
    if (r == 0 && i < argc)
        r = json_object_get(item, "key") || strchr(argv[i], '.') || strchr(argv[i], '/')
                ? usage_error(usage, "unexpected argument '%s'", argv[i])
                : unknown_keyword(usage, argv[i], "key_file <file>, or nothing");
    if (r == 0) {
        certificate_file_name = argv[2];
        json_array_append(args, json_object_get(item, "name"));
        json_object_set(options, "certificate", json_object_get(item, "certificate"));
        if (json_object_get(item, "key"))
            json_object_set(options, "key", json_object_get(item, "key"));
    }
    json_decref(item);
    return r;
}

/* "<name> certificate_file <f> [key_file <f>]..." into options.certificates. */
static int certificate_set_many_arguments(int argc, char **argv, json_t *options)
{
    const char *usage = control_command_table[CONTROL_CMD_cluster_certificate_set_many].usage;
    json_t *list = json_array();
    int i = 0, r = 0;

    json_object_set_new(options, "certificates", list);
    if (argc == 0)
        return usage_error(usage, "no certificate is named");
    while (i < argc && r == 0) {
        json_t *item = json_object();

        json_array_append_new(list, item);
        /* A misspelt key_file ("keyfile k.pem") would otherwise read as the next name. */
        if (i > 0 && !is_certificate_keyword(argv[i]) &&
            command_words_closest(argv[i], certificate_keywords))
            return unknown_keyword(usage, argv[i], "key_file <file>, or the next name");
        r = certificate_files(usage, argc, argv, &i, item);
    }
    return r;
}

/* "<name> [--subject <dn>] [--san <name>[,<name>...]]..." into args and options. */
static int csr_arguments(int argc, char **argv, json_t *args, json_t *options)
{
    const char *usage = control_command_table[CONTROL_CMD_cluster_certificate_csr].usage;
    json_t *sans = json_array();

    json_object_set_new(options, "sans", sans);
    for (int i = 0; i < argc; i++) {
        bool subject = strcmp(argv[i], "--subject") == 0, san = strcmp(argv[i], "--san") == 0;

        if ((subject || san) && i + 1 >= argc)
            return usage_error(usage, "%s needs a value", argv[i]);
        if (subject) {
            json_object_set_new(options, "subject", json_string(argv[++i]));
        } else if (san) {
            /* Repeated, or comma-separated as openssl's -addext writes them. */
            for (char *save = NULL, *item = strtok_r(argv[++i], ",", &save); item;
                 item = strtok_r(NULL, ",", &save))
                json_array_append_new(sans, json_string(item));
        } else if (argv[i][0] == '-') {
            return usage_error(usage, "unknown option '%s' (expected --subject or --san)", argv[i]);
        } else if (json_array_size(args) > 0) {
            return usage_error(usage, "unexpected argument '%s'", argv[i]);
        } else {
            json_array_append_new(args, json_string(argv[i]));
        }
    }
    if (json_array_size(args) == 0)
        return usage_error(usage, "the certificate's name is missing");
    return 0;
}

/* "[--ttl <lifetime>] [--description <text>] [--peer <address:port>]" into options. */
static int token_create_arguments(int argc, char **argv, json_t *options)
{
    const char *usage = control_command_table[CONTROL_CMD_cluster_token_create].usage;
    static const char *const names[] = {"--ttl", "--description", "--peer"};

    for (int i = 0; i < argc; i++) {
        size_t k = 0;

        while (k < 3 && strcmp(argv[i], names[k]) != 0)
            k++;
        if (k == 3)
            return usage_error(usage, "unexpected argument '%s'", argv[i]);
        if (i + 1 >= argc)
            return usage_error(usage, "%s needs a value", argv[i]);
        json_object_set_new(options, names[k] + 2, json_string(argv[++i]));
    }
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
           strcmp(command, "cluster certificate ca") != 0 &&
           strncmp(command, "cluster token ", 14) != 0 && strcmp(command, "cluster join") != 0 &&
           strcmp(command, "cluster admit") != 0 && strcmp(command, "cluster leave") != 0 &&
           strcmp(command, "cluster remove") != 0 && strcmp(command, "cluster ocsp config") != 0 &&
           strcmp(command, "cluster ocsp status") != 0 &&
           strcmp(command, "cluster ocsp test") != 0 && strcmp(command, "cluster ldap show") != 0 &&
           strcmp(command, "cluster ldap test") != 0;
}

/* certvisorctl's own options, which go before the command; "=" for one that takes a value. */
static const char *const global_options[] = {
    "-s=", "--socket=", "-c=", "--config=", "-p=", "--prefix=", "--json", "-V", "--version", NULL};

/* Command options whose value is the next word, which is never taken for an option itself. */
static bool takes_value(const char *word)
{
    static const char *const options[] = {"-n",
                                          "--subject",
                                          "--san",
                                          "--role",
                                          "--password-file",
                                          "--certificate-subject",
                                          "--ttl",
                                          "--description",
                                          "--peer",
                                          "--token",
                                          "--ca-cert-hash",
                                          "--address",
                                          "--client-port",
                                          "--peer-port",
                                          "--user",
                                          NULL};

    for (const char *const *o = options; *o; o++)
        if (strcmp(word, *o) == 0)
            return true;
    return false;
}

/* The global option that word is ("--json", "--config=x"), or NULL. */
static const char *global_option(const char *word)
{
    for (const char *const *o = global_options; *o; o++) {
        size_t len = strcspn(*o, "=");

        if (strncmp(word, *o, len) == 0 &&
            (word[len] == '\0' || ((*o)[len] == '=' && word[len] == '=')))
            return *o;
    }
    return NULL;
}

/* A global option among the command's arguments: where it goes instead. Returns 0 or EXIT_USAGE. */
static int check_global_options_after(const char *command, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        const char *option = global_option(argv[i]);

        if (takes_value(argv[i])) {
            i++;
            continue;
        }
        if (!option)
            continue;
        fprintf(stderr,
                "certvisorctl: %s is certvisorctl's own option and goes before the command: "
                "certvisorctl %.*s%s %s ...\n",
                argv[i], (int)strcspn(argv[i], "="), argv[i], strchr(option, '=') ? " <value>" : "",
                command);
        return EXIT_USAGE;
    }
    return 0;
}

/* Whether the usage line names the option as a word of its own ("[-n <lines>]", "|--clear"). */
static bool usage_has_option(const char *usage, const char *option)
{
    size_t len = strlen(option);

    for (const char *p = strstr(usage, option); p; p = strstr(p + 1, option))
        if ((p == usage || strchr(" [|", p[-1])) && (p[len] == '\0' || strchr(" ]|", p[len])))
            return true;
    return false;
}

/* The arguments of a command without a parser of its own; tail's -f and -n become options. */
static int generic_arguments(const char *command, int argc, char **argv, json_t *args,
                             json_t *options)
{
    int index = control_command_lookup(command), max = command_words_max_args(index);
    const char *usage = control_command_table[index].usage;
    bool tail = strcmp(command, "tail") == 0;
    /* Policy values may begin with '-' (the cipher list "-kRSA:HIGH"): they are no options. */
    bool options_known = strcmp(command, "cluster config") != 0;

    for (int i = 0; i < argc; i++) {
        if (tail && strcmp(argv[i], "-f") == 0) {
            json_object_set_new(options, "follow", json_true());
        } else if ((tail || strcmp(command, "audit") == 0) && strcmp(argv[i], "-n") == 0 &&
                   i + 1 < argc) {
            json_object_set_new(options, "lines", json_integer(atoi(argv[++i])));
        } else if (tail && argv[i][0] == '-' && argv[i][1] &&
                   strspn(argv[i] + 1, "0123456789") == strlen(argv[i] + 1)) {
            json_object_set_new(options, "lines", json_integer(atoi(argv[i] + 1)));
        } else if (options_known && argv[i][0] == '-' && argv[i][1] &&
                   !usage_has_option(usage, argv[i])) {
            return usage_error(usage, "unknown option '%s' of '%s'", argv[i], command);
        } else if (max >= 0 && (int)json_array_size(args) >= max) {
            return usage_error(usage, "unexpected argument '%s'%s", argv[i],
                               max == 0 ? ": the command takes none" : "");
        } else {
            json_array_append_new(args, json_string(argv[i]));
        }
    }
    return 0;
}

/* Fills args and options from the words after the command. Returns 0 or an exit status. */
static int command_arguments(const char *command, int argc, char **argv, json_t *args,
                             json_t *options)
{
    int r;

    if (strcmp(command, "cluster certificate set") == 0)
        return certificate_set_arguments(argc, argv, args, options);
    if (strcmp(command, "cluster certificate set-many") == 0)
        return certificate_set_many_arguments(argc, argv, options);
    if (strcmp(command, "cluster certificate csr") == 0)
        return csr_arguments(argc, argv, args, options);
    if (strcmp(command, "cluster token create") == 0)
        return token_create_arguments(argc, argv, options);
    if (strcmp(command, "cluster join") == 0)
        return ctl_join_arguments(argc, argv, args, options) < 0 ? EXIT_USAGE : 0;
    if (strcmp(command, "cluster ldap test") == 0)
        return ctl_ldap_test_arguments(argc, argv, args, options) < 0 ? EXIT_USAGE : 0;
    if (strcmp(command, "user add") == 0 || strcmp(command, "user passwd") == 0)
        return ctl_user_arguments(command, argc, argv, args, options) < 0 ? EXIT_USAGE : 0;
    if (strcmp(command, "replica trust add") == 0 || strcmp(command, "replica trust remove") == 0) {
        r = ctl_replica_arguments(command, argc, argv, args, options);
        return r < 0 ? EXIT_USAGE : r;
    }
    return generic_arguments(command, argc, argv, args, options);
}

/* Builds the request into *ret_request. Returns 0, or an exit status after printing why not. */
static int build_request(const char *command, int argc, char **argv, json_t **ret_request)
{
    json_t *args = json_array(), *options = json_object();
    char *words[64];
    int n_words = 0, r;

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
        r = EXIT_USAGE;
    } else if ((r = check_global_options_after(command, argc, argv)) == 0) {
        r = command_arguments(command, argc, argv, args, options);
    }
    if (r != 0) {
        json_decref(args);
        json_decref(options);
        return r;
    }
    *ret_request =
        json_pack("{s:s, s:o, s:o}", "command", command, "args", args, "options", options);
    return 0;
}

/* A request that changes something when carried out: an admin command, not a dry run. */
static bool changes_something(const char *command, const json_t *request)
{
    int index = control_command_lookup(command);

    return index >= 0 && control_command_table[index].access == CONTROL_ACCESS_ADMIN &&
           !json_is_true(json_object_get(json_object_get(request, "options"), "dry_run"));
}

/*
 * The agent went away after the request was sent and before its answer: it
 * stopped or crashed while handling it. A change may have been applied (it
 * is in force once committed, and the agent audits it at its next start), so
 * the operator is told how to find out instead of "not running".
 */
static int connection_lost(const char *socket_path, bool changing)
{
    if (!changing) {
        fprintf(stderr,
                "certvisorctl: %s: the connection to certvisord was lost before it answered (it "
                "stopped or crashed); nothing was changed; try again once it runs (systemctl "
                "status certvisord)\n",
                socket_path);
        return EXIT_NO_AGENT;
    }
    fprintf(stderr,
            "certvisorctl: %s: the connection to certvisord was lost mid-request (it stopped or "
            "crashed before answering): the change may have been applied.\n"
            "Once certvisord runs again, check what is in force with 'certvisorctl audit' (every "
            "change that took effect is there, also one finished at start-up), 'certvisorctl "
            "cluster certificate list', 'certvisorctl cluster config show' and 'certvisorctl "
            "status', then repeat the command if it is still needed.\n",
            socket_path);
    return EXIT_CONNECTION_LOST;
}

static int run(const struct ctl_options *opts, const char *command, int argc, char **argv)
{
    struct control_client *client;
    json_t *request = NULL;
    char *socket_path;
    bool changing;
    int r = build_request(command, argc, argv, &request), exit_status = 1;

    if (r != 0)
        return r;
    socket_path = resolve_socket(opts);
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
    changing = changes_something(command, request);
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
            /* Before the answer, so that it is not missed under a long list. */
            if (json_is_string(json_object_get(message, "stale")))
                fprintf(stderr,
                        "certvisorctl: warning: this is the node's own copy, which may be behind "
                        "the cluster's: %s\n",
                        str(message, "stale"));
            print_reply(command, message);
        }
        fflush(stdout);
        if (!opts->json && json_is_string(json_object_get(message, "ended")))
            fprintf(stderr, "certvisorctl: %s: %s\n", command, str(message, "ended"));
        if (json_object_get(message, "exit")) {
            exit_status = (int)json_integer_value(json_object_get(message, "exit"));
            json_decref(message);
            break;
        }
        json_decref(message);
    }
    if (r == -ECONNRESET && strcmp(command, "daemon-reexec") == 0) {
        fprintf(stderr,
                "certvisorctl: %s: the new binary did not answer after the re-exec: it could not "
                "start (its reason is in the agent's log: journalctl -u certvisord). The services "
                "keep running; an agent started again adopts them.\n",
                socket_path);
        exit_status = EXIT_CONNECTION_LOST;
    } else if (r == -ECONNRESET) {
        exit_status = connection_lost(socket_path, changing);
    } else if (r < 0) {
        fprintf(stderr, "certvisorctl: %s: %s\n", socket_path, cv_strerror(r));
        exit_status = EXIT_NO_AGENT;
    }
    control_client_close(client);
    free(socket_path);
    return exit_status;
}

/*
 * An option getopt did not know, before the command: a command's own option (--dry-run, -n)
 * goes after the command; anything else is unknown. word is the option as typed, or NULL for
 * a short one (letter); argv holds the words after it. Returns EXIT_USAGE.
 */
static int misplaced_option(const char *word, int letter, int argc, char **argv)
{
    char short_option[3] = {'-', (char)letter, '\0'};
    const char *option = word ? word : short_option;
    size_t len = strcspn(option, "="), best = 0;
    char name[64];
    int example, consumed;

    snprintf(name, sizeof(name), "%.*s", (int)(len < sizeof(name) ? len : sizeof(name) - 1),
             option);
    /* "--dry-run cluster config ...": the same line with the option where it goes. */
    example = control_command_match(argc, argv, &consumed);
    if (example >= 0 && usage_has_option(control_command_table[example].usage, name) &&
        !takes_value(name)) {
        char line[1024];

        join_words(argc, argv, line, sizeof(line));
        fprintf(stderr, "certvisorctl: %s goes after the command: certvisorctl %s %s\n", name, line,
                name);
        return EXIT_USAGE;
    }
    example = -1;
    /* The shortest usage that takes the option, as an example of where it goes. */
    for (int i = 0; i < CONTROL_CMD_COUNT; i++) {
        const char *usage = control_command_table[i].usage;

        if (usage_has_option(usage, name) && !strstr(usage, " | ") &&
            (example < 0 || strlen(usage) < best)) {
            example = i;
            best = strlen(usage);
        }
    }
    if (example >= 0)
        fprintf(stderr, "certvisorctl: %s goes after the command, e.g. certvisorctl %s\n", name,
                control_command_table[example].usage);
    else
        fprintf(stderr,
                "certvisorctl: unknown option '%s'; certvisorctl's own options (-s, -c, -p, "
                "--json, -h, -V) go before the command (see 'certvisorctl --help')\n",
                name);
    return EXIT_USAGE;
}

/*
 * Where "--help" or "-h" stands among the words after certvisorctl's options, the value of a
 * command option excepted; -1 when it is not there. The words before it name what to explain.
 */
static int help_option_index(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (takes_value(argv[i]))
            i++;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return i;
    }
    return -1;
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
    int c, index, help, consumed = 0;

    /* Requests carry key files and passwords: jansson wipes what it frees (lib/secure_alloc.h). */
    secure_alloc_install();
    /* '+' stops at the first non-option, so "tail -f name" keeps its -f; ':' and opterr = 0
     * leave the messages about options to misplaced_option(). */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:s:c:p:hV", long_options, NULL)) != -1) {
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
        case ':':
            fprintf(stderr, "certvisorctl: %s needs a value (see 'certvisorctl --help')\n",
                    argv[optind - 1]);
            return EXIT_USAGE;
        default:
            return misplaced_option(optopt ? NULL : argv[optind - 1], optopt, argc - optind,
                                    argv + optind);
        }
    }
    if (optind >= argc) {
        print_help(stderr, NULL);
        return EXIT_USAGE;
    }
    if (strcmp(argv[optind], "help") == 0)
        return help_command(argc - optind - 1, argv + optind + 1);
    help = help_option_index(argc - optind, argv + optind);
    if (help >= 0)
        return help_for_words(help, argv + optind);
    index = control_command_match(argc - optind, argv + optind, &consumed);
    if (index < 0)
        return explain_unknown_words(argc - optind, argv + optind);
    command = control_command_table[index].word;
    return run(&opts, command, argc - optind - consumed, argv + optind + consumed);
}
