/*
 * certvisor-metrics-exporter: the node's Prometheus endpoint. Each scrape of
 * https://ADDRESS:PORT/metrics asks certvisord for its state over the control
 * socket and answers it as Prometheus text.
 *
 *   certvisor-metrics-exporter --config FILE --port PORT [--bind ADDRESS]
 *                              --control-socket PATH
 *
 * TLS comes from the file certvisord renders (the metrics_exporter
 * certificate, the control plane's policy). READY=1 once listening; SIGHUP
 * builds a new context and swaps it in, with the notify protocol's handshake
 * (lib/service/service_runtime.h): a reload that fails keeps the old context
 * and ends the service with status 1, for the agent to roll the change back.
 * SIGTERM or SIGINT: STOPPING=1, then exit 0.
 */
#include "http_server.h"
#include "log.h"
#include "render.h"
#include "scrape.h"
#include "service_runtime.h"
#include "tls_context.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    struct service_runtime rt;
    struct tls_context_holder *holder;
    struct http_server *http;
    struct http_listener *listener;
    struct scraper *scraper;
    bool agent_down; /* the last scrape found no agent: logged once, not at every scrape */
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
    int c;

    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'c':
            opt.config = optarg;
            break;
        case 'p':
            opt.port = service_option_port(PROGRAM, "--port", optarg);
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
    static const char not_found[] = "Not Found: the metrics are at /metrics (and /)\n";
    static const char not_allowed[] = "Method Not Allowed: /metrics answers GET and HEAD\n";
    const char *path = http_request_path(request);
    const char *method = http_request_method(request);
    struct exporter *e = data;

    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        http_response_header(request, "Allow", "GET, HEAD");
        http_respond(request, 405, "text/plain; charset=utf-8", not_allowed,
                     sizeof(not_allowed) - 1);
        return;
    }
    /* "/" too: Redis Enterprise's quick start scrapes with metrics_path: / */
    if (strcmp(path, "/metrics") != 0 && strcmp(path, "/") != 0) {
        http_respond(request, 404, "text/plain; charset=utf-8", not_found, sizeof(not_found) - 1);
        return;
    }
    if (scraper_request(e->scraper, answer_scrape, request) < 0) {
        static const char body[] = "out of memory\n";

        http_respond(request, 500, "text/plain; charset=utf-8", body, sizeof(body) - 1);
    }
}

/* SIGHUP: a new TLS context, built whole before it replaces the old one. */
static int reload(void *data, char *err, size_t err_len)
{
    struct exporter *e = data;

    if (tls_holder_reload(e->holder, err, err_len) < 0)
        return -1;
    log_info("Reloaded %s", opt.config);
    return 0;
}

static int run(struct exporter *e)
{
    const struct http_callbacks callbacks = {.handler = on_request, .data = e};
    struct http_limits limits;
    char err[1024];
    int status = 1;

    if (service_runtime_watch_signals(&e->rt, reload, e, NULL) < 0)
        goto out;
    if (tls_holder_new(opt.config, TLS_ROLE_SERVER, &e->holder, err, sizeof(err)) < 0) {
        log_error("%s", err);
        goto out;
    }
    if (scraper_new(e->rt.base, opt.control_socket, AGENT_TIMEOUT_MS, &e->scraper) < 0) {
        log_error("Out of memory");
        goto out;
    }
    http_limits_default(&limits);
    /* Scrapers send no body; a small one is read (and ignored) so that a wrong method gets its
     * 405 rather than a 413. */
    limits.max_body = 4096;
    if (http_server_new(e->rt.base, &limits, &callbacks, &e->http) < 0) {
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
    service_runtime_ready(&e->rt, "serving /metrics on port %u", http_listener_port(e->listener));
    status = service_runtime_run(&e->rt);
out:
    /* The scrapes first: their requests live in the server's connections. */
    scraper_free(e->scraper);
    http_server_free(e->http);
    tls_holder_free(e->holder);
    return status;
}

int main(int argc, char **argv)
{
    int status;

    parse(argc, argv);
    if (service_runtime_open(&exporter.rt, PROGRAM, LOG_INFO) < 0)
        return 1;
    status = run(&exporter);
    service_runtime_close(&exporter.rt);
    return status;
}
