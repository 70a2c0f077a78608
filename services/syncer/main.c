/*
 * certvisor-syncer: Replica Of between clusters. For each replica database of
 * the rendered replicas file it listens on 127.0.0.1 (replica_local_port, or
 * any free port), makes the database's shard a replica of that port
 * (REPLICAOF), and carries the shard's replication connection to the source
 * database's endpoint on the other cluster, in TLS, with the syncer
 * certificate as client certificate, verifying the source against the trust
 * the agent renders (replica_ca_file) and, when asked, its host name.
 *
 *   certvisor-syncer --config TLS_FILE --replicas REPLICAS_FILE [--verbose]
 *
 * Readiness and reloads speak the notify protocol: READY=1 once every link
 * listens; on SIGHUP RELOADING=1, both files read and built whole, the links
 * updated (established ones stay up; new connections use the new certificate
 * and trust), then READY=1. A reload that fails sends STATUS= and ERRNO= and
 * exits 1. Every second, when it changed, the state of each link goes out as
 * CERTVISOR_STATS=<json> ("certvisorctl replica status" shows it). SIGTERM or
 * SIGINT ends every link and exits 0; the shards stay replicas and follow the
 * next syncer's port.
 */
#include "log.h"
#include "syncer.h"

#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#define REPORT_INTERVAL_SEC 1

struct options {
    const char *config;
    const char *replicas;
    int log_level;
};

struct main_loop {
    struct syncer *syncer;
    struct event_base *base;
    int status;
};

static void usage(FILE *out)
{
    fprintf(out, "Usage: certvisor-syncer --config FILE --replicas FILE [--verbose]\n"
                 "Carries Redis replication from other clusters' databases to this node's shards.\n"
                 "  --config FILE    the TLS file certvisord renders for the syncer: its\n"
                 "                   certificate and the data plane's policy\n"
                 "  --replicas FILE  the replica databases certvisord renders (replicas_output):\n"
                 "                   source, trust, shard\n"
                 "  --verbose        log at debug level\n"
                 "  --help           this text\n"
                 "SIGHUP reloads both files; SIGTERM stops.\n");
}

static void parse(int argc, char **argv, struct options *opt)
{
    static const struct option options[] = {{"config", required_argument, NULL, 'c'},
                                            {"replicas", required_argument, NULL, 'r'},
                                            {"verbose", no_argument, NULL, 'v'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    int c;

    *opt = (struct options){.log_level = LOG_INFO};
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'c':
            opt->config = optarg;
            break;
        case 'r':
            opt->replicas = optarg;
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
    if (optind < argc || !opt->config || !opt->replicas) {
        fprintf(stderr, "certvisor-syncer: %s\n",
                optind < argc ? "unexpected arguments" : "--config and --replicas are required");
        usage(stderr);
        exit(2);
    }
}

static void on_stop(evutil_socket_t signal_number, short what, void *arg)
{
    struct main_loop *loop = arg;

    (void)what;
    sd_notify(0, "STOPPING=1");
    log_info("Stopping on signal %d: every link ends", (int)signal_number);
    event_base_loopbreak(loop->base);
}

static void on_reload(evutil_socket_t signal_number, short what, void *arg)
{
    struct main_loop *loop = arg;

    (void)signal_number;
    (void)what;
    if (syncer_reload(loop->syncer) < 0) {
        loop->status = 1;
        event_base_loopbreak(loop->base);
    }
}

static void on_report(evutil_socket_t fd, short what, void *arg)
{
    struct main_loop *loop = arg;

    (void)fd;
    (void)what;
    syncer_report(loop->syncer);
}

static int run(struct syncer *syncer)
{
    struct main_loop loop = {.syncer = syncer, .base = syncer->base};
    struct timeval interval = {REPORT_INTERVAL_SEC, 0};
    struct event *events[4] = {
        evsignal_new(loop.base, SIGTERM, on_stop, &loop),
        evsignal_new(loop.base, SIGINT, on_stop, &loop),
        evsignal_new(loop.base, SIGHUP, on_reload, &loop),
        event_new(loop.base, -1, EV_PERSIST, on_report, &loop),
    };
    bool ok = true;

    for (size_t i = 0; i < 4; i++)
        ok = ok && events[i] && event_add(events[i], i == 3 ? &interval : NULL) == 0;
    if (!ok) {
        log_error("Cannot set up the event loop");
        loop.status = 1;
    } else if (syncer_start(syncer) < 0) {
        loop.status = 1;
    } else {
        log_notice("Ready: %zu replica link%s", syncer->n_links, syncer->n_links == 1 ? "" : "s");
        sd_notifyf(0, "READY=1\nSTATUS=%zu replica link%s", syncer->n_links,
                   syncer->n_links == 1 ? "" : "s");
        syncer_report(syncer);
        event_base_dispatch(loop.base);
    }
    for (size_t i = 0; i < 4; i++)
        if (events[i])
            event_free(events[i]);
    return loop.status;
}

int main(int argc, char **argv)
{
    struct syncer syncer = {0};
    const char *ident = getenv("CERTVISOR_SERVICE");
    struct options opt;
    int status;

    parse(argc, argv, &opt);
    log_setup(ident && *ident ? ident : "certvisor-syncer", LOG_TARGET_AUTO, NULL, opt.log_level);
    signal(SIGPIPE, SIG_IGN); /* a peer gone away is an error from send, not a signal */
    syncer.tls_path = opt.config;
    syncer.replicas_path = opt.replicas;
    syncer.base = event_base_new();
    if (!syncer.base) {
        log_error("Cannot create the event loop");
        return 1;
    }
    status = run(&syncer);
    syncer_stop(&syncer);
    event_base_free(syncer.base);
    return status;
}
