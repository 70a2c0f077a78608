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
 * SIGINT) closes the listeners and every connection, and exits 0. SIGUSR2 hands the
 * listening sockets to a new process of the binary (an upgrade, handover.h), then drains.
 */
#include "fsutil.h"
#include "handover.h"
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
#include <time.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#define PROGRAM "certvisor-proxy"

#define MAX_THREADS 256
#define MAX_IDLE_TIMEOUT (7 * 24 * 3600)
#define STATS_INTERVAL_SEC 5
#define MAX_DRAIN_TIMEOUT (24 * 3600)
#define DEFAULT_DRAIN_TIMEOUT 60
#define DRAIN_POLL_MS 100

struct main_loop {
    struct proxy *proxy;
    struct event_base *base;
    int status;
    char binary[4096]; /* this program's path: the new binary after an upgrade */
    char **argv;
    struct handover *handover;
    struct event *stats;
    struct event *drain_timer; /* while draining: polls for the last connection to end */
    struct timespec drain_began;
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
            "  --drain-timeout SECONDS after handing over to a new process, how long open\n"
            "                         connections may go on before they are closed (default 60)\n"
            "  --verbose              log at debug level (failed handshakes, timeouts)\n"
            "  --help                 this text\n"
            "SIGHUP reloads both files; SIGUSR2 hands the listening sockets to a new process\n"
            "of this binary (an upgrade) and drains; SIGTERM stops.\n");
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
                                            {"drain-timeout", required_argument, NULL, 'D'},
                                            {"verbose", no_argument, NULL, 'v'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    int c;

    opt->log_level = LOG_INFO;
    opt->drain_timeout = DEFAULT_DRAIN_TIMEOUT;
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
        case 'D':
            opt->drain_timeout = (unsigned)service_option_number(PROGRAM, "--drain-timeout", optarg,
                                                                 0, MAX_DRAIN_TIMEOUT);
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

static double seconds_since(const struct timespec *t)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

/* While draining: ends once no client connection is open, or at the drain timeout. */
static void on_drain_timer(evutil_socket_t fd, short what, void *arg)
{
    struct main_loop *loop = arg;
    struct timeval poll = {0, DRAIN_POLL_MS * 1000};
    uint64_t open = stats_open_connections(&loop->proxy->stats);
    double waited = seconds_since(&loop->drain_began);

    (void)fd;
    (void)what;
    if (open == 0) {
        log_info("Drained in %.1f s: exiting", waited);
        event_base_loopbreak(loop->base);
    } else if (waited >= loop->proxy->opt.drain_timeout) {
        log_notice("Drain timeout (%u s): closing %llu connection%s still open",
                   loop->proxy->opt.drain_timeout, (unsigned long long)open, open == 1 ? "" : "s");
        event_base_loopbreak(loop->base);
    } else {
        evtimer_add(loop->drain_timer, &poll);
    }
}

/* The new process serves: stop accepting here and let what is open finish. */
static void drain(void *data)
{
    struct main_loop *loop = data;
    struct timeval now = {0, 0};
    int r = proxy_stop_accepting(loop->proxy);

    if (r < 0) {
        log_error("Cannot stop accepting: %s; exiting", strerror(-r));
        event_base_loopbreak(loop->base);
        return;
    }
    /* Its counters and status are the new process's to report now. */
    event_del(loop->stats);
    clock_gettime(CLOCK_MONOTONIC, &loop->drain_began);
    loop->drain_timer = evtimer_new(loop->base, on_drain_timer, loop);
    if (!loop->drain_timer || evtimer_add(loop->drain_timer, &now) < 0)
        event_base_loopbreak(loop->base);
}

static void hand_over(struct main_loop *loop)
{
    int r;

    if (loop->drain_timer) {
        log_notice("Received SIGUSR2 while draining: ignored");
        return;
    }
    r = handover_begin(&loop->handover, loop->base, loop->binary, loop->argv,
                       &loop->proxy->listeners, drain, loop);
    if (r == -EALREADY)
        log_notice("Received SIGUSR2 while a new process is starting: ignored");
    else if (r < 0)
        log_error("Cannot start a new process of %s: %s; this one goes on serving", loop->binary,
                  strerror(-r));
}

/* Reads the pending signals: a reload, a hand-over, or the end. */
static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    struct main_loop *loop = arg;
    struct signalfd_siginfo info;

    (void)what;
    while (read(fd, &info, sizeof(info)) == (ssize_t)sizeof(info)) {
        if (info.ssi_signo == SIGUSR2) {
            hand_over(loop);
        } else if (info.ssi_signo == SIGHUP && loop->drain_timer) {
            log_notice("Received SIGHUP while draining: ignored (the new process reloads)");
        } else if (info.ssi_signo == SIGHUP) {
            if (proxy_reload(loop->proxy) < 0) {
                loop->status = 1;
                event_base_loopbreak(loop->base);
                return;
            }
        } else if (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT) {
            if (!loop->drain_timer)
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
    sigaddset(&mask, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    return signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
}

static int run(struct proxy *proxy, int signal_fd, char **argv)
{
    struct main_loop loop = {.proxy = proxy, .base = event_base_new(), .argv = argv};
    struct timeval interval = {STATS_INTERVAL_SEC, 0};
    struct event *signals = NULL;

    fs_own_binary(loop.binary, sizeof(loop.binary));
    if (loop.base) {
        signals = event_new(loop.base, signal_fd, EV_READ | EV_PERSIST, on_signal, &loop);
        loop.stats = event_new(loop.base, -1, EV_PERSIST, on_stats, &loop);
    }
    if (!signals || !loop.stats || event_add(signals, NULL) < 0 ||
        event_add(loop.stats, &interval) < 0) {
        log_error("Cannot set up the main event loop");
        loop.status = 1;
    } else {
        event_base_dispatch(loop.base);
    }
    if (signals)
        event_free(signals);
    if (loop.stats)
        event_free(loop.stats);
    if (loop.drain_timer)
        event_free(loop.drain_timer);
    handover_free(loop.handover);
    if (loop.base)
        event_base_free(loop.base);
    return loop.status;
}

int main(int argc, char **argv)
{
    struct proxy proxy = {0};
    const char *ident = getenv("CERTVISOR_SERVICE");
    char err[512], mainpid[32];
    int signal_fd, status, r;
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
    proxy.listeners.n_workers = proxy.opt.threads;
    r = handover_inherit(&proxy.listeners, err, sizeof(err));
    if (r < 0) {
        log_error("Cannot take the sockets the previous process handed over: %s", err);
        close(signal_fd);
        return 1;
    }
    if (r > 0)
        log_info("Took %d listening socket%s over from the previous process", r, r == 1 ? "" : "s");
    if (proxy_start(&proxy) < 0) {
        proxy_stop(&proxy);
        close(signal_fd);
        return 1;
    }
    log_info("Ready: %zu database%s, %zu worker thread%s, up to %ld open files", proxy.gen->n,
             proxy.gen->n == 1 ? "" : "s", proxy.opt.threads, proxy.opt.threads == 1 ? "" : "s",
             files);
    /* Started by a hand-over: this process becomes the service's main one for certvisord. */
    snprintf(mainpid, sizeof(mainpid), "MAINPID=%d\n", (int)getpid());
    sd_notifyf(0, "%sREADY=1\nSTATUS=Serving %zu database%s", handover_inherited() ? mainpid : "",
               proxy.gen->n, proxy.gen->n == 1 ? "" : "s");
    handover_tell_ready();
    status = run(&proxy, signal_fd, argv);
    proxy_stop(&proxy);
    close(signal_fd);
    return status;
}
