/* Asking the agent for its "metrics" over the control socket, without blocking the event loop. */
#ifndef CERTVISOR_METRICS_SCRAPE_H
#define CERTVISOR_METRICS_SCRAPE_H

#include <event2/event.h>
#include <jansson.h>

struct scraper;

/*
 * Called once per request: with the agent's reply (borrowed: valid during the
 * call) and error NULL, or with reply NULL and a one-line reason.
 */
typedef void (*scrape_fn)(void *data, json_t *reply, const char *error);

/*
 * A scraper for the control socket at socket_path; each query must be
 * answered within timeout_ms, or fails.
 */
int scraper_new(struct event_base *base, const char *socket_path, int timeout_ms,
                struct scraper **ret_scraper);

/* Drops the query under way; its requests are never called back. */
void scraper_free(struct scraper *scraper);

/*
 * Asks for the agent's state; fn is called from the event loop when it is
 * known (never before this returns). Requests made while
 * a query is under way share its answer, so the agent sees one query however
 * many scrapers ask at once. Returns 0, or -ENOMEM (fn is not called).
 */
int scraper_request(struct scraper *scraper, scrape_fn fn, void *data);

#endif
