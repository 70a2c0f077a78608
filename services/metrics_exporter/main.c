/*
 * certvisor-metrics-exporter: the node's Prometheus endpoint. Each scrape of
 * https://ADDRESS:PORT/metrics asks certvisord for its state over the control
 * socket and answers it as Prometheus text.
 *
 *   certvisor-metrics-exporter --config FILE --port PORT [--bind ADDRESS]
 *                              --control-socket PATH
 *
 * TLS comes from the file certvisord renders (the metrics_exporter
 * certificate, the control plane's policy). Readiness and reloads speak the
 * notify protocol, as tests/programs/tlssvc.c does: READY=1 once listening; on
 * SIGHUP RELOADING=1, the new context built and swapped in, then READY=1. A
 * reload that fails keeps nothing half-done (the holder keeps the old
 * context), logs why and ends the service with status 1: the agent sees the
 * reload fail and rolls the change back, restarting it with the previous
 * files. SIGTERM or SIGINT: STOPPING=1, then exit 0.
 */
#include "http_server.h"
#include "log.h"
#include "render.h"
#include "scrape.h"
#include "tls_context.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#define PROGRAM "certvisor-metrics-exporter"

/*
 * How long a scrape waits for the agent. Under Prometheus's default scrape
 * timeout (10 s), so a stuck agent gives a clear 503 rather than a timeout.
 */
#define AGENT_TIMEOUT_MS 5000

static struct {
    const char *config;
    const char *bind;
    const char *control_socket;
    long port;
} opt = {.bind = "0.0.0.0", .port = -1};

struct exporter {
    struct event_base *base;
    struct tls_context_holder *holder;
    struct http_server *http;
    struct http_listener *listener;
    struct scraper *scraper;
    bool agent_down; /* the last scrape found no agent: logged once, not at every scrape */
    int exit_status;
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: " PROGRAM " --config FILE --port PORT [--bind ADDRESS] --control-socket PATH\n"
            "  --config FILE          the TLS file certvisord renders for this service\n"
            "  --port PORT            serve https://ADDRESS:PORT/metrics (0: any free port)\n"
            "  --bind ADDRESS         IPv4 or IPv6 address to listen on (default 0.0.0.0)\n"
            "  --control-socket PATH  certvisord's control socket, asked at every scrape\n"
            "SIGHUP reloads the TLS file; a reload that fails ends the service (status 1).\n");
}

static void parse(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'}, {"port", required_argument, NULL, 'p'},
        {"bind", required_argument, NULL, 'b'},   {"control-socket", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    char *end;
    int c;

    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'c':
            opt.config = optarg;
            break;
        case 'p':
            errno = 0;
            opt.port = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || opt.port < 0 || opt.port > 65535) {
                fprintf(stderr, PROGRAM ": --port %s: not a port number\n", optarg);
                exit(2);
            }
            break;
        case 'b':
            opt.bind = optarg;
            break;
        case 's':
            opt.control_socket = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind < argc || !opt.config || opt.port < 0 || !opt.control_socket) {
        usage(stderr);
        exit(2);
    }
}

/* --- scrapes --- */

static struct exporter exporter;

static void answer_scrape(void *data, json_t *reply, const char *error)
{
    struct http_request *request = data;
    size_t len = 0;
    char *text;

    if (error) {
        if (!exporter.agent_down)
            log_warning("Cannot get metrics from the agent: %s", error);
        exporter.agent_down = true;
        text = render_unavailable(error, &len);
        http_respond(request, 503, RENDER_CONTENT_TYPE, text ? text : "", text ? len : 0);
        free(text);
        return;
    }
    if (exporter.agent_down)
        log_notice("The agent answers again");
    exporter.agent_down = false;
    text = render_metrics(reply, &len);
    if (!text) {
        static const char body[] = "out of memory\n";

        http_respond(request, 500, "text/plain; charset=utf-8", body, sizeof(body) - 1);
        return;
    }
    http_respond(request, 200, RENDER_CONTENT_TYPE, text, len);
    free(text);
}

