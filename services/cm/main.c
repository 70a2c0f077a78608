/*
 * certvisor-cm: the node's admin console. It serves the console's static
 * files over HTTPS and forwards /v1/ requests to the REST API, so that the
 * browser talks to one origin and authenticates to the API itself (HTTP Basic,
 * sent by the page with every request; the console holds no credentials).
 *
 *   certvisor-cm --config FILE --www DIR [--api-ca FILE] [--port PORT] [--bind ADDRESS]
 *                [--api HOST:PORT] [--api-server-name NAME] [--api-timeout SECONDS]
 *
 * TLS comes from the file certvisord renders (the cm certificate, the control
 * plane's policy). The API is reached over TLS and verified against --api-ca,
 * or by default against the ca_file of that file: cm's tls section says
 * 'trust = api', so the agent renders the api's current certificate there
 * (pinned: see upstream.h) and reloads cm whenever it changes.
 * READY=1 once listening. SIGHUP builds a new TLS context and swaps it in,
 * with the notify protocol's handshake (lib/service/service_runtime.h): a TLS
 * reload that fails ends the service with status 1, so that the agent rolls
 * the change back, and so does a trust for the API that does not load. The
 * same SIGHUP re-reads --www; if that fails the old files stay (with a
 * warning): they are not what the agent is changing. SIGTERM or SIGINT: STOPPING=1, then exit 0.
 */
#include "console.h"
#include "http_server.h"
#include "log.h"
#include "secure_alloc.h"
#include "service_runtime.h"
#include "static_files.h"
#include "tls_config.h"
#include "tls_context.h"
#include "upstream.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROGRAM "certvisor-cm"

static struct {
    const char *config;
    const char *bind;
    const char *www;
    const char *api;
    const char *api_ca;
    const char *api_server_name;
    long port;
    long api_timeout;
} opt = {.bind = "0.0.0.0", .api = "127.0.0.1:9443", .port = 8443, .api_timeout = 180};

struct cm {
    struct service_runtime rt;
    struct tls_context_holder *holder;
    struct upstream *upstream;
    struct console *console;
    struct http_server *http;
    struct http_listener *listener;
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: " PROGRAM " --config FILE --www DIR [options]\n"
            "  --config FILE            the TLS file certvisord renders for this service\n"
            "  --www DIR                the console's static files (index.html, app.js, ...)\n"
            "  --api-ca FILE            certificates to verify the REST API with (default: the\n"
            "                           ca_file of --config, where the agent renders the api's)\n"
            "  --port PORT              serve https://ADDRESS:PORT/ (default 8443; 0: any free "
            "port)\n"
            "  --bind ADDRESS           IPv4 or IPv6 address to listen on (default 0.0.0.0)\n"
            "  --api HOST:PORT          the REST API (default 127.0.0.1:9443)\n"
            "  --api-server-name NAME   the name the API's certificate must have (default: HOST)\n"
            "  --api-timeout SECONDS    how long a forwarded request may take (default 180)\n"
            "SIGHUP reloads the TLS file and the API's trust (a failure ends the service,\n"
            "status 1), and --www.\n");
}

static void parse(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"port", required_argument, NULL, 'p'},
        {"bind", required_argument, NULL, 'b'},
        {"www", required_argument, NULL, 'w'},
        {"api", required_argument, NULL, 'a'},
        {"api-ca", required_argument, NULL, 'C'},
        {"api-server-name", required_argument, NULL, 'n'},
        {"api-timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
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
        case 'w':
            opt.www = optarg;
            break;
        case 'a':
            opt.api = optarg;
            break;
        case 'C':
            opt.api_ca = optarg;
            break;
        case 'n':
            opt.api_server_name = optarg;
            break;
        case 't':
            opt.api_timeout = service_option_number(PROGRAM, "--api-timeout", optarg, 1, 3600);
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind < argc || !opt.config || !opt.www) {
        usage(stderr);
        exit(2);
    }
}

/* --- signals --- */

/*
 * What the REST API's certificate is checked against: --api-ca, or else the
 * trust the agent renders into --config (cm's tls section says 'trust = api':
 * the api's current certificate, so that an operator's replacement of it is
 * followed). Returns a malloc'd path, or NULL with err.
 */
static char *api_trust_file(char *err, size_t err_len)
{
    struct tls_config *config;
    char *path;

    if (opt.api_ca) {
        path = strdup(opt.api_ca);
        if (!path)
            snprintf(err, err_len, "out of memory");
        return path;
    }
    if (tls_config_read(opt.config, &config, err, err_len) < 0)
        return NULL;
    path = config->ca_file ? strdup(config->ca_file) : NULL;
    if (!path)
        snprintf(err, err_len,
                 config->ca_file ? "out of memory"
                                 : "%s names no ca_file to check the REST API's certificate "
                                   "with: give --api-ca, or 'trust = api' in cm's tls section",
                 opt.config);
    tls_config_free(config);
    return path;
}

