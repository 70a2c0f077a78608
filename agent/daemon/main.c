/* certvisord: the node agent's entry point: options, start-up, the event loop, orderly exit. */
#include "apply.h"
#include "audit.h"
#include "certs.h"
#include "config.h"
#include "control.h"
#include "daemon.h"
#include "external.h"
#include "render_files.h"
#include "renewal.h"
#include "stapling.h"
#include "users.h"
#include "cv_error.h"
#include "log.h"
#include "notify.h"
#include "offload.h"
#include "procscan.h"
#include "cluster_node.h"
#include "sync.h"
#include "reexec.h"
#include "sdnotify.h"
#include "secure_alloc.h"
#include "service.h"
#include "supervisor.h"

#include <event2/event.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Two workers: a sign-in is not held up behind one key generation (agent/core/offload.c). */
#define OFFLOAD_THREADS 2

#ifndef CERTVISOR_VERSION
#define CERTVISOR_VERSION "0.0.0"
#endif

struct options {
    const char *config_path;
    char *prefix; /* absolute, malloc'd */
    bool check_only;
    int reexec_state_fd; /* --reexec-state: what the previous binary handed over, or -1 */
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: certvisord [-c FILE] [--prefix DIR] [--check]\n"
            "\n"
            "The certvisor node agent: supervises the node's services, in dependency order,\n"
            "with readiness over its own NOTIFY_SOCKET. It runs in the foreground (under\n"
            "systemd as Type=notify) and is driven with certvisorctl(8).\n"
            "\n"
            "  -c, --config FILE   main configuration file (default %s)\n"
            "  -p, --prefix DIR    use DIR as the prefix of the state, runtime and log paths\n"
            "                      (overrides 'prefix' in the file)\n"
            "  -t, --check         check the configuration, list the services in start order\n"
            "                      and exit\n"
            "  -h, --help          show this help\n"
            "  -V, --version       show the version\n"
            "\n"
            "Signals: SIGHUP re-reads the configuration; SIGUSR2 re-executes the binary\n"
            "(certvisorctl daemon-reexec), keeping every service running; SIGTERM or SIGINT\n"
            "stops every service in reverse dependency order, then exits. See certvisord(8).\n",
            CERTVISOR_DEFAULT_CONFIG);
}

static int parse_options(int argc, char **argv, struct options *opts)
{
    static const struct option long_options[] = {{"config", required_argument, NULL, 'c'},
                                                 {"prefix", required_argument, NULL, 'p'},
                                                 {"check", no_argument, NULL, 't'},
                                                 {"help", no_argument, NULL, 'h'},
                                                 {"version", no_argument, NULL, 'V'},
                                                 {"reexec-state", required_argument, NULL, 'R'},
                                                 {NULL, 0, NULL, 0}};
    char *end;
    long fd;
    int c;

    opts->config_path = CERTVISOR_DEFAULT_CONFIG;
    opts->reexec_state_fd = -1;
    while ((c = getopt_long(argc, argv, "c:p:thV", long_options, NULL)) != -1) {
        switch (c) {
        case 'c':
            opts->config_path = optarg;
            break;
        case 'p':
            /* Relative to where the command runs, as any path on a command line. */
            opts->prefix = realpath(optarg, NULL);
            if (!opts->prefix) {
                fprintf(stderr, "certvisord: --prefix %s: %s\n", optarg, strerror(errno));
                return -1;
            }
            break;
        case 't':
            opts->check_only = true;
            break;
        case 'R':
            /* Internal: only a re-exec passes it (certvisord(8), "RE-EXECUTION"). */
            errno = 0;
            fd = strtol(optarg, &end, 10);
            if (errno || *end || fd < 3 || fd > INT_MAX) {
                fprintf(stderr, "certvisord: --reexec-state %s: not a descriptor number\n", optarg);
                return -1;
            }
            opts->reexec_state_fd = (int)fd;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("certvisord %s\n", CERTVISOR_VERSION);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "certvisord: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return -1;
    }
    return 0;
}

/* Descriptors 0-2 must exist, or a pipe could land on them and a child would inherit it. */
static void ensure_standard_fds(void)
{
    int fd;

    while ((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) >= 0 && fd <= 2)
        fcntl(fd, F_SETFD, 0);
    if (fd > 2)
        close(fd);
}

static void on_signal(evutil_socket_t signo, short what, void *arg)
{
    struct agent *agent = arg;
    struct apply_request *request;

    (void)what;
    switch (signo) {
    case SIGCHLD:
        supervisor_reap(agent->supervisor);
        break;
    case SIGTERM:
    case SIGINT:
        log_info("Received %s: shutting down", signo == SIGTERM ? "SIGTERM" : "SIGINT");
        agent_shutdown(agent);
        break;
    case SIGUSR2:
        reexec_on_signal(agent);
        break;
    case SIGHUP:
        if (agent->shutting_down) {
            log_notice("Received SIGHUP while shutting down: ignored");
            break;
        }
        log_info("Received SIGHUP: reloading the configuration");
        request = apply_config();
        if (!request) {
            log_error("Cannot reload the configuration: out of memory");
            break;
        }
        agent_reload_started(agent);
        apply_submit(agent, request, "SIGHUP", false, NULL, NULL);
        break;
    }
}

static int setup_signals(struct agent *agent)
{
    static const int signals[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR2};

    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < 5; i++) {
        agent->signal_events[i] = evsignal_new(agent->base, signals[i], on_signal, agent);
        if (!agent->signal_events[i] || event_add(agent->signal_events[i], NULL) < 0)
            return -1;
    }
    return 0;
}