static void on_request(struct http_request *request, void *data)
{
    static const char not_found[] = "Not Found: the metrics are at /metrics\n";
    static const char not_allowed[] = "Method Not Allowed: /metrics answers GET and HEAD\n";
    const char *method = http_request_method(request);
    struct exporter *e = data;

    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        http_response_header(request, "Allow", "GET, HEAD");
        http_respond(request, 405, "text/plain; charset=utf-8", not_allowed,
                     sizeof(not_allowed) - 1);
        return;
    }
    if (strcmp(http_request_path(request), "/metrics") != 0) {
        http_respond(request, 404, "text/plain; charset=utf-8", not_found, sizeof(not_found) - 1);
        return;
    }
    if (scraper_request(e->scraper, answer_scrape, request) < 0) {
        static const char body[] = "out of memory\n";

        http_respond(request, 500, "text/plain; charset=utf-8", body, sizeof(body) - 1);
    }
}

/* --- signals --- */

static unsigned long long monotonic_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000;
}

static void on_reload(evutil_socket_t signo, short what, void *arg)
{
    struct exporter *e = arg;
    char err[1024];

    (void)signo;
    (void)what;
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", monotonic_usec());
    if (tls_holder_reload(e->holder, err, sizeof(err)) < 0) {
        log_error("Reload failed, exiting so that the agent rolls back: %s", err);
        e->exit_status = 1;
        event_base_loopexit(e->base, NULL);
        return;
    }
    log_info("Reloaded %s", opt.config);
    sd_notify(0, "READY=1");
}

static void on_stop(evutil_socket_t signo, short what, void *arg)
{
    struct exporter *e = arg;

    (void)what;
    log_info("Stopping (signal %d)", (int)signo);
    sd_notify(0, "STOPPING=1");
    e->exit_status = 0;
    event_base_loopexit(e->base, NULL);
}

static int run(struct exporter *e)
{
    struct event *signals[3] = {
        evsignal_new(e->base, SIGHUP, on_reload, e),
        evsignal_new(e->base, SIGTERM, on_stop, e),
        evsignal_new(e->base, SIGINT, on_stop, e),
    };
    const struct http_callbacks callbacks = {.handler = on_request, .data = e};
    struct http_limits limits;
    char err[1024];
    int status = 1;

    for (size_t i = 0; i < 3; i++) {
        if (!signals[i] || evsignal_add(signals[i], NULL) < 0) {
            log_error("Cannot watch signals");
            goto out;
        }
    }
    if (tls_holder_new(opt.config, TLS_ROLE_SERVER, &e->holder, err, sizeof(err)) < 0) {
        log_error("%s", err);
        goto out;
    }
    if (scraper_new(e->base, opt.control_socket, AGENT_TIMEOUT_MS, &e->scraper) < 0) {
        log_error("Out of memory");
        goto out;
    }
    http_limits_default(&limits);
    /* Scrapers send no body; a small one is read (and ignored) so that a wrong method gets its
     * 405 rather than a 413. */
    limits.max_body = 4096;
    if (http_server_new(e->base, &limits, &callbacks, &e->http) < 0) {
        log_error("Out of memory");
        goto out;
    }
    if (http_server_listen(e->http, opt.bind, (unsigned)opt.port, e->holder, &e->listener, err,
                           sizeof(err)) < 0) {
        log_error("--bind/--port: %s", err);
        goto out;
    }
    log_info("Serving https://%s%s%s:%u/metrics", strchr(opt.bind, ':') ? "[" : "", opt.bind,
             strchr(opt.bind, ':') ? "]" : "", http_listener_port(e->listener));
    sd_notifyf(0, "READY=1\nSTATUS=serving /metrics on port %u", http_listener_port(e->listener));
    event_base_dispatch(e->base);
    status = e->exit_status;
out:
    /* The scrapes first: their requests live in the server's connections. */
    scraper_free(e->scraper);
    http_server_free(e->http);
    tls_holder_free(e->holder);
    for (size_t i = 0; i < 3; i++)
        if (signals[i])
            event_free(signals[i]);
    return status;
}

int main(int argc, char **argv)
{
    int status;

    parse(argc, argv);
    log_setup(PROGRAM, LOG_TARGET_AUTO, NULL, LOG_INFO);
    signal(SIGPIPE, SIG_IGN); /* a client gone away is an error from write, not a signal */
    exporter.base = event_base_new();
    if (!exporter.base) {
        log_error("Cannot set up the event loop");
        return 1;
    }
    status = run(&exporter);
    event_base_free(exporter.base);
    return status;
}
