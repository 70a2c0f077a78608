/* %{variable} expansion in configuration values. */
#include "expand.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const variable_names[] = {"prefix",
                                             "state_dir",
                                             "run_dir",
                                             "log_dir",
                                             "conf_dir",
                                             "libexec_dir",
                                             "console_dir",
                                             "control_socket",
                                             "name",
                                             "cluster",
                                             "node",
                                             "node_address",
                                             "etcd_client_url",
                                             "etcd_peer_url",
                                             "etcd_initial_cluster",
                                             "etcd_initial_cluster_state"};

static int variable_index(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(variable_names) / sizeof(variable_names[0]); i++)
        if (strlen(variable_names[i]) == len && memcmp(variable_names[i], name, len) == 0)
            return (int)i;
    return -1;
}

static const char *variable_value(const struct expand_vars *vars, int index)
{
    const char *values[] = {vars->prefix,
                            vars->state_dir,
                            vars->run_dir,
                            vars->log_dir,
                            vars->conf_dir,
                            vars->libexec_dir,
                            vars->console_dir,
                            vars->control_socket,
                            vars->name,
                            vars->cluster,
                            vars->node,
                            vars->node_address,
                            vars->etcd_client_url,
                            vars->etcd_peer_url,
                            vars->etcd_initial_cluster,
                            vars->etcd_initial_cluster_state};
    return values[index];
}

int expand_check(const char *text, char *err, size_t err_len)
{
    for (const char *p = strstr(text, "%{"); p; p = strstr(p + 2, "%{")) {
        const char *end = strchr(p + 2, '}');

        if (!end) {
            snprintf(err, err_len, "unterminated '%%{' in \"%s\"", text);
            return -EINVAL;
        }
        if (variable_index(p + 2, (size_t)(end - p - 2)) < 0) {
            snprintf(err, err_len,
                     "unknown variable '%%{%.*s}' (known: prefix, state_dir, run_dir, log_dir, "
                     "conf_dir, libexec_dir, console_dir, control_socket, name, cluster, node, "
                     "node_address, etcd_client_url, etcd_peer_url, etcd_initial_cluster, "
                     "etcd_initial_cluster_state)",
                     (int)(end - p - 2), p + 2);
            return -EINVAL;
        }
    }
    return 0;
}

char *expand_string(const char *text, const struct expand_vars *vars)
{
    size_t cap = strlen(text) + 1, len = 0;
    char *out = malloc(cap);

    if (!out)
        return NULL;
    for (const char *p = text; *p;) {
        const char *piece = p;
        size_t piece_len = 1;
        const char *end;
        int index;

        if (p[0] == '%' && p[1] == '{' && (end = strchr(p + 2, '}'))) {
            index = variable_index(p + 2, (size_t)(end - p - 2));
            piece = index >= 0 ? variable_value(vars, index) : NULL;
            if (!piece) {
                free(out);
                return NULL;
            }
            piece_len = strlen(piece);
            p = end + 1;
        } else {
            p++;
        }
        if (len + piece_len + 1 > cap) {
            char *grown;

            cap = (len + piece_len + 1) * 2;
            grown = realloc(out, cap);
            if (!grown) {
                free(out);
                return NULL;
            }
            out = grown;
        }
        memcpy(out + len, piece, piece_len);
        len += piece_len;
    }
    out[len] = '\0';
    return out;
}
