/*
 * certvisor-sentinel: the discovery service (Redis Enterprise's sentinel_service). It answers
 * the client side of the Redis Sentinel protocol with the endpoints of the databases
 * certvisord renders, on one port that takes TLS, plain, or both, as sentinel_tls_mode says.
 *
 *   certvisor-sentinel --config FILE --databases FILE [--port 8001] [--bind 0.0.0.0] [--verbose]
 *
 * --config is the TLS file rendered for the sentinel plane (its tls_mode is
 * sentinel_tls_mode), --databases the database list (lib/db_config.h). Both are read once:
 * a change restarts the service. READY=1 once the port listens; SIGTERM or SIGINT ends it
 * (exit 0). A start that fails (a file, the port) exits 1 with the reason; bad arguments 2.
 */
#include "log.h"
#include "netutil.h"
#include "server.h"
#include "settings.h"

#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

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
            "only, disabled = plain only. A change of either file needs a restart.\n");
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
    char *end;
    long port;
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
            errno = 0;
            port = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || port < 0 || port > 65535) {
                fprintf(stderr, "certvisor-sentinel: --port %s: not a port number\n", optarg);
                exit(2);
            }
            opt->port = (int)port;
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

static void on_stop(evutil_socket_t signal_number, short what, void *arg)
{
    (void)what;
    log_info("Stopping on signal %d", (int)signal_number);
    event_base_loopbreak(arg);
}

/* Nothing is reloaded: the agent restarts the service for every change (reload_signal none). */
static void on_hangup(evutil_socket_t signal_number, short what, void *arg)
{
    (void)signal_number;
    (void)what;
    (void)arg;
    log_notice("SIGHUP ignored: certvisor-sentinel reads its files at start; restart it "
               "(certvisorctl restart sentinel_service) to apply a change");
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

/* Serves until a stop signal. Returns the exit status. */
static int serve(int listen_fd, const struct sentinel_settings *settings, const char *where)
{
    struct event_base *base = event_base_new();
    struct event *signals[3] = {NULL, NULL, NULL};
    struct server server;
    int status = 1;

    if (!base || !(signals[0] = evsignal_new(base, SIGTERM, on_stop, base)) ||
        !(signals[1] = evsignal_new(base, SIGINT, on_stop, base)) ||
        !(signals[2] = evsignal_new(base, SIGHUP, on_hangup, NULL)) ||
        server_start(&server, base, listen_fd, settings, max_conns()) < 0) {
        log_error("Cannot start: out of memory");
        close(listen_fd);
        goto out;
    }
    for (size_t i = 0; i < 3; i++)
        event_add(signals[i], NULL);
    log_notice("Serving Sentinel discovery on %s: sentinel_tls_mode %s, TLS %s and above, %zu "
               "database%s",
               where, sentinel_tls_mode_name(settings->mode), settings->min_version,
               settings->dbs.n, settings->dbs.n == 1 ? "" : "s");
    sd_notify(0, "READY=1");
    status = event_base_dispatch(base) < 0 ? 1 : 0;
    sd_notify(0, "STOPPING=1");
    server_stop(&server);
out:
    for (size_t i = 0; i < 3; i++)
        if (signals[i])
            event_free(signals[i]);
    if (base)
        event_base_free(base);
    return status;
}

int main(int argc, char **argv)
{
    struct sentinel_settings settings;
    struct options opt;
    char err[1024], where[NET_ADDRESS_MAX];
    const char *ident = getenv("CERTVISOR_SERVICE");
    int listen_fd, status;

    parse(argc, argv, &opt);
    log_setup(ident && *ident ? ident : "certvisor-sentinel", LOG_TARGET_AUTO, NULL, opt.log_level);
    signal(SIGPIPE, SIG_IGN); /* a client gone away is an error from write, not a signal */
    if (settings_load(opt.config, opt.databases, &settings, err, sizeof(err)) < 0) {
        log_error("Cannot start: %s", err);
        return 1;
    }
    listen_fd = open_port(&opt, where, sizeof(where));
    if (listen_fd < 0) {
        settings_clear(&settings);
        return 1;
    }
    status = serve(listen_fd, &settings, where);
    settings_clear(&settings);
    return status;
}
