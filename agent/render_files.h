/* Writing the rendered TLS files of services: from the store's current generations and the policy.
 */
#ifndef CERTVISOR_RENDER_FILES_H
#define CERTVISOR_RENDER_FILES_H

#include "certs.h"
#include "policy.h"
#include "service_config.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Renders every tls section of service and writes each file whose bytes
 * differ from what is on disk (atomically, 0640, group when not -1); an
 * unchanged render is not rewritten. *ret_changed tells whether any file
 * changed. Returns 0, or a negative error with a message naming the service,
 * the certificate and the problem.
 */
int render_files_write(struct certs *certs, const struct policy *policy,
                       const struct service_config *service, gid_t group, bool *ret_changed,
                       char *err, size_t err_len);

#endif
