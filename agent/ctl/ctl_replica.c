/* certvisorctl's side of the "replica ..." commands: certificate files in, links and lists out. */
#include "ctl_replica.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int ctl_replica_arguments(const char *command, int argc, char **argv, json_t *args, json_t *options)
{
    bool add = strcmp(command, "replica trust add") == 0;
    struct stat st;
    char what[192];
    json_t *pem;
    int r;

    if (argc != 2) {
        fprintf(stderr, "certvisorctl: usage: %s <list> %s [--dry-run]\n", command,
                add ? "<certificate file>" : "<certificate file|fingerprint>");
        return 2;
    }
    json_array_append_new(args, json_string(argv[0]));
    if (!add && stat(argv[1], &st) < 0) {
        json_object_set_new(options, "fingerprint", json_string(argv[1]));
        return 0;
    }
    snprintf(what, sizeof(what), "the certificate file for trust list '%s'", argv[0]);
    r = read_pem_file(argv[1], what, false, &pem);
    if (r == 0)
        json_object_set_new(options, "certificate", pem);
    return r;
}

static const char *str(json_t *object, const char *key)
{
    const char *value = json_string_value(json_object_get(object, key));

    return value ? value : "";
}

static long long num(json_t *object, const char *key)
{
    return json_integer_value(json_object_get(object, key));
}

/* "2026-11-22 16:10:05 UTC (0:01:05 ago)" */
static void format_since(time_t when, time_t now, char *buf, size_t len)
{
    long long ago = now > when ? (long long)(now - when) : 0;
    char stamp[32] = "?";
    struct tm tm;

    if (gmtime_r(&when, &tm))
        strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S UTC", &tm);
    snprintf(buf, len, "%s (%lld:%02lld:%02lld ago)", stamp, ago / 3600, ago / 60 % 60, ago % 60);
}

static void print_replica(json_t *item, time_t now)
{
    char since[96] = "";

    if (num(item, "since"))
        format_since((time_t)num(item, "since"), now, since, sizeof(since));
    printf("%s: replica of %s%s%s: %s%s%s\n", str(item, "database"), str(item, "source"),
           *str(item, "server_name") ? " as " : "", str(item, "server_name"), str(item, "state"),
           *since ? " since " : "", since);
    if (*str(item, "tls_version"))
        printf("  tls:            %s %s\n", str(item, "tls_version"), str(item, "cipher"));
    if (*str(item, "peer_fingerprint"))
        printf("  source cert:    SHA256 %s (%s)\n", str(item, "peer_fingerprint"),
               str(item, "peer_subject"));
    if (*str(item, "local_fingerprint"))
        printf("  syncer cert:    SHA256 %s\n", str(item, "local_fingerprint"));
    printf("  trusts:         %s%s\n", str(item, "server_cert"),
           json_is_true(json_object_get(item, "verify_hostname")) ? ", host name checked" : "");
    if (json_object_get(item, "bytes_in"))
        printf("  bytes:          %lld in, %lld out\n", num(item, "bytes_in"),
               num(item, "bytes_out"));
    if (json_object_get(item, "source_offset"))
        printf("  offset:         %lld (source), %lld (replica), lag %lld bytes\n",
               num(item, "source_offset"), num(item, "replica_offset"), num(item, "lag_bytes"));
    if (json_object_get(item, "full_syncs"))
        printf("  syncs:          %lld full, %lld partial, %lld connections\n",
               num(item, "full_syncs"), num(item, "partial_syncs"), num(item, "sessions"));
    if (*str(item, "last_error")) {
        char at[96] = "";

        if (num(item, "last_error_at"))
            format_since((time_t)num(item, "last_error_at"), now, at, sizeof(at));
        /* Kept once the link is up again, as history: say so, lest it read as the state. */
        printf("  last error:     %s%s%s%s\n", str(item, "last_error"), *at ? " at " : "", at,
               strcmp(str(item, "state"), "up") == 0 &&
                       num(item, "last_error_at") <= num(item, "since")
                   ? " (before the link came up)"
                   : "");
    }
}

