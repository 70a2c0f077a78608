/* The cluster section of certvisor.conf (conf_cluster.h). */
#include "conf_cluster.h"

#include "cv_error.h"
#include "fsutil.h"
#include "join_wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static cfg_opt_t member_options[] = {CFG_STR("address", NULL, CFGF_NODEFAULT),
                                     CFG_INT("client_port", CLUSTER_DEFAULT_CLIENT_PORT, CFGF_NONE),
                                     CFG_INT("peer_port", CLUSTER_DEFAULT_PEER_PORT, CFGF_NONE),
                                     CFG_END()};

cfg_opt_t conf_cluster_options[] = {
    CFG_STR("name", "cluster", CFGF_NONE), CFG_STR("node", NULL, CFGF_NODEFAULT),
    CFG_STR("store", "local", CFGF_NONE),
    CFG_SEC("member", member_options, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES), CFG_END()};

static const char *const store_words[] = {"local", "etcd"};

const char *cluster_store_word(enum cluster_store store)
{
    return store_words[store];
}

int cluster_store_parse(const char *word, enum cluster_store *ret_store)
{
    for (size_t i = 0; word && i < sizeof(store_words) / sizeof(store_words[0]); i++) {
        if (strcmp(word, store_words[i]) == 0) {
            *ret_store = (enum cluster_store)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* A name etcd, a URL and a key path all take as it is: letters, digits, '-', '_', '.'. */
static bool name_ok(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > CLUSTER_NAME_MAX || name[0] == '.' || name[0] == '-')
        return false;
    return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == len;
}

static bool is_ipv6(const char *address)
{
    unsigned char bytes[16];

    return inet_pton(AF_INET6, address, bytes) == 1;
}

static bool is_ip(const char *address)
{
    unsigned char bytes[16];

    return inet_pton(AF_INET, address, bytes) == 1 || is_ipv6(address);
}

void cluster_host_port(const char *address, int port, char *buf, size_t len)
{
    snprintf(buf, len, is_ipv6(address) ? "[%s]:%d" : "%s:%d", address, port);
}

static char *url(const char *address, int port)
{
    char host_port[128], *text;

    cluster_host_port(address, port, host_port, sizeof(host_port));
    return asprintf(&text, "https://%s", host_port) < 0 ? NULL : text;
}

static int read_member(cfg_t *section, const char *source_file, struct cluster_member *out,
                       char *err, size_t err_len)
{
    const char *name = cfg_title(section), *address = cfg_getstr(section, "address");
    long client_port = cfg_getint(section, "client_port"),
         peer_port = cfg_getint(section, "peer_port");

    if (!name_ok(name)) {
        snprintf(err, err_len,
                 "%s: cluster member '%s': a name is 1 to %d letters, digits, '-', '_' or '.'",
                 source_file, name, CLUSTER_NAME_MAX);
        return CV_ECONFIG;
    }
    if (!address || !is_ip(address)) {
        snprintf(err, err_len,
                 "%s: cluster member '%s': address %s%s%s is not an IP address (write the "
                 "member's IPv4 or IPv6 address: the agent resolves no names)",
                 source_file, name, address ? "'" : "", address ? address : "(missing)",
                 address ? "'" : "");
        return CV_ECONFIG;
    }
    if (client_port < 1 || client_port > 65535 || peer_port < 1 || peer_port > 65535 ||
        client_port == peer_port) {
        snprintf(err, err_len,
                 "%s: cluster member '%s': client_port %ld and peer_port %ld must be two "
                 "different ports from 1 to 65535",
                 source_file, name, client_port, peer_port);
        return CV_ECONFIG;
    }
    out->name = strdup(name);
    out->address = strdup(address);
    out->client_port = (int)client_port;
    out->peer_port = (int)peer_port;
    return out->name && out->address ? 0 : -ENOMEM;
}

/* The node's own name when the section gives none: the host's name up to its first dot. */
static char *default_node_name(void)
{
    char host[256] = "";

    if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
        return strdup("node1");
    host[strcspn(host, ".")] = '\0';
    return strdup(name_ok(host) ? host : "node1");
}

/* etcd's --initial-cluster: name=peer URL for every member, in the file's order. */
static char *initial_cluster(const struct cluster_settings *s)
{
    size_t len = 1;
    char *text;

    for (size_t i = 0; i < s->n_members; i++)
        len += strlen(s->members[i].name) + strlen(s->members[i].address) + 32;
    text = calloc(1, len);
    for (size_t i = 0; text && i < s->n_members; i++) {
        char *peer = url(s->members[i].address, s->members[i].peer_port);

        if (!peer) {
            free(text);
            return NULL;
        }
        snprintf(text + strlen(text), len - strlen(text), "%s%s=%s", i ? "," : "",
                 s->members[i].name, peer);
        free(peer);
    }
    return text;
}

static int derive(struct cluster_settings *out, const char *source_file, char *err, size_t err_len)
{
    const struct cluster_member *self = NULL;
    struct cluster_member loopback = {out->node, "127.0.0.1", CLUSTER_DEFAULT_CLIENT_PORT,
                                      CLUSTER_DEFAULT_PEER_PORT};

    for (size_t i = 0; i < out->n_members; i++)
        if (strcmp(out->members[i].name, out->node) == 0)
            self = &out->members[i];
    if (!self && out->store == CLUSTER_STORE_ETCD) {
        char names[256] = "";

        for (size_t i = 0; i < out->n_members; i++)
            snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i ? ", " : "",
                     out->members[i].name);
        snprintf(err, err_len,
                 "%s: cluster: store etcd needs this node ('%s') among the members (%s): set "
                 "node, or add a 'member %s' section with its address",
                 source_file, out->node, out->n_members ? names : "none", out->node);
        return CV_ECONFIG;
    }
    if (!self)
        self = &loopback; /* the local store: the variables still expand, to the loopback */
    out->node_address = strdup(self->address);
    out->client_url = url(self->address, self->client_port);
    out->peer_url = url(self->address, self->peer_port);
    if (out->n_members) {
        out->initial_cluster = initial_cluster(out);
    } else if (asprintf(&out->initial_cluster, "%s=%s", self->name,
                        out->peer_url ? out->peer_url : "") < 0) {
        out->initial_cluster = NULL;
    }
    return out->node_address && out->client_url && out->peer_url && out->initial_cluster ? 0
                                                                                         : -ENOMEM;
}

int conf_cluster_read(cfg_t *cfg, const char *source_file, struct cluster_settings *out, char *err,
                      size_t err_len)
{
    const char *name = cfg ? cfg_getstr(cfg, "name") : "cluster";
    const char *node = cfg ? cfg_getstr(cfg, "node") : NULL;
    const char *store = cfg ? cfg_getstr(cfg, "store") : "local";
    size_t n = cfg ? cfg_size(cfg, "member") : 0;
    int r;

    memset(out, 0, sizeof(*out));
    if (!name_ok(name) || (node && !name_ok(node))) {
        snprintf(err, err_len,
                 "%s: cluster: %s '%s': a name is 1 to %d letters, digits, '-', '_' or '.'",
                 source_file, name_ok(name) ? "node" : "name", name_ok(name) ? node : name,
                 CLUSTER_NAME_MAX);
        return CV_ECONFIG;
    }
    if (cluster_store_parse(store, &out->store) < 0) {
        snprintf(err, err_len, "%s: cluster: store '%s' is not local or etcd", source_file, store);
        return CV_ECONFIG;
    }
    if (n > CLUSTER_MAX_MEMBERS) {
        snprintf(err, err_len, "%s: cluster: %zu members, at most %d (etcd's voters)", source_file,
                 n, CLUSTER_MAX_MEMBERS);
        return CV_ECONFIG;
    }
    out->name = strdup(name);
    out->node = node ? strdup(node) : default_node_name();
    out->members = n ? calloc(n, sizeof(*out->members)) : NULL;
    if (!out->name || !out->node || (n && !out->members)) {
        cluster_settings_free(out);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        r = read_member(cfg_getnsec(cfg, "member", (unsigned)i), source_file, &out->members[i], err,
                        err_len);
        out->n_members++;
        if (r < 0) {
            cluster_settings_free(out);
            return r;
        }
    }
    r = derive(out, source_file, err, err_len);
    if (r < 0)
        cluster_settings_free(out);
    return r;
}

void conf_cluster_membership_path(const char *state_dir, char *buf, size_t len)
{
    snprintf(buf, len, "%s/membership.json", state_dir);
}

int conf_cluster_membership(struct cluster_settings *settings, const char *source_file,
                            const char *state_dir, char *err, size_t err_len)
{
    struct join_membership membership;
    struct cluster_settings joined = {0};
    char path[PATH_MAX], *text = NULL, problem[512];
    size_t len = 0;
    int r;

    conf_cluster_membership_path(state_dir, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0 && errno == ENOENT)
        return 0;
    r = fd < 0 ? -errno : fs_read_all(fd, 16 * 1024, &text, &len);
    if (fd >= 0)
        close(fd);
    if (r < 0) {
        snprintf(err, err_len, "%s: %s (this node's cluster membership): %s", source_file, path,
                 strerror(-r));
        return CV_ECONFIG;
    }
    r = join_membership_decode(text, len, &membership, problem, sizeof(problem));
    free(text);
    if (r < 0) {
        snprintf(err, err_len,
                 "%s: %s: %s (written by 'certvisorctl cluster join'; 'cluster leave' removes it)",
                 source_file, path, problem);
        return CV_ECONFIG;
    }
    if (settings->n_members > 0) {
        snprintf(err, err_len,
                 "%s: this node joined cluster '%s' as '%s' (%s), and the cluster section lists "
                 "members too: remove the members from the section, or leave the cluster "
                 "('certvisorctl cluster leave')",
                 source_file, membership.cluster, membership.node, path);
        return CV_ECONFIG;
    }
    joined.name = strdup(membership.cluster);
    joined.node = strdup(membership.node);
    joined.store = CLUSTER_STORE_ETCD;
    joined.joined = true;
    joined.members = calloc(membership.n_members, sizeof(*joined.members));
    if (!joined.name || !joined.node || !joined.members) {
        cluster_settings_free(&joined);
        return -ENOMEM;
    }
    for (size_t i = 0; i < membership.n_members; i++) {
        struct cluster_member *m = &joined.members[joined.n_members++];

        m->name = strdup(membership.members[i].name);
        m->address = strdup(membership.members[i].address);
        m->client_port = membership.members[i].client_port;
        m->peer_port = membership.members[i].peer_port;
        if (!m->name || !m->address) {
            cluster_settings_free(&joined);
            return -ENOMEM;
        }
    }
    r = derive(&joined, path, err, err_len);
    if (r < 0) {
        cluster_settings_free(&joined);
        return r;
    }
    cluster_settings_free(settings);
    *settings = joined;
    return 0;
}

bool cluster_settings_equal(const struct cluster_settings *a, const struct cluster_settings *b)
{
    if (strcmp(a->name, b->name) != 0 || strcmp(a->node, b->node) != 0 || a->store != b->store ||
        a->n_members != b->n_members || a->joined != b->joined)
        return false;
    for (size_t i = 0; i < a->n_members; i++) {
        const struct cluster_member *x = &a->members[i], *y = &b->members[i];

        if (strcmp(x->name, y->name) != 0 || strcmp(x->address, y->address) != 0 ||
            x->client_port != y->client_port || x->peer_port != y->peer_port)
            return false;
    }
    return true;
}

void cluster_settings_free(struct cluster_settings *settings)
{
    for (size_t i = 0; i < settings->n_members; i++) {
        free(settings->members[i].name);
        free(settings->members[i].address);
    }
    free(settings->members);
    free(settings->name);
    free(settings->node);
    free(settings->node_address);
    free(settings->client_url);
    free(settings->peer_url);
    free(settings->initial_cluster);
    memset(settings, 0, sizeof(*settings));
}
