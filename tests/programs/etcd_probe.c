/*
 * certvisor-etcd-probe: drives the agent's etcd client (agent/cluster/etcd_client.c) from the
 * command line, for the tests against a real etcd. One command per run; each answer is one
 * JSON line on stdout ({"error": -errno, "message"} for a failure, exit status 1).
 *
 *   certvisor-etcd-probe [--endpoint HOST:PORT]... [--ca F --cert F --key F] [--deadline-ms N]
 *       put KEY VALUE | get KEY | prefix PREFIX | txn KEY MOD_REVISION VALUE | status
 *       | lease TTL | watch PREFIX FROM_REVISION EVENTS
 *
 * watch prints every event, every loss of the stream ({"lost": why}) and a compaction
 * ({"compacted": revision}, then exit 3), until EVENTS events were printed.
 */
#include "etcd_client.h"

#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct probe {
    struct event_base *base;
    struct etcd_client *client;
    const char *command;
    long events_wanted;
    long events_seen;
    int status;
};

static void print_json(json_t *object)
{
    char *text = json_dumps(object, JSON_COMPACT);

    printf("%s\n", text ? text : "{}");
    fflush(stdout);
    free(text);
    json_decref(object);
}

static void fail(struct probe *probe, int error, const char *message)
{
    print_json(json_pack("{s:i, s:s}", "error", error, "message", message));
    probe->status = 1;
}

static json_t *kv_json(const struct etcd_kv *kv)
{
    return json_pack("{s:s%, s:s%, s:I, s:I, s:I}", "key", kv->key, kv->key_len, "value",
                     (const char *)kv->value, kv->value_len, "mod_revision",
                     (json_int_t)kv->mod_revision, "create_revision",
                     (json_int_t)kv->create_revision, "lease", (json_int_t)kv->lease);
}

static void on_answer(void *data, const struct etcd_result *result)
{
    struct probe *probe = data;
    struct etcd_error etcd_err;
    char err[512];
    int r;

    event_base_loopbreak(probe->base);
    if (result->error) {
        fail(probe, result->error, result->message);
        return;
    }
    if (strcmp(probe->command, "get") == 0 || strcmp(probe->command, "prefix") == 0) {
        struct etcd_range range;
        json_t *kvs = json_array();

        r = etcd_parse_range(result->body, result->body_len, &range, &etcd_err, err, sizeof(err));
        if (r < 0) {
            fail(probe, r, err);
            json_decref(kvs);
            return;
        }
        for (size_t i = 0; i < range.n_kvs; i++)
            json_array_append_new(kvs, kv_json(&range.kvs[i]));
        print_json(json_pack("{s:I, s:o, s:s}", "revision", (json_int_t)range.header.revision,
                             "kvs", kvs, "endpoint", result->endpoint));
        etcd_range_free(&range);
    } else if (strcmp(probe->command, "put") == 0) {
        struct etcd_header header;

        r = etcd_parse_write(result->body, result->body_len, &header, &etcd_err, err, sizeof(err));
        if (r < 0)
            fail(probe, r, err);
        else
            print_json(json_pack("{s:I, s:s}", "revision", (json_int_t)header.revision, "endpoint",
                                 result->endpoint));
    } else if (strcmp(probe->command, "txn") == 0) {
        struct etcd_header header;
        bool succeeded;

        r = etcd_parse_txn(result->body, result->body_len, &header, &succeeded, &etcd_err, err,
                           sizeof(err));
        if (r < 0)
            fail(probe, r, err);
        else
            print_json(json_pack("{s:I, s:b}", "revision", (json_int_t)header.revision, "succeeded",
                                 succeeded));
    } else if (strcmp(probe->command, "status") == 0) {
        struct etcd_status status;

        r = etcd_parse_status(result->body, result->body_len, &status, &etcd_err, err, sizeof(err));
        if (r < 0)
            fail(probe, r, err);
        else
            print_json(json_pack("{s:s, s:b, s:I}", "version", status.version, "leader",
                                 status.leader != 0, "revision",
                                 (json_int_t)status.header.revision));
    } else if (strcmp(probe->command, "lease") == 0) {
        int64_t id, ttl;

        r = etcd_parse_lease(result->body, result->body_len, &id, &ttl, &etcd_err, err,
                             sizeof(err));
        if (r < 0)
            fail(probe, r, err);
        else
            print_json(json_pack("{s:I, s:I}", "id", (json_int_t)id, "ttl", (json_int_t)ttl));
    }
}

