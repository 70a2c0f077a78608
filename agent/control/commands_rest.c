/* The handlers of the commands the REST API needs beyond certvisorctl's (several certificates). */
#include "commands_rest.h"

#include "apply.h"
#include "commands_certs.h"

#include <stdlib.h>

/* As many as there are certificate names (cert_names.c), and a few to report duplicates. */
#define SET_MANY_MAX 16

void handle_cluster_certificate_set_many(struct agent *agent, struct control_conn *conn,
                                         json_t *args, json_t *options)
{
    json_t *list = json_object_get(options, "certificates");
    struct apply_pair_input pairs[SET_MANY_MAX];
    size_t n = json_array_size(list), i;
    json_t *item;

    if (json_array_size(args) != 0 || !json_is_array(list) || n == 0 || n > SET_MANY_MAX) {
        control_reply_refused(conn, 2, "usage",
                              "usage: cluster certificate set-many <name> certificate_file <file> "
                              "[key_file <file>]... (1 to %d certificates)",
                              SET_MANY_MAX);
        return;
    }
    json_array_foreach(list, i, item)
    {
        json_t *name = json_object_get(item, "name");
        json_t *cert = json_object_get(item, "certificate");
        json_t *key = json_object_get(item, "key");

        if (!json_is_string(name) || !json_is_string(cert) || (key && !json_is_string(key))) {
            control_reply_refused(conn, 2, "usage",
                                  "certificate %zu needs a string 'name' and 'certificate', and "
                                  "'key' when given must be a string",
                                  i + 1);
            return;
        }
        pairs[i] = (struct apply_pair_input){
            json_string_value(name), json_string_value(cert), json_string_length(cert),
            key ? json_string_value(key) : NULL, key ? json_string_length(key) : 0};
    }
    commands_submit_change(agent, conn, apply_certificates(pairs, n, "user-provided"), options);
}
