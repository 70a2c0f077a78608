/* Asking the agent for its "metrics" over the control socket, without blocking the event loop. */
#include "scrape.h"

#include "control_async.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct waiter {
    struct waiter *next;
    scrape_fn fn;
    void *data;
};

struct scraper {
    struct control_async *client;
    int timeout_ms;
    struct control_call *query; /* under way, or NULL */
    struct waiter *waiters, **waiters_tail;
};

/* Answers everyone who waits for the query that just ended. */
static void on_answer(void *data, json_t *reply, const char *error)
{
    struct scraper *scraper = data;
    struct waiter *waiters = scraper->waiters;
    const char *refusal = NULL;
    char reason[600];

    /* Detached first: a callback may ask again, which starts a new query. */
    scraper->query = NULL;
    scraper->waiters = NULL;
    scraper->waiters_tail = &scraper->waiters;
    if (reply &&
        (json_integer_value(json_object_get(reply, "exit")) != 0 ||
         !json_is_integer(json_object_get(reply, "exit")) || json_object_get(reply, "error"))) {
        refusal = json_string_value(json_object_get(reply, "error"));
        snprintf(reason, sizeof(reason), "the agent refused the metrics command: %s",
                 refusal ? refusal : "no reason given");
        error = reason;
        reply = NULL;
    }
    while (waiters) {
        struct waiter *next = waiters->next;

        waiters->fn(waiters->data, reply, error);
        free(waiters);
        waiters = next;
    }
}

int scraper_new(struct event_base *base, const char *socket_path, int timeout_ms,
                struct scraper **ret_scraper)
{
    struct scraper *scraper = calloc(1, sizeof(*scraper));

    if (!scraper || control_async_new(base, socket_path, &scraper->client) < 0) {
        free(scraper);
        return -ENOMEM;
    }
    scraper->timeout_ms = timeout_ms;
    scraper->waiters_tail = &scraper->waiters;
    *ret_scraper = scraper;
    return 0;
}

void scraper_free(struct scraper *scraper)
{
    if (!scraper)
        return;
    control_async_free(scraper->client); /* the query under way is never called back */
    while (scraper->waiters) {
        struct waiter *next = scraper->waiters->next;

        free(scraper->waiters);
        scraper->waiters = next;
    }
    free(scraper);
}

int scraper_request(struct scraper *scraper, scrape_fn fn, void *data)
{
    struct waiter *waiter = calloc(1, sizeof(*waiter));
    json_t *request;
    int r;

    if (!waiter)
        return -ENOMEM;
    if (!scraper->query) {
        request = json_pack("{s:s, s:[], s:{}}", "command", "metrics", "args", "options");
        r = request ? control_async_call(scraper->client, request, scraper->timeout_ms, on_answer,
                                         scraper, &scraper->query)
                    : -ENOMEM;
        json_decref(request);
        if (r < 0) {
            free(waiter);
            return r;
        }
    }
    waiter->fn = fn;
    waiter->data = data;
    *scraper->waiters_tail = waiter;
    scraper->waiters_tail = &waiter->next;
    return 0;
}
