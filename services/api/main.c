/*
 * certvisor-api: the node's REST API. HTTPS with the api certificate and the control plane's
 * policy, and plain HTTP while the policy's http_support is enabled; every request is handed
 * to certvisord over the control socket for the REST user it names (HTTP Basic), so the API
 * holds neither users nor certificate logic.
 *
 *   certvisor-api --config FILE --port PORT [--bind ADDRESS] [--http-port PORT]
 *                 --control-socket PATH [--request-timeout SECONDS]
 *
 * The TLS file is the one certvisord renders for the service's tls section (with
 * "http = true", its "http" line says whether plain HTTP is served). READY=1 once
 * listening; SIGHUP swaps the new context in and opens or closes the plain port as the file
 * now says, inside the notify protocol's reload handshake (lib/service/service_runtime.h).
 * Connections keep the context they were accepted with, so a request that is waiting for the agent
 * while the agent reloads the API (a change of its own certificate or policy) still gets its
 * answer. A reload that fails keeps nothing half-done, logs why and ends the service with status 1,
 * so that the agent rolls the change back. SIGTERM or SIGINT: STOPPING=1, then exit 0.
 */
#include "api.h"
#include "log.h"
#include "secure_alloc.h"
#include "service_runtime.h"
#include "tls_config.h"
#include "tls_context.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROGRAM "certvisor-api"
#define API_MAX_BODY (1024 * 1024)
#define API_MAX_HEAD (16 * 1024)
#define API_MAX_CONNS 128
/* A quarter of them from one address (an IPv6 /64) by default: cm's calls to the API come from
 * one. Behind a load balancer every client has its address: --max-conns-per-address. */
#define API_MAX_CONNS_PER_ADDRESS 32

static struct {
    const char *config;
    const char *bind;
    const char *control_socket;
    long port;
    long http_port;
    long request_timeout;
    long max_conns_per_address;
} opt = {.bind = "0.0.0.0",
         .port = -1,
         .http_port = 8080,
         .request_timeout = 30,
         .max_conns_per_address = API_MAX_CONNS_PER_ADDRESS};

struct service {
    struct service_runtime rt;
    struct api api;
    struct tls_context_holder *holder;
    struct http_server *http;
    struct http_listener *tls_listener;
    struct http_listener *plain_listener; /* while http_support is enabled */
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: " PROGRAM " --config FILE --port PORT [--bind ADDRESS] [--http-port PORT]\n"
            "                     --control-socket PATH [--request-timeout SECONDS]\n"
            "                     [--max-conns-per-address N]\n"
            "  --config FILE            the TLS file certvisord renders for this service\n"
            "  --port PORT              HTTPS port (9443; 0: any free port)\n"
            "  --bind ADDRESS           IPv4 or IPv6 address to listen on (default 0.0.0.0)\n"
            "  --http-port PORT         plain HTTP port while http_support is enabled (8080)\n"
            "  --control-socket PATH    certvisord's control socket\n"
            "  --request-timeout SECS   time a client has to send a request (default 30)\n"
            "  --max-conns-per-address N  connections at once from one address, of 128\n"
            "                           (default 32; 0: no cap, as behind a load balancer)\n"
            "SIGHUP reloads the TLS file; a reload that fails ends the service (status 1).\n");
}

