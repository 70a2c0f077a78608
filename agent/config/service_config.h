/* One service's settings from a conf.d section: the libconfuse table, validation, conversion. */
#ifndef CERTVISOR_SERVICE_CONFIG_H
#define CERTVISOR_SERVICE_CONFIG_H

#include "expand.h"
#include "render.h"
#include "restart_policy.h"

#include <confuse.h>
#include <stdbool.h>
#include <stddef.h>

/* Where a stream goes. AUTO means the journal under systemd, the service's log file otherwise. */
enum output_target_kind { OUTPUT_AUTO, OUTPUT_JOURNAL, OUTPUT_FILE, OUTPUT_NULL };

struct output_target {
    enum output_target_kind kind;
    char *path; /* OUTPUT_FILE and OUTPUT_AUTO: the log file */
};

struct service_config {
    char *name;
    char *source_file; /* the conf.d file and the line of the section, for messages */
    int source_line;
    char **argv; /* command and arguments, NULL-terminated; argv[0] is the absolute command */
    char *user;  /* NULL: the agent's own user */
    char *group; /* NULL: the user's primary group */
    char **environment; /* "KEY=value", NULL-terminated */
    char *directory;
    char **after; /* names of services this one starts after, NULL-terminated */
    size_t n_after;
    bool autostart;
    int *exit_codes; /* the expected exit statuses */
    size_t n_exit_codes;
    int stop_signal;
    int reload_signal; /* 0: the service cannot reload and is restarted instead */
    /*
     * Sent when its binary was replaced (an upgrade): the service starts the new binary
     * itself, hands it its sockets, and the new process announces MAINPID=. 0: restarted.
     */
    int upgrade_signal;
    /*
     * The command that reloads it (argv, NULL-terminated, argv[0] absolute),
     * run to completion like systemd's ExecReload; NULL when none. Never set
     * together with reload_signal.
     */
    char **reload_argv;
    struct fsm_policy policy;
    struct output_target stdout_target;
    struct output_target stderr_target;
    struct tls_spec *tls; /* the TLS configurations rendered for it, one per "tls" section */
    size_t n_tls;
    char *databases_output; /* where the database list is rendered for it, or NULL */
    char *replicas_output;  /* where the replica databases are rendered for it (syncer), or NULL */
    char *state_directory;  /* made (0750, the service's user and group) before each start */
    char *fingerprint; /* every setting in one string; equal fingerprints mean equal settings */
};

/* The libconfuse options of a "service <name> { ... }" section. */
extern cfg_opt_t service_config_options[];

/* Installs the per-option validators on a parsed-into cfg (call before cfg_parse). */
void service_config_set_validators(cfg_t *cfg);

/*
 * Builds a service_config from a section parsed from source_file. vars->name is set to the
 * section's title here. default_user and default_group apply when the section
 * names none (may be NULL). Returns 0, or CV_ECONFIG with a message in err.
 */
int service_config_from_cfg(cfg_t *section, const char *source_file, struct expand_vars *vars,
                            const char *default_user, const char *default_group,
                            struct service_config **ret_config, char *err, size_t err_len);

void service_config_free(struct service_config *config);

/* True when the service can take a change in place: it has a reload signal or a reload command. */
bool service_config_can_reload(const struct service_config *config);

/* Parses "TERM", "SIGTERM" or a number. Returns the signal or -EINVAL. */
int signal_parse(const char *word);

/* Returns "TERM" for SIGTERM and so on, or NULL. */
const char *signal_word(int signo);

#endif
