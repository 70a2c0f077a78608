/* The agent's "metrics" reply as Prometheus text (exposition format 0.0.4). */
#ifndef CERTVISOR_METRICS_RENDER_H
#define CERTVISOR_METRICS_RENDER_H

#include <jansson.h>
#include <stddef.h>

#define RENDER_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/*
 * Renders a reply of the agent's "metrics" command (agent/control/commands_metrics.h),
 * with certvisor_up 1. Fields that are missing or of the wrong type are left
 * out, never guessed. Returns the text (malloc'd) and its length, or NULL
 * when out of memory.
 */
char *render_metrics(const json_t *reply, size_t *ret_len);

/*
 * The text for when the agent did not answer: reason as a comment, then
 * certvisor_up 0. Returns the text (malloc'd) and its length, or NULL.
 */
char *render_unavailable(const char *reason, size_t *ret_len);

#endif