static void parse(int argc, char **argv)
{
    static const struct option options[] = {{"config", required_argument, NULL, 'c'},
                                            {"port", required_argument, NULL, 'p'},
                                            {"bind", required_argument, NULL, 'b'},
                                            {"http-port", required_argument, NULL, 'H'},
                                            {"control-socket", required_argument, NULL, 's'},
                                            {"request-timeout", required_argument, NULL, 't'},
                                            {"max-conns-per-address", required_argument, NULL, 'm'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
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
        case 'H':
            opt.http_port = service_option_port(PROGRAM, "--http-port", optarg);
            break;
        case 's':
            opt.control_socket = optarg;
            break;
        case 't':
            opt.request_timeout =
                service_option_number(PROGRAM, "--request-timeout", optarg, 1, 3600);
            break;
        case 'm':
            opt.max_conns_per_address =
                service_option_number(PROGRAM, "--max-conns-per-address", optarg, 0, API_MAX_CONNS);
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

/* --- listeners --- */

/* Whether the rendered file asks for plain HTTP ("http = enabled"); absent means no. */
static int read_http_setting(bool *ret_enabled, char *err, size_t err_len)
{
    struct tls_config *config;
    int r = tls_config_read(opt.config, &config, err, err_len);

    if (r < 0)
        return r;
    *ret_enabled = config->http && strcmp(config->http, "enabled") == 0;
    tls_config_free(config);
    return 0;
}

/* Opens or closes the plain HTTP port as the policy says. Returns 0 or a negative errno. */
static int follow_http_support(struct service *s, bool enabled, char *err, size_t err_len)
{
    int r;

    if (enabled && !s->plain_listener) {
        r = http_server_listen(s->http, opt.bind, (unsigned)opt.http_port, NULL, &s->plain_listener,
                               err, err_len);
        if (r < 0)
            return r;
        log_info("Serving plain HTTP on port %u (http_support enabled)",
                 http_listener_port(s->plain_listener));
    } else if (!enabled && s->plain_listener) {
        /* Requests under way on it still get their answers; new connections are refused. */
        http_listener_close(s->plain_listener);
        s->plain_listener = NULL;
        log_info("Closed the plain HTTP port (http_support disabled)");
    }
    return 0;
}

/* --- signals --- */

/* SIGHUP: the new context swapped in, and the plain port opened or closed as the file says. */
static int reload(void *data, char *err, size_t err_len)
{
    struct service *s = data;
    bool http_enabled = false;
    int r;

    if ((r = read_http_setting(&http_enabled, err, err_len)) < 0 ||
        (r = tls_holder_reload(s->holder, err, err_len)) < 0 ||
        (r = follow_http_support(s, http_enabled, err, err_len)) < 0)
        return r;
    log_info("Reloaded %s", opt.config);
    return 0;
}

static int run(struct service *s)
{
    const struct http_callbacks callbacks = {api_handle, api_error_body, &s->api};
    struct http_limits limits;
    bool http_enabled = false;
    char err[1024];
    int status = 1;

    if (service_runtime_watch_signals(&s->rt, reload, s, NULL) < 0)
        goto out;
    if (read_http_setting(&http_enabled, err, sizeof(err)) < 0 ||
        tls_holder_new(opt.config, TLS_ROLE_SERVER, &s->holder, err, sizeof(err)) < 0) {
        log_error("%s", err);
        goto out;
    }
    if (control_async_new(s->api.base, opt.control_socket, &s->api.agent) < 0) {
        log_error("Out of memory");
        goto out;
    }
    http_limits_default(&limits);
    limits.max_head = API_MAX_HEAD;
    limits.max_body = API_MAX_BODY;
    limits.max_conns = API_MAX_CONNS;
    limits.max_conns_per_address = (unsigned)opt.max_conns_per_address;
    limits.request_timeout = (int)opt.request_timeout;
    limits.idle_timeout = (int)opt.request_timeout;
    if (http_server_new(s->api.base, &limits, &callbacks, &s->http) < 0) {
        log_error("Out of memory");
        goto out;
    }
    if (http_server_listen(s->http, opt.bind, (unsigned)opt.port, s->holder, &s->tls_listener, err,
                           sizeof(err)) < 0 ||
        follow_http_support(s, http_enabled, err, sizeof(err)) < 0) {
        log_error("%s", err);
        goto out;
    }
    log_info("Serving https://%s%s%s:%u/v1/", strchr(opt.bind, ':') ? "[" : "", opt.bind,
             strchr(opt.bind, ':') ? "]" : "", http_listener_port(s->tls_listener));
    service_runtime_ready(&s->rt, "serving HTTPS on port %u%s", http_listener_port(s->tls_listener),
                          s->plain_listener ? " and plain HTTP" : "");
    status = service_runtime_run(&s->rt);
out:
    /* The server first: it drops the calls still waiting for the agent, which cancel theirs. */
    http_server_free(s->http);
    control_async_free(s->api.agent);
    tls_holder_free(s->holder);
    return status;
}

int main(int argc, char **argv)
{
    static struct service service;
    int status;

    /* Request bodies carry keys and Basic headers passwords: jansson and libevent wipe what
     * they free (lib/secure_alloc.h). Before anything is allocated. */
    secure_alloc_install();
    parse(argc, argv);
    if (service_runtime_open(&service.rt, PROGRAM, LOG_INFO) < 0)
        return 1;
    service.api.base = service.rt.base;
    status = run(&service);
    service_runtime_close(&service.rt);
    return status;
}
