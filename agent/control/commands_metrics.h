/* The handler of the "metrics" command: the agent's state, as the metrics exporter reads it. */
#ifndef CERTVISOR_COMMANDS_METRICS_H
#define CERTVISOR_COMMANDS_METRICS_H

#include "agent.h"
#include "control.h"

#include <jansson.h>

/*
 * Answers with what the agent holds in memory (plus the current certificates' expiry,
 * parsed once per stored file):
 *   {"exit": 0,
 *    "agent": {"version", "start_time", "pid"},
 *    "time": now,
 *    "service_states": [every state name, in the state machine's order],
 *    "certificates": [{"name", "path", "not_after", "seconds_left", "origin",
 *                      "generation"}...],
 *    "services": [{"name", "state", "pid", "uptime_seconds", "restarts"[, "stats"]}...],
 *    "apply": {"at", "ok", "applied", "failed"},
 *    "cluster": {...}, "ocsp": {"enabled", "cert_status", "next_update", "queries", "failures"}}
 * Times are Unix seconds; "at" is 0 before the first change. Only certificates
 * that are set are listed, the cluster CA ("cluster_ca") last.
 */
void handle_metrics(struct agent *agent, struct control_conn *conn, json_t *args, json_t *options);

#endif