/*
 * Creates the run-time services in dependency order and asks for the autostart ones; a
 * process the previous agent left running (it died, the services did not) or the previous
 * binary handed over (a re-exec) is taken over instead of started again.
 */
static int adopt_services(struct agent *agent)
{
    const struct service_records *handed_over = reexec_records(agent->reexec);
    uint64_t began = monotonic_usec();
    size_t adopted;
    int r = supervisor_take_config(agent->supervisor, agent->config, NULL);

    if (r < 0)
        return r;
    if (handed_over)
        adopted = supervisor_adopt_records(agent->supervisor, handed_over,
                                           "kept across the agent's re-exec");
    else
        adopted = supervisor_adopt(agent->supervisor);
    reexec_adopted(agent->reexec, adopted);
    if (handed_over)
        log_notice("Kept %zu running service%s across the re-exec in %.1f ms", adopted,
                   adopted == 1 ? "" : "s", (double)(monotonic_usec() - began) / 1000.0);
    else if (adopted)
        log_notice("Adopted %zu running service%s from the previous agent in %.1f ms", adopted,
                   adopted == 1 ? "" : "s", (double)(monotonic_usec() - began) / 1000.0);
    return 0;
}

/* After the loop: nothing the agent started may outlive it. */
static void reap_everything(void)
{
    int status;

    procscan_signal_children(getpid(), SIGKILL);
    while (waitpid(-1, &status, 0) > 0 || errno == EINTR)
        ;
}

static void agent_free(struct agent *agent)
{
    cluster_join_stop(agent);
    cluster_node_stop(agent);
    supervisor_free(agent->supervisor);
    control_server_free(agent->control);
    /* Before what its jobs' callbacks free into: they run (cancelled) here. */
    offload_free(agent->offload);
    external_watch_free(agent);
    renewal_free(agent);
    stapling_free(agent);
    apply_free_all(agent);
    certs_free(agent->certs);
    users_free(agent->users);
    audit_free(agent->audit);
    notify_server_free(agent->notify);
    reexec_free(agent->reexec);
    sdnotify_free(agent);
    for (size_t i = 0; i < 5; i++)
        if (agent->signal_events[i])
            event_free(agent->signal_events[i]);
    if (agent->base)
        event_base_free(agent->base);
    config_free(agent->config);
}

/*
 * Before any service starts: the node's certificates (made on first start),
 * the runtime policy overrides, and every service's rendered TLS files.
 */
static int prepare_tls(struct agent *agent)
{
    struct agent_config *config = agent->config;
    char err[1024];
    int made = 0, r;

    r = certs_open(config->state_dir, config_service_gid(config), &agent->certs, err, sizeof(err));
    if (r == 0)
        r = certs_bootstrap(agent->certs, &config->certs, &made, err, sizeof(err));
    if (r < 0) {
        log_error("Cannot prepare the node's certificates: %s", err);
        return -1;
    }
    /* After the stores' recovery: it audits a change the last run committed but did not finish. */
    r = audit_open(config->state_dir, agent->certs, agent->offload, &agent->audit, err,
                   sizeof(err));
    if (r < 0) {
        log_error("Cannot open the audit log: %s", err);
        return -1;
    }
    if (made)
        log_notice("Generated %d certificates; the cluster CA is %s", made,
                   agent->certs->ca_export_path);
    r = config_load_runtime_policy(config, err, sizeof(err));
    if (r < 0) {
        log_error("Cannot use the runtime policy: %s", err);
        return -1;
    }
    r = users_open(config->state_dir, &agent->users, err, sizeof(err));
    if (r < 0) {
        log_error("Cannot read the REST API's users: %s", err);
        return -1;
    }
    for (size_t i = 0; i < config->n_services; i++) {
        struct render_inputs inputs = {agent->certs, &config->policy, NULL, config->databases,
                                       config->n_databases};
        bool changed;

        r = render_files_write(&inputs, config->services[i], config_service_gid(config), &changed,
                               err, sizeof(err));
        if (r < 0) {
            log_error("Cannot render the TLS configuration: %s", err);
            return -1;
        }
    }
    return 0;
}

