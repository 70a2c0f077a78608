/* The listening sockets: one per worker and address, kept across reloads while an address is used.
 */
#include "generation.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The kernel caps it at net.core.somaxconn; ask for plenty for bursts of new connections. */
#define LISTEN_BACKLOG 4096

static bool same_address(const struct net_address *a, const struct net_address *b)
{
    return a->len == b->len && memcmp(&a->addr, &b->addr, a->len) == 0;
}

static void set_free(struct listener_set *set, size_t n_workers)
{
    for (size_t w = 0; w < n_workers; w++)
        if (set->fds[w] >= 0)
            close(set->fds[w]);
    free(set->fds);
    free(set);
}

struct listener_set *listeners_find(const struct listener_table *table,
                                    const struct net_address *address)
{
    for (struct listener_set *set = table->sets; set; set = set->next)
        if (same_address(&set->address, address))
            return set;
    return NULL;
}

struct listener_set *listener_set_new(const struct listener_table *table,
                                      const struct net_address *address)
{
    struct listener_set *set = calloc(1, sizeof(*set));

    if (!set || !(set->fds = malloc(table->n_workers * sizeof(int)))) {
        free(set);
        return NULL;
    }
    set->address = *address;
    net_address_format((const struct sockaddr *)&address->addr, address->len, set->name,
                       sizeof(set->name));
    for (size_t w = 0; w < table->n_workers; w++)
        set->fds[w] = -1;
    return set;
}

int listeners_open_missing(const struct listener_table *table, struct listener_set *set)
{
    for (size_t w = 0; w < table->n_workers; w++) {
        if (set->fds[w] >= 0)
            continue;
        set->fds[w] = net_listen(&set->address, NET_LISTEN_REUSEPORT, LISTEN_BACKLOG);
        if (set->fds[w] < 0) {
            int r = set->fds[w];

            set->fds[w] = -1;
            return r;
        }
    }
    return 0;
}

int listeners_claim(struct listener_table *table, const struct net_address *address,
                    struct listener_set **ret_set)
{
    struct listener_set *set = listeners_find(table, address);
    int r;

    if (set) {
        *ret_set = set;
        return 0;
    }
    /* Refuse a port another process listens on, rather than joining its SO_REUSEPORT group. */
    r = net_probe_free(address);
    if (r < 0)
        return r;
    set = listener_set_new(table, address);
    if (!set)
        return -ENOMEM;
    r = listeners_open_missing(table, set);
    if (r < 0) {
        set_free(set, table->n_workers);
        return r;
    }
    set->next = table->sets;
    table->sets = set;
    *ret_set = set;
    return 0;
}

static bool used_by(const struct listener_set *set, const struct generation *gen)
{
    for (size_t i = 0; gen && i < gen->n; i++)
        if (gen->dbs[i].listener == set)
            return true;
    return false;
}

void listeners_prune(struct listener_table *table, const struct generation *keep)
{
    struct listener_set **link = &table->sets;

    while (*link) {
        struct listener_set *set = *link;

        if (used_by(set, keep)) {
            link = &set->next;
        } else {
            *link = set->next;
            set_free(set, table->n_workers);
        }
    }
}
