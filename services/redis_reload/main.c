/*
 * certvisor-redis-reload: applies the TLS include certvisord rendered to a running
 * redis-server with one atomic CONFIG SET, so a certificate or policy change
 * reloads the shard in place instead of restarting it (and losing its data and
 * its clients). It is a service's reload_command, run by the agent.
 */
#include "config_set.h"
#include "redis_include.h"
#include "service_runtime.h"

#include <errno.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROGRAM "certvisor-redis-reload"

static struct {
    const char *host;
    int port;
    const char *include;
    const char *user;
    const char *password_file;
    long timeout;
} opt = {.host = "127.0.0.1", .timeout = 10};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: " PROGRAM " --port PORT --include FILE [--host HOST] [--timeout SECONDS]\n"
            "  --port PORT          redis-server's plain (non-TLS) port\n"
            "  --host HOST          its address (default 127.0.0.1)\n"
            "  --include FILE       the TLS include certvisord renders for it (format redis)\n"
            "  --timeout SECONDS    how long the exchange may take (default 10)\n"
            "  --password-file FILE sign in first (AUTH) with the password on FILE's first line\n"
            "  --user NAME          ... as this ACL user (default: Redis's default user)\n"
            "Sends every tls-* setting of FILE, and Redis's default for each one FILE leaves\n"
            "out, in one CONFIG SET. Exit status: 0 applied; 1 redis-server refused them\n"
            "(it keeps the TLS settings it had) or could not be asked; 2 bad usage or FILE.\n");
}

static void parse(int argc, char **argv)
{
    static const struct option options[] = {
        {"host", required_argument, NULL, 'H'},    {"port", required_argument, NULL, 'p'},
        {"include", required_argument, NULL, 'i'}, {"timeout", required_argument, NULL, 't'},
        {"user", required_argument, NULL, 'u'},    {"password-file", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    int c;

    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'H':
            opt.host = optarg;
            break;
        case 'p':
            opt.port = service_option_port(PROGRAM, "--port", optarg);
            break;
        case 'i':
            opt.include = optarg;
            break;
        case 'u':
            opt.user = optarg;
            break;
        case 'P':
            opt.password_file = optarg;
            break;
        case 't':
            opt.timeout = service_option_number(PROGRAM, "--timeout", optarg, 1, 3600);
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind < argc || !opt.include || opt.port == 0 || (opt.user && !opt.password_file)) {
        usage(stderr);
        exit(2);
    }
}

/*
 * The password from the first line of path (not from the command line, which
 * every user on the node can read in ps). Returns 0, or -1 with a message on stderr.
 */
static int read_password(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "re");
    bool ok;

    if (!f) {
        fprintf(stderr, PROGRAM ": cannot open the password file %s: %s\n", path, strerror(errno));
        return -1;
    }
    ok = fgets(buf, (int)len, f) != NULL;
    fclose(f);
    buf[ok ? strcspn(buf, "\r\n") : 0] = '\0';
    if (!*buf) {
        fprintf(stderr,
                PROGRAM ": the password file %s is empty (its first line is the password)\n", path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct redis_include *include = NULL;
    const char **pairs = NULL;
    char err[1024], password[512] = "";
    struct redis_target target;
    int n, r;

    parse(argc, argv);
    r = redis_include_load(opt.include, &include, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, PROGRAM ": %s\n", err);
        return 2;
    }
    n = redis_include_config_set_pairs(include, &pairs);
    if (n < 0 ||
        (opt.password_file && read_password(opt.password_file, password, sizeof(password)) < 0)) {
        if (n < 0)
            fprintf(stderr, PROGRAM ": out of memory\n");
        free(pairs);
        redis_include_free(include);
        return n < 0 ? 1 : 2;
    }
    /* Read last, so that no other way out has a password to wipe. */
    target = (struct redis_target){opt.host, opt.port, opt.user, *password ? password : NULL};
    r = redis_config_set(&target, pairs, (size_t)n, (double)opt.timeout, err, sizeof(err));
    OPENSSL_cleanse(password, sizeof(password));
    free(pairs);
    redis_include_free(include);
    if (r == 0) {
        printf(PROGRAM ": redis-server on %s:%d took the TLS settings of %s\n", opt.host, opt.port,
               opt.include);
        return 0;
    }
    if (r > 0)
        fprintf(stderr, PROGRAM ": redis-server on %s:%d refused the TLS settings of %s: %s%s\n",
                opt.host, opt.port, opt.include, err,
                /* Redis's words for a client that has not signed in. */
                !opt.password_file && (strstr(err, "NOAUTH") || strstr(err, "unauthenticated"))
                    ? " (it has a password: give it with --password-file)"
                    : "");
    else
        fprintf(stderr, PROGRAM ": %s\n", err);
    return 1;
}
