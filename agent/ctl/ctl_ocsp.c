/* certvisorctl's side of the "cluster ocsp ..." commands: printing their answers. */
#include "ctl_ocsp.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* "name: value" for every field of object, in its order; booleans as enabled/disabled; an empty
 * string (a time the answer does not have, no error) is left out. */
static void print_fields(json_t *object, const char *const *skip)
{
    const char *key;
    json_t *value;

    json_object_foreach(object, key, value)
    {
        bool skipped = false;

        for (const char *const *s = skip; *s && !skipped; s++)
            skipped = strcmp(*s, key) == 0;
        if (skipped)
            continue;
        if (json_is_string(value) && json_string_length(value))
            printf("%s: %s\n", key, json_string_value(value));
        else if (json_is_boolean(value))
            printf("%s: %s\n", key, json_is_true(value) ? "enabled" : "disabled");
        else if (json_is_integer(value))
            printf("%s: %lld\n", key, (long long)json_integer_value(value));
    }
}

void ctl_print_ocsp_reply(const char *command, json_t *reply)
{
    static const char *const none[] = {NULL};
    /* The status's own fields, as the REST API has them; the rest is certvisor's. */
    static const char *const counters[] = {"queries", "failures", NULL};
    json_t *status = json_object_get(reply, "status");
    const char *error = json_string_value(json_object_get(reply, "error"));

    if (strcmp(command, "cluster ocsp config") == 0)
        print_fields(json_object_get(reply, "config"), none);
    else if (status)
        print_fields(status, counters);
    if (error)
        fprintf(stderr, "certvisorctl: %s\n", error);
}
