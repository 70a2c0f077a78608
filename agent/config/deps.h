/* Dependency ordering of services: a stable topological sort over their 'after' lists. */
#ifndef CERTVISOR_DEPS_H
#define CERTVISOR_DEPS_H

#include "service_config.h"

#include <stddef.h>

/*
 * Fills ret_order (n entries) with service indices such that every service
 * comes after everything it names in 'after'; among independent services the
 * file order is kept. Returns 0, or CV_ECONFIG with a message naming the
 * unknown dependency or the cycle ("a -> b -> a") in err.
 */
int deps_sort(struct service_config *const *services, size_t n, size_t *ret_order, char *err,
              size_t err_len);

/* Returns the index of the service called name, or -1. */
int deps_find(struct service_config *const *services, size_t n, const char *name);

#endif