static int start_agent(struct agent *agent)
{
    char err[512];
    int r;

    agent->started_at = time(NULL);
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        log_warning("Cannot become a child subreaper: %s", strerror(errno));
    agent->base = event_base_new();
    agent_set_hooks(agent);
    agent->hooks.config_swapped = cluster_node_reconfigured;
    if (!agent->base || reexec_attach(agent->reexec, agent) < 0) {
        log_error("Cannot set up the event loop");
        return -1;
    }
    /* sdnotify_init() learns whether the agent runs under systemd, which the supervisor is told. */
    if (!agent->base || setup_signals(agent) < 0 || sdnotify_init(agent) < 0 ||
        supervisor_new(agent->base, agent->config, agent->under_systemd,
                       (struct supervisor_observer){agent_on_services_changed, agent},
                       &agent->supervisor) < 0 ||
        offload_new(agent->base, OFFLOAD_THREADS, &agent->offload) < 0) {
        log_error("Cannot set up the event loop");
        return -1;
    }
    /* The control socket first: it refuses to start when another agent answers, before
     * anything of that agent's (its notify socket) is touched. */
    r = control_server_new(agent, reexec_take_control_fd(agent->reexec), &agent->control, err,
                           sizeof(err));
    if (r < 0) {
        log_error("Cannot open the control socket: %s", err);
        return -1;
    }
    /* The clients that were between requests when the previous binary re-executed. */
    for (int fd; (fd = reexec_take_conn_fd(agent->reexec)) >= 0;)
        control_server_adopt(agent->control, fd);
    r = notify_server_new(agent->base, agent->config->notify_socket,
                          reexec_take_notify_fd(agent->reexec), supervisor_on_notify,
                          agent->supervisor, &agent->notify);
    if (r < 0) {
        log_error("Cannot listen on the notify socket %s: %s", agent->config->notify_socket,
                  strerror(-r));
        return -1;
    }
    supervisor_set_notify(agent->supervisor, agent->notify);
    if (prepare_tls(agent) < 0)
        return -1;
    if (adopt_services(agent) < 0 || control_server_start(agent->control) < 0 ||
        renewal_start(agent) < 0 || stapling_start(agent) < 0 || external_watch_start(agent) < 0) {
        log_error("Cannot set up the services");
        return -1;
    }
    cluster_node_start(agent);
    log_info("certvisord %s started: %zu services, control socket %s", CERTVISOR_VERSION,
             supervisor_count(agent->supervisor), agent->config->control_socket);
    supervisor_schedule(agent->supervisor); /* its observer sends READY once all is up */
    return 0;
}

int main(int argc, char **argv)
{
    struct agent agent = {0};
    struct options opts = {0};
    char *error = NULL;
    int r;

    ensure_standard_fds();
    /* Before any JSON value or event buffer exists: what carried a key or a password is
     * wiped when jansson or libevent frees it (lib/secure_alloc.h). */
    secure_alloc_install();
    /* The agent will hold private keys: a non-dumpable process leaves no core (and
     * cannot be ptraced by its own user). It is reset at exec, so services keep theirs. */
    prctl(PR_SET_DUMPABLE, 0);
    if (parse_options(argc, argv, &opts) < 0) {
        free(opts.prefix);
        return 2;
    }
    /* Before anything opens a descriptor: what a re-exec handed over, and nothing else. */
    if (reexec_new(argc, argv, opts.check_only ? -1 : opts.reexec_state_fd, &agent.reexec) < 0) {
        fprintf(stderr, "certvisord: out of memory\n");
        free(opts.prefix);
        return 1;
    }
    r = config_load(opts.config_path, opts.prefix, &agent.config, &error);
    if (r == 0)
        r = config_check_environment(agent.config, &error);
    if (r < 0) {
        fprintf(stderr, "certvisord: %s\n", error ? error : cv_strerror(r));
        free(error);
        free(opts.prefix);
        config_free(agent.config); /* NULL when the load failed */
        reexec_free(agent.reexec); /* the services it handed over run on, unwatched */
        return 1;
    }
    if (opts.check_only) {
        printf("%s: configuration OK, %zu service%s\n", agent.config->config_path,
               agent.config->n_services, agent.config->n_services == 1 ? "" : "s");
        for (size_t i = 0; i < agent.config->n_services; i++) {
            const struct service_config *service =
                agent.config->services[agent.config->start_order[i]];

            printf("  %-32s %s:%d\n", service->name, service->source_file, service->source_line);
        }
        config_free(agent.config);
        reexec_free(agent.reexec);
        free(opts.prefix);
        return 0;
    }
    agent.prefix_override = opts.prefix;
    if (config_make_directories(agent.config, &error) < 0) {
        fprintf(stderr, "certvisord: %s\n", error ? error : "cannot create directories");
        free(error);
        config_free(agent.config);
        reexec_free(agent.reexec);
        free(opts.prefix);
        return 1;
    }
    r = log_setup("certvisord", agent.config->log_target, agent.config->log_file,
                  agent.config->log_level);
    if (r < 0)
        fprintf(stderr, "certvisord: cannot open the log file %s: %s\n", agent.config->log_file,
                strerror(-r));
    if (start_agent(&agent) == 0) {
        event_base_dispatch(agent.base);
        log_info("certvisord stopped");
    } else {
        /* What runs now was adopted or handed over, not started: the next agent adopts it. */
        log_notice("The services that run are left running for the next agent to adopt");
        agent.exit_status = 1;
    }
    agent_free(&agent);
    if (agent.exit_status == 0)
        reap_everything();
    free(opts.prefix);
    return agent.exit_status;
}
