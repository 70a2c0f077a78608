/*
 * certvisor-proxy: the TLS endpoint of the databases. For each database of the
 * rendered databases file it listens on the database's port, takes clients in
 * TLS (with the proxy certificate and the data-plane policy of the rendered TLS
 * file), in plain, or both (replica_ssl), and forwards their bytes to the
 * database's shard, plain or in TLS.
 *
 *   certvisor-proxy --config TLS_FILE --databases DATABASES_FILE [--threads N]
 *                   [--idle-timeout SECONDS] [--verbose]
 *
 * Readiness and reloads speak the notify protocol: READY=1 once every listener
 * is bound and every context built; on SIGHUP RELOADING=1, both files read and
 * built whole, then READY=1 (a reload that fails sends STATUS= and ERRNO= and
 * exits 1, for the agent to restore the previous files). Every 5 s, when they
 * changed, per-database counters go out as CERTVISOR_STATS=<json>. SIGTERM (or
 * SIGINT) closes the listeners and every connection, and exits 0.
 */
#include "log.h"
#include "netutil.h"
#include "proxy.h"
#include "service_runtime.h"

#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#define PROGRAM "certvisor-proxy"

#define MAX_THREADS 256
#define MAX_IDLE_TIMEOUT (7 * 24 * 3600)
#define STATS_INTERVAL_SEC 5

struct main_loop {
    struct proxy *proxy;
    struct event_base *base;
    int status;
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: certvisor-proxy --config FILE --databases FILE [options]\n"
            "  --config FILE          the proxy's TLS file certvisord renders: certificate and\n"
            "                         data-plane policy\n"
            "  --databases FILE       the databases file certvisord renders: endpoints and shards\n"
            "  --threads N            worker threads (default: one per CPU)\n"
            "  --idle-timeout SECONDS close connections idle that long (default 0: never)\n"
            "  --verbose              log at debug level (failed handshakes, timeouts)\n"
            "  --help                 this text\n"
            "SIGHUP reloads both files; SIGTERM stops.\n");
}

static size_t cpu_count(void)
{
    cpu_set_t set;

    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return (size_t)CPU_COUNT(&set);
    return 1;
}

static void parse(int argc, char **argv, struct proxy_options *opt)
{
    static const struct option options[] = {{"config", required_argument, NULL, 'c'},
                                            {"databases", required_argument, NULL, 'd'},
                                            {"threads", required_argument, NULL, 't'},
                                            {"idle-timeout", required_argument, NULL, 'i'},
                                            {"verbose", no_argument, NULL, 'v'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    int c;

    opt->log_level = LOG_INFO;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'c':
            opt->config = optarg;
            break;
        case 'd':
            opt->databases = optarg;
            break;
        case 't':
            opt->threads =
                (size_t)service_option_number(PROGRAM, "--threads", optarg, 1, MAX_THREADS);
            break;
        case 'i':
            opt->idle_timeout = (unsigned)service_option_number(PROGRAM, "--idle-timeout", optarg,
                                                                0, MAX_IDLE_TIMEOUT);
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
        usage(stderr);
        exit(2);
    }
    if (!opt->threads)
        opt->threads = cpu_count();
}

/* Reads the pending signals: a reload, or the end. */
static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    struct main_loop *loop = arg;
    struct signalfd_siginfo info;

    (void)what;
    while (read(fd, &info, sizeof(info)) == (ssize_t)sizeof(info)) {
        if (info.ssi_signo == SIGHUP) {
            if (proxy_reload(loop->proxy) < 0) {
                loop->status = 1;
                event_base_loopbreak(loop->base);
                return;
            }
        } else if (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT) {
            sd_notify(0, "STOPPING=1");
            log_info("Stopping: closing the listeners and every connection");
            event_base_loopbreak(loop->base);
            return;
        }
    }
}

static void on_stats(evutil_socket_t fd, short what, void *arg)
{
    struct main_loop *loop = arg;
    int r;

    (void)fd;
    (void)what;
    r = stats_report(&loop->proxy->stats, loop->proxy->gen);
    if (r < 0)
        log_debug("Cannot send the statistics: %s", strerror(-r));
}

/* Signals arrive on a descriptor, in this thread only: the workers inherit them blocked. */
static int signal_fd_open(void)
{
    sigset_t mask;

    signal(SIGPIPE, SIG_IGN); /* a peer gone away is an error from send, not a signal */
    sigemptyset(&mask);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    return signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
}

static int run(struct proxy *proxy, int signal_fd)
{
    struct main_loop loop = {.proxy = proxy, .base = event_base_new()};
    struct timeval interval = {STATS_INTERVAL_SEC, 0};
    struct event *signals = NULL, *stats = NULL;

    if (loop.base) {
        signals = event_new(loop.base, signal_fd, EV_READ | EV_PERSIST, on_signal, &loop);
        stats = event_new(loop.base, -1, EV_PERSIST, on_stats, &loop);
    }
    if (!signals || !stats || event_add(signals, NULL) < 0 || event_add(stats, &interval) < 0) {
        log_error("Cannot set up the main event loop");
        loop.status = 1;
    } else {
        event_base_dispatch(loop.base);
    }
    if (signals)
        event_free(signals);
    if (stats)
        event_free(stats);
    if (loop.base)
        event_base_free(loop.base);
    return loop.status;
}

int main(int argc, char **argv)
{
    struct proxy proxy = {0};
    const char *ident = getenv("CERTVISOR_SERVICE");
    int signal_fd, status;
    long files;

    parse(argc, argv, &proxy.opt);
    log_setup(ident && *ident ? ident : "certvisor-proxy", LOG_TARGET_AUTO, NULL,
              proxy.opt.log_level);
    signal_fd = signal_fd_open();
    if (signal_fd < 0) {
        log_error("signalfd: %s", strerror(errno));
        return 1;
    }
    /* Each connection takes two descriptors: allow as many as the hard limit does. */
    files = net_raise_nofile_limit();
    if (files < 0)
        log_warning("Cannot raise the limit on open files: %s", strerror((int)-files));
    if (proxy_start(&proxy) < 0) {
        proxy_stop(&proxy);
        close(signal_fd);
        return 1;
    }
    log_info("Ready: %zu database%s, %zu worker thread%s, up to %ld open files", proxy.gen->n,
             proxy.gen->n == 1 ? "" : "s", proxy.opt.threads, proxy.opt.threads == 1 ? "" : "s",
             files);
    sd_notifyf(0, "READY=1\nSTATUS=Serving %zu database%s", proxy.gen->n,
               proxy.gen->n == 1 ? "" : "s");
    status = run(&proxy, signal_fd);
    proxy_stop(&proxy);
    close(signal_fd);
    return status;
}
