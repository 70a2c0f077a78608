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
 * READY=1 once every link listens. SIGHUP reads both files and builds them
 * whole, then updates the links (established ones stay up; new connections use
 * the new certificate and trust), inside the notify protocol's reload
 * handshake (lib/service/service_runtime.h): a reload that fails exits 1. Every second, when it
 * changed, the state of each link goes out as CERTVISOR_STATS=<json> ("certvisorctl replica status"
 * shows it). SIGTERM or SIGINT ends every link and exits 0; the shards stay replicas and follow the
 * next syncer's port.
 */
#include "log.h"
#include "service_runtime.h"
#include "syncer.h"

#include <event2/event.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPORT_INTERVAL_SEC 1

struct options {
    const char *config;
    const char *replicas;
    int log_level;
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

static int reload(void *data, char *err, size_t err_len)
{
    return syncer_reload(data, err, err_len);
}

static void on_report(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    syncer_report(arg);
}

static int run(struct service_runtime *rt, struct syncer *syncer)
{
    struct timeval interval = {REPORT_INTERVAL_SEC, 0};
    struct event *report = event_new(rt->base, -1, EV_PERSIST, on_report, syncer);
    int status = 1;

    if (!report || event_add(report, &interval) < 0)
        log_error("Cannot set up the event loop");
    else if (service_runtime_watch_signals(rt, reload, syncer, NULL) == 0 &&
             syncer_start(syncer) == 0) {
        log_notice("Ready: %zu replica link%s", syncer->n_links, syncer->n_links == 1 ? "" : "s");
        service_runtime_ready(rt, "%zu replica link%s", syncer->n_links,
                              syncer->n_links == 1 ? "" : "s");
        syncer_report(syncer);
        status = service_runtime_run(rt);
    }
    if (report)
        event_free(report);
    return status;
}

int main(int argc, char **argv)
{
    struct service_runtime rt;
    struct syncer syncer = {0};
    struct options opt;
    int status;

    parse(argc, argv, &opt);
    if (service_runtime_open(&rt, "certvisor-syncer", opt.log_level) < 0)
        return 1;
    syncer.tls_path = opt.config;
    syncer.replicas_path = opt.replicas;
    syncer.base = rt.base;
    status = run(&rt, &syncer);
    syncer_stop(&syncer);
    service_runtime_close(&rt);
    return status;
}
