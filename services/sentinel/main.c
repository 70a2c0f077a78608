/*
 * certvisor-sentinel: the discovery service (Redis Enterprise's sentinel_service). It answers
 * the client side of the Redis Sentinel protocol with the endpoints of the databases
 * certvisord renders, on one port that takes TLS, plain, or both, as sentinel_tls_mode says.
 *
 *   certvisor-sentinel --config FILE --databases FILE [--port 8001] [--bind 0.0.0.0] [--verbose]
 *
 * --config is the TLS file rendered for the sentinel plane (its tls_mode is
 * sentinel_tls_mode), --databases the database list (lib/db_config.h). SIGHUP reads both
 * again and puts them in force whole (the certificate, minimum version, ciphers, mode and
 * databases) for every connection accepted and every command answered from then on;
 * connections already open keep theirs (a TLS one its session). A reload that fails changes
 * nothing and ends the service with status 1 (service_runtime.h), which certvisord takes as
 * the change failing. READY=1 once the port listens; SIGTERM or SIGINT ends it (exit 0). A
 * start that fails (a file, the port) exits 1 with the reason; bad arguments 2.
 */
#include "log.h"
#include "netutil.h"
#include "server.h"
#include "service_runtime.h"
#include "settings.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROGRAM "certvisor-sentinel"

/* Redis's default maxclients. */
#define MAX_CONNS 10000
/* Descriptors kept for everything but clients: the listener, the log, libevent's own. */
#define RESERVED_FDS 32

struct options {
    const char *config;
    const char *databases;
    const char *bind;
    int port;
    int log_level;
};

struct sentinel {
    struct service_runtime rt;
    struct options opt;
    struct sentinel_settings settings; /* the server reads them at each use: swapped whole */
    struct server server;
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: certvisor-sentinel --config FILE --databases FILE [--port PORT] [--bind ADDR]\n"
            "                          [--verbose]\n"
            "Answers Redis Sentinel clients with the endpoints of this node's databases.\n"
            "  --config FILE     the TLS file certvisord renders for the sentinel plane\n"
            "                    (certificate, minimum version, ciphers, tls_mode)\n"
            "  --databases FILE  the database list certvisord renders (databases_output)\n"
            "  --port PORT       the port to listen on (default 8001; 0: any free port)\n"
            "  --bind ADDR       the address to listen on (default 0.0.0.0; \"::\" for IPv6 too)\n"
            "  --verbose         log at debug level (each connection, TLS version and cipher)\n"
            "  --help            this text\n"
            "tls_mode (sentinel_tls_mode): allowed = TLS and plain on the port, required = TLS\n"
            "only, disabled = plain only. SIGHUP reads both files again (connections\n"
            "already open keep what they have).\n");
}

static void parse(int argc, char **argv, struct options *opt)
{
    static const struct option options[] = {{"config", required_argument, NULL, 'c'},
                                            {"databases", required_argument, NULL, 'd'},
                                            {"port", required_argument, NULL, 'p'},
                                            {"bind", required_argument, NULL, 'b'},
                                            {"verbose", no_argument, NULL, 'v'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    int c;

    *opt = (struct options){.bind = "0.0.0.0", .port = 8001, .log_level = LOG_INFO};
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'c':
            opt->config = optarg;
            break;
        case 'd':
            opt->databases = optarg;
            break;
        case 'b':
            opt->bind = optarg;
            break;
        case 'p':
            opt->port = service_option_port(PROGRAM, "--port", optarg);
            break;
        case 'v':
            opt->log_level = LOG_DEBUG;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind < argc || !opt->config || !opt->databases) {
        fprintf(stderr, "certvisor-sentinel: %s\n",
                optind < argc ? "unexpected arguments" : "--config and --databases are required");
        usage(stderr);
        exit(2);
    }
}

/* Opens the port. Returns the socket, or -1 with the reason logged. */
static int open_port(const struct options *opt, char *where, size_t where_len)
{
    struct net_address address;
    struct sockaddr_storage bound;
    socklen_t len = sizeof(bound);
    int fd;

    if (net_address_parse(opt->bind, opt->port, &address) < 0) {
        log_error("Cannot start: --bind '%s' is not a numeric IPv4 or IPv6 address", opt->bind);
        return -1;
    }
    net_address_format((struct sockaddr *)&address.addr, address.len, where, where_len);
    fd = net_listen(&address, 0, SOMAXCONN);
    if (fd < 0) {
        log_error("Cannot start: cannot listen on %s: %s", where, strerror(-fd));
        return -1;
    }
    /* With --port 0 the kernel chose: say which. */
    if (getsockname(fd, (struct sockaddr *)&bound, &len) == 0)
        net_address_format((struct sockaddr *)&bound, len, where, where_len);
    return fd;
}

static size_t max_conns(void)
{
    long limit = net_raise_nofile_limit();

    if (limit < 0 || limit - RESERVED_FDS < 16)
        return 16;
    return limit - RESERVED_FDS < MAX_CONNS ? (size_t)(limit - RESERVED_FDS) : MAX_CONNS;
}

/*
 * SIGHUP: both files again, in force whole or not at all. A connection holds its SSL (which
 * holds its context) and looks the mode and the databases up at each use, so the old ones can
 * go at once.
 */
static int reload(void *data, char *err, size_t err_len)
{
    struct sentinel *s = data;
    struct sentinel_settings fresh;
    int r = settings_load(s->opt.config, s->opt.databases, &fresh, err, err_len);

    if (r < 0)
        return r;
    settings_clear(&s->settings);
    s->settings = fresh;
    log_notice("Reloaded: sentinel_tls_mode %s, TLS %s and above, %zu database%s",
               sentinel_tls_mode_name(fresh.mode), fresh.min_version, fresh.dbs.n,
               fresh.dbs.n == 1 ? "" : "s");
    return 0;
}

/* Serves until a stop signal. Returns the exit status. */
static int serve(struct sentinel *s, int listen_fd, const char *where)
{
    const struct sentinel_settings *settings = &s->settings;
    int status;

    if (service_runtime_watch_signals(&s->rt, reload, s, NULL) < 0)
        return 1;
    if (server_start(&s->server, s->rt.base, listen_fd, settings, max_conns()) < 0) {
        log_error("Cannot start: out of memory");
        close(listen_fd);
        return 1;
    }
    log_notice("Serving Sentinel discovery on %s: sentinel_tls_mode %s, TLS %s and above, %zu "
               "database%s",
               where, sentinel_tls_mode_name(settings->mode), settings->min_version,
               settings->dbs.n, settings->dbs.n == 1 ? "" : "s");
    service_runtime_ready(&s->rt, NULL);
    status = service_runtime_run(&s->rt);
    server_stop(&s->server);
    return status;
}

int main(int argc, char **argv)
{
    static struct sentinel s;
    char err[1024], where[NET_ADDRESS_MAX];
    int listen_fd, status;

    parse(argc, argv, &s.opt);
    if (service_runtime_open(&s.rt, PROGRAM, s.opt.log_level) < 0)
        return 1;
    if (settings_load(s.opt.config, s.opt.databases, &s.settings, err, sizeof(err)) < 0) {
        log_error("Cannot start: %s", err);
        service_runtime_close(&s.rt);
        return 1;
    }
    listen_fd = open_port(&s.opt, where, sizeof(where));
    status = listen_fd < 0 ? 1 : serve(&s, listen_fd, where);
    settings_clear(&s.settings);
    service_runtime_close(&s.rt);
    return status;
}
