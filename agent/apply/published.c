/* The callers of a change published to the cluster's store (published.h). */
#include "published.h"

#include "audit.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

struct published_answer {
    apply_done_fn done;
    void *data;
    char who[320];
    char what[2048];
    json_t *changes;
    char warning[640];
};

struct published_answers {
    struct agent *agent;
    struct published_answers **list; /* where it is tracked, or NULL */
    struct published_answers *next;
    size_t n;
    struct published_answer items[BATCH_MAX];
};

struct published_answers *published_answers_new(struct agent *agent,
                                                struct apply_request *const *requests, size_t n,
                                                char (*what)[2048])
{
    struct published_answers *answers = calloc(1, sizeof(*answers));

    if (!answers)
        return NULL;
    answers->agent = agent;
    for (size_t i = 0; i < n && answers->n < BATCH_MAX; i++) {
        struct published_answer *item = &answers->items[answers->n];

        if (requests[i]->answered)
            continue;
        item->done = requests[i]->done;
        item->data = requests[i]->data;
        snprintf(item->who, sizeof(item->who), "%s", requests[i]->who);
        snprintf(item->what, sizeof(item->what), "%s", what[i]);
        snprintf(item->warning, sizeof(item->warning), "%s", requests[i]->warning);
        item->changes = json_incref(requests[i]->changes);
        answers->n++;
    }
    return answers;
}

void published_answers_track(struct published_answers *answers, struct published_answers **list,
                             struct apply_request *const *requests, size_t n)
{
    answers->list = list;
    answers->next = *list;
    *list = answers;
    for (size_t i = 0; i < n; i++) {
        requests[i]->done = NULL;
        requests[i]->answered = true;
    }
}

void published_answers_free(struct published_answers *answers)
{
    if (!answers)
        return;
    for (size_t i = 0; i < answers->n; i++)
        json_decref(answers->items[i].changes);
    free(answers);
}

static void untrack(struct published_answers *answers)
{
    for (struct published_answers **at = answers->list; at && *at; at = &(*at)->next)
        if (*at == answers) {
            *at = answers->next;
            break;
        }
}

void published_answers_done(void *data, int exit_status, json_t *reply)
{
    struct published_answers *answers = data;

    untrack(answers);
    for (size_t i = 0; i < answers->n; i++) {
        struct published_answer *item = &answers->items[i];
        json_t *copy = json_deep_copy(reply);

        if (exit_status == 0)
            audit_record(answers->agent->audit, item->who,
                         "changed %s: published to the cluster; applied on every node",
                         *item->what ? item->what : "nothing");
        else
            log_info("Apply: the change of %s published to the cluster: %s", item->who,
                     json_string_value(json_object_get(reply, "error")) ?: "failed");
        if (copy) {
            json_object_set(copy, "changes", item->changes);
            json_object_set_new(copy, "warning", json_string(item->warning));
            json_object_set_new(copy, "services", json_array());
        }
        if (item->done)
            item->done(item->data, exit_status, copy);
        else
            json_decref(copy);
    }
    json_decref(reply);
    published_answers_free(answers);
}

void published_answers_forget(struct published_answers *list, void *data)
{
    for (; list; list = list->next)
        for (size_t i = 0; i < list->n; i++)
            if (list->items[i].data == data)
                list->items[i].done = NULL;
}
