/*
 * OCSP stapling of the proxy certificate: the agent asks the responder the certificate names,
 * keeps the verified answer beside the certificate's generation, and reloads the services that
 * staple it (the rendered ocsp_response line, agent/render) whenever a new one arrives.
 */
#ifndef CERTVISOR_STAPLING_H
#define CERTVISOR_STAPLING_H

#include "agent.h"

#include <jansson.h>

/*
 * Starts following the proxy certificate: its stored answer is read back at once (and after
 * each rotation), and while ocsp_functionality is enabled the responder is asked every
 * ocsp_query_frequency seconds; after a failure every ocsp_recovery_frequency seconds, at most
 * ocsp_recovery_max_tries times in a row. An answer past its nextUpdate is removed (nothing is
 * stapled then). Returns 0 or -ENOMEM.
 */
int stapling_start(struct agent *agent);
void stapling_free(struct agent *agent);

/* A change was applied (the proxy certificate, the settings): looks at what is due now. */
void stapling_poke(struct agent *agent);

/*
 * The status as the REST API's /v1/ocsp/status has it: cert_status (NONE, GOOD, REVOKED,
 * UNKNOWN), responder_url, produced_at, this_update, next_update, revocation_time (RFC 3339,
 * "" when none), and certvisor's own: error (the last query's failure, or ""), last_query,
 * next_query, queries and failures since start-up.
 */
json_t *stapling_status(struct agent *agent);

/* For the metrics: {"enabled", "cert_status", "next_update" (Unix seconds, 0: none), "queries",
 * "failures"}. */
json_t *stapling_metrics(struct agent *agent);

/*
 * Asks the responder now (whether or not stapling is enabled); done hears exit 0 with the
 * status when an answer verified (it is stored, and stapled at once when enabled), or exit 1
 * with {"error"} naming the responder and the problem.
 */
void stapling_test(struct agent *agent, void (*done)(void *data, int exit_status, json_t *reply),
                   void *data);

/* Whoever waits for a test's answer went away. */
void stapling_forget(struct agent *agent, void *data);

#endif
