/* Dependency ordering of services: a stable topological sort over their 'after' lists. */
#include "deps.h"

#include "cv_error.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int deps_find(struct service_config *const *services, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(services[i]->name, name) == 0)
            return (int)i;
    return -1;
}

static int check_known(struct service_config *const *services, size_t n, char *err, size_t err_len)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t d = 0; d < services[i]->n_after; d++) {
            if (deps_find(services, n, services[i]->after[d]) < 0) {
                snprintf(err, err_len, "%s:%d: service '%s': after: unknown service '%s'",
                         services[i]->source_file, services[i]->source_line, services[i]->name,
                         services[i]->after[d]);
                return CV_ECONFIG;
            }
        }
    }
    return 0;
}

/* Follows unsorted dependencies from start until a service repeats, and prints that loop. */
static void describe_cycle(struct service_config *const *services, size_t n, const bool *placed,
                           size_t start, char *err, size_t err_len)
{
    size_t *path = calloc(n + 1, sizeof(size_t));
    size_t len = 0, current = start, first = 0;
    int written;

    if (!path) {
        snprintf(err, err_len, "dependency cycle involving '%s'", services[start]->name);
        return;
    }
    for (;;) {
        bool seen = false;

        for (size_t i = 0; i < len; i++) {
            if (path[i] == current) {
                first = i;
                seen = true;
            }
        }
        if (seen)
            break;
        path[len++] = current;
        for (size_t d = 0; d < services[current]->n_after; d++) {
            int dep = deps_find(services, n, services[current]->after[d]);

            if (!placed[dep]) {
                current = (size_t)dep;
                break;
            }
        }
    }
    written =
        snprintf(err, err_len, "%s:%d: dependency cycle: ", services[path[first]]->source_file,
                 services[path[first]]->source_line);
    for (size_t i = first; i < len && written > 0 && (size_t)written < err_len; i++)
        written +=
            snprintf(err + written, err_len - (size_t)written, "%s -> ", services[path[i]]->name);
    if (written > 0 && (size_t)written < err_len)
        snprintf(err + written, err_len - (size_t)written, "%s", services[path[first]]->name);
    free(path);
}

int deps_sort(struct service_config *const *services, size_t n, size_t *ret_order, char *err,
              size_t err_len)
{
    bool *placed;
    size_t count = 0;
    int r = check_known(services, n, err, err_len);

    if (r < 0)
        return r;
    placed = calloc(n ? n : 1, sizeof(bool));
    if (!placed)
        return -ENOMEM;
    /* Repeatedly take the first unplaced service whose dependencies are all placed:
     * quadratic, and n is the handful of services on a node. */
    while (count < n) {
        bool progress = false;

        for (size_t i = 0; i < n && !progress; i++) {
            bool ready = !placed[i];

            for (size_t d = 0; ready && d < services[i]->n_after; d++)
                ready = placed[deps_find(services, n, services[i]->after[d])];
            if (ready) {
                placed[i] = true;
                ret_order[count++] = i;
                progress = true;
            }
        }
        if (!progress) {
            for (size_t i = 0; i < n; i++) {
                if (!placed[i]) {
                    describe_cycle(services, n, placed, i, err, err_len);
                    break;
                }
            }
            free(placed);
            return CV_ECONFIG;
        }
    }
    free(placed);
    return 0;
}