static void on_watch(void *data, enum etcd_watch_state state,
                     const struct etcd_watch_message *message, const char *why)
{
    struct probe *probe = data;

    if (state == ETCD_WATCH_LOST) {
        print_json(json_pack("{s:s}", "lost", why));
        return;
    }
    if (state == ETCD_WATCH_COMPACTED) {
        print_json(json_pack("{s:I, s:s}", "compacted", (json_int_t)message->compact_revision,
                             "why", why));
        probe->status = 3;
        event_base_loopbreak(probe->base);
        return;
    }
    for (size_t i = 0; i < message->n_events; i++) {
        json_t *event = kv_json(&message->events[i].kv);

        json_object_set_new(
            event, "type",
            json_string(message->events[i].type == ETCD_EVENT_PUT ? "PUT" : "DELETE"));
        print_json(event);
        if (++probe->events_seen >= probe->events_wanted)
            event_base_loopbreak(probe->base);
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: certvisor-etcd-probe [--endpoint HOST:PORT]... [--ca F --cert F "
                    "--key F] [--deadline-ms N] put KEY VALUE | get KEY | prefix PREFIX | txn "
                    "KEY MOD_REVISION VALUE | status | lease TTL | watch PREFIX FROM_REVISION "
                    "EVENTS\n");
    return 2;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"endpoint", required_argument, NULL, 'e'},    {"ca", required_argument, NULL, 'a'},
        {"cert", required_argument, NULL, 'c'},        {"key", required_argument, NULL, 'k'},
        {"deadline-ms", required_argument, NULL, 'd'}, {NULL, 0, NULL, 0}};
    struct etcd_client_config config = {0};
    struct probe probe = {0};
    char err[512], end[ETCD_MAX_KEY + 1];
    json_t *request = NULL;
    const char *path = NULL;
    int c;

    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'e':
            if (config.n_endpoints == ETCD_MAX_ENDPOINTS)
                return usage();
            config.endpoints[config.n_endpoints++] = optarg;
            break;
        case 'a':
            config.ca_file = optarg;
            break;
        case 'c':
            config.cert_file = optarg;
            break;
        case 'k':
            config.key_file = optarg;
            break;
        case 'd':
            config.deadline_ms = atoi(optarg);
            break;
        default:
            return usage();
        }
    }
    if (optind >= argc)
        return usage();
    probe.command = argv[optind];
    argc -= optind + 1;
    argv += optind + 1;
    probe.base = event_base_new();
    if (!probe.base || etcd_client_new(probe.base, &config, &probe.client, err, sizeof(err)) < 0) {
        fprintf(stderr, "certvisor-etcd-probe: %s\n", probe.base ? err : "out of memory");
        if (probe.base)
            event_base_free(probe.base);
        return 2;
    }
    if (strcmp(probe.command, "put") == 0 && argc == 2) {
        path = "/v3/kv/put";
        request = etcd_put_request(argv[0], strlen(argv[0]), argv[1], strlen(argv[1]), 0);
    } else if (strcmp(probe.command, "get") == 0 && argc == 1) {
        path = "/v3/kv/range";
        request = etcd_range_request(argv[0], strlen(argv[0]), NULL, 0, 0, false);
    } else if (strcmp(probe.command, "prefix") == 0 && argc == 1 &&
               strlen(argv[0]) <= ETCD_MAX_KEY) {
        size_t end_len = etcd_prefix_end(argv[0], strlen(argv[0]), end);

        path = "/v3/kv/range";
        request = etcd_range_request(argv[0], strlen(argv[0]), end, end_len, 0, false);
    } else if (strcmp(probe.command, "txn") == 0 && argc == 3) {
        struct etcd_compare compare = {argv[0], strlen(argv[0]), strtoll(argv[1], NULL, 10)};
        struct etcd_op put = {ETCD_OP_PUT, argv[0], strlen(argv[0]), argv[2], strlen(argv[2]), 0};

        path = "/v3/kv/txn";
        request = etcd_txn_request(&compare, 1, &put, 1, NULL, 0);
    } else if (strcmp(probe.command, "status") == 0 && argc == 0) {
        path = "/v3/maintenance/status";
        request = json_object();
    } else if (strcmp(probe.command, "lease") == 0 && argc == 1) {
        path = "/v3/lease/grant";
        request = json_pack("{s:s}", "TTL", argv[0]);
    } else if (strcmp(probe.command, "watch") == 0 && argc == 3 &&
               strlen(argv[0]) <= ETCD_MAX_KEY) {
        size_t end_len = etcd_prefix_end(argv[0], strlen(argv[0]), end);

        probe.events_wanted = atol(argv[2]);
        if (!etcd_watch_start(probe.client, argv[0], strlen(argv[0]), end, end_len,
                              strtoll(argv[1], NULL, 10), on_watch, &probe)) {
            fprintf(stderr, "certvisor-etcd-probe: out of memory\n");
            probe.status = 1;
            goto done;
        }
    } else {
        probe.status = usage();
        goto done;
    }
    if (path && !etcd_call(probe.client, path, request, on_answer, &probe)) {
        fprintf(stderr, "certvisor-etcd-probe: cannot make the request (a key too long?)\n");
        probe.status = 1;
        goto done;
    }
    event_base_dispatch(probe.base);
done:
    etcd_client_free(probe.client);
    event_base_free(probe.base);
    return probe.status;
}