static void print_source(json_t *item, time_t now)
{
    printf("%s: source (tls_mode %s), trusts %s (%lld certificate%s)\n", str(item, "database"),
           str(item, "tls_mode"), str(item, "trust"), num(item, "trusted"),
           num(item, "trusted") == 1 ? "" : "s");
    if (json_object_get(item, "refused"))
        printf("  refused:        %lld client%s for their certificate\n", num(item, "refused"),
               num(item, "refused") == 1 ? "" : "s");
    if (*str(item, "last_error")) {
        char at[96] = "";

        if (num(item, "last_error_at"))
            format_since((time_t)num(item, "last_error_at"), now, at, sizeof(at));
        printf("  last refusal:   %s%s%s\n", str(item, "last_error"), *at ? " at " : "", at);
    }
}

static void print_lists(json_t *items)
{
    size_t i, j;
    json_t *item, *cert, *user;

    json_array_foreach(items, i, item)
    {
        printf("%s:%s\n", str(item, "name"),
               json_array_size(json_object_get(item, "certificates")) ? "" : " (empty)");
        json_array_foreach(json_object_get(item, "certificates"), j, cert)
        {
            printf("  SHA256 %s\n    %s%s, issuer %s, until %s\n", str(cert, "fingerprint"),
                   json_is_true(json_object_get(cert, "ca")) ? "CA " : "", str(cert, "subject"),
                   str(cert, "issuer"), str(cert, "not_after"));
        }
        json_array_foreach(json_object_get(item, "used_by"), j, user)
        {
            printf("  used by database %s for %s\n", str(user, "database"), str(user, "as"));
        }
    }
}

static void print_change(json_t *reply)
{
    size_t i, j;
    json_t *change, *fingerprint, *service;

    if (*str(reply, "warning"))
        fprintf(stderr, "certvisorctl: warning: %s\n", str(reply, "warning"));
    json_array_foreach(json_object_get(reply, "changes"), i, change)
    {
        if (json_object_get(change, "unchanged")) {
            printf("Trust list %s: unchanged (every certificate is trusted already)\n",
                   str(change, "trust"));
            continue;
        }
        json_array_foreach(json_object_get(change, "fingerprints"), j, fingerprint)
        {
            printf("%s SHA256 %s %s trust list %s\n",
                   strcmp(str(change, "action"), "add") == 0 ? "Added" : "Removed",
                   json_string_value(fingerprint),
                   strcmp(str(change, "action"), "add") == 0 ? "to" : "from", str(change, "trust"));
        }
        printf("Trust list %s: %lld certificate%s\n", str(change, "trust"), num(change, "count"),
               num(change, "count") == 1 ? "" : "s");
    }
    json_array_foreach(json_object_get(reply, "services"), i, service)
    {
        printf("%s %s\n",
               ctl_name_in(json_object_get(reply, "restarted"), json_string_value(service))
                   ? "Restarted"
                   : "Reloaded",
               json_string_value(service));
    }
}

void ctl_print_replica_reply(const char *command, json_t *reply)
{
    time_t now = (time_t)num(reply, "time");
    size_t i;
    json_t *item;

    if (strcmp(command, "replica trust list") == 0) {
        print_lists(json_object_get(reply, "items"));
        return;
    }
    if (strcmp(command, "replica status") != 0) {
        print_change(reply);
        return;
    }
    if (json_array_size(json_object_get(reply, "items")) == 0)
        printf("No database is a replica or a source of Replica Of\n");
    json_array_foreach(json_object_get(reply, "items"), i, item)
    {
        if (strcmp(str(item, "role"), "replica") == 0)
            print_replica(item, now ? now : time(NULL));
        else
            print_source(item, now ? now : time(NULL));
    }
}