static void reload_extras(struct cm *cm)
{
    struct static_files *files = NULL;
    char err[1024];

    if (static_files_load(opt.www, &files, err, sizeof(err)) < 0)
        log_warning("Keeping the previous console files: %s", err);
    else
        console_set_files(cm->console, files);
}

/* SIGHUP: the TLS context first, which must succeed; then the console's own files. */
static int reload(void *data, char *err, size_t err_len)
{
    struct cm *cm = data;

    char *api_trust;
    int r;

    if (tls_holder_reload(cm->holder, err, err_len) < 0)
        return -1;
    /* The agent reloads cm when the api's certificate changes: the new trust must load. */
    api_trust = api_trust_file(err, err_len);
    r = api_trust ? upstream_reload(cm->upstream, api_trust, err, err_len) : -EINVAL;
    free(api_trust);
    if (r < 0)
        return r;
    reload_extras(cm);
    log_info("Reloaded %s", opt.config);
    return 0;
}

/* --- running --- */

/*
 * Limits for a browser: heads big enough for the cookies other services on
 * the same host may set, bodies big enough for a certificate chain and its key
 * (the API applies its own, smaller, limit), connections kept a little while.
 */
static void console_limits(struct http_limits *limits)
{
    http_limits_default(limits);
    limits->max_head = 32 * 1024;
    limits->max_body = 2 * 1024 * 1024;
    limits->max_conns = 128;
    limits->max_conns_per_address = 32; /* browsers open up to 6 per host */
    limits->request_timeout = 60;
    limits->idle_timeout = 30;
    limits->write_timeout = 60;
}

static int start(struct cm *cm)
{
    struct http_callbacks callbacks = {.handler = console_on_request,
                                       .error_body = console_error_body};
    struct static_files *files = NULL;
    struct http_limits limits;
    char err[1024], *api_trust = NULL;

    if (tls_holder_new(opt.config, TLS_ROLE_SERVER, &cm->holder, err, sizeof(err)) < 0 ||
        static_files_load(opt.www, &files, err, sizeof(err)) < 0 ||
        !(api_trust = api_trust_file(err, sizeof(err))) ||
        upstream_new(cm->rt.base, opt.api, opt.api_server_name, api_trust, (int)opt.api_timeout,
                     &cm->upstream, err, sizeof(err)) < 0) {
        log_error("%s", err);
        static_files_free(files);
        free(api_trust);
        return -1;
    }
    free(api_trust);
    if (console_new(files, cm->upstream, &cm->console) < 0) {
        static_files_free(files);
        log_error("Out of memory");
        return -1;
    }
    callbacks.data = cm->console;
    console_limits(&limits);
    if (http_server_new(cm->rt.base, &limits, &callbacks, &cm->http) < 0) {
        log_error("Out of memory");
        return -1;
    }
    if (http_server_listen(cm->http, opt.bind, (unsigned)opt.port, cm->holder, &cm->listener, err,
                           sizeof(err)) < 0) {
        log_error("%s", err);
        return -1;
    }
    log_info("Serving the console (%zu files from %s) on https://%s%s%s:%u/, forwarding /v1/ to "
             "https://%s",
             static_files_count(files), opt.www, strchr(opt.bind, ':') ? "[" : "", opt.bind,
             strchr(opt.bind, ':') ? "]" : "", http_listener_port(cm->listener),
             upstream_address(cm->upstream));
    return 0;
}

static int run(struct cm *cm)
{
    int status = 1;

    if (service_runtime_watch_signals(&cm->rt, reload, cm, NULL) < 0 || start(cm) < 0)
        goto out;
    service_runtime_ready(&cm->rt, "serving the console on port %u",
                          http_listener_port(cm->listener));
    status = service_runtime_run(&cm->rt);
out:
    /* The server first: it abandons the forwards under way, which cancel their exchanges. */
    http_server_free(cm->http);
    console_free(cm->console);
    upstream_free(cm->upstream);
    tls_holder_free(cm->holder);
    return status;
}

int main(int argc, char **argv)
{
    struct cm cm = {0};
    int status;

    /* The console passes sign-in passwords and uploaded keys on to the API: libevent and
     * jansson wipe what they free (lib/secure_alloc.h). Before anything is allocated. */
    secure_alloc_install();
    parse(argc, argv);
    if (service_runtime_open(&cm.rt, PROGRAM, LOG_INFO) < 0)
        return 1;
    status = run(&cm);
    service_runtime_close(&cm.rt);
    return status;
}
