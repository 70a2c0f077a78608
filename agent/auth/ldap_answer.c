/* The answer of certvisor-ldap-check, read as outside input: the directory's words (a DN, its
 * groups, an error) pass through it. */
#include "ldap_signin.h"

#include <stdio.h>
#include <string.h>

void ldap_answer_clear(struct ldap_answer *answer)
{
    json_decref(answer->groups);
    memset(answer, 0, sizeof(*answer));
}

void ldap_answer_parse(const char *text, size_t len, struct ldap_answer *answer)
{
    json_t *root =
        len <= LDAP_ANSWER_MAX ? json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    const char *result = json_string_value(json_object_get(root, "result"));
    const char *dn = json_string_value(json_object_get(root, "dn"));
    const char *error = json_string_value(json_object_get(root, "error"));
    json_t *groups = json_object_get(root, "groups"), *group;
    size_t i;

    memset(answer, 0, sizeof(*answer));
    answer->result = LDAP_SIGNIN_UNAVAILABLE;
    if (!result) {
        snprintf(answer->error, sizeof(answer->error),
                 "certvisor-ldap-check gave no answer (%zu bytes that are not one)", len);
        goto out;
    }
    snprintf(answer->error, sizeof(answer->error), "%s", error ? error : "");
    if (strcmp(result, "ok") == 0) {
        if (!dn || !*dn || strlen(dn) >= sizeof(answer->dn) || !json_is_array(groups)) {
            snprintf(answer->error, sizeof(answer->error),
                     "certvisor-ldap-check answered ok without a DN or groups");
            goto out;
        }
        json_array_foreach(groups, i, group)
        {
            if (!json_is_string(group) || json_string_length(group) > 1024 ||
                strlen(json_string_value(group)) != json_string_length(group)) {
                snprintf(answer->error, sizeof(answer->error),
                         "certvisor-ldap-check answered a group that is not a DN");
                goto out;
            }
        }
        snprintf(answer->dn, sizeof(answer->dn), "%s", dn);
        answer->groups = json_incref(groups);
        answer->result = LDAP_SIGNIN_OK;
    } else if (strcmp(result, "denied") == 0) {
        answer->result = LDAP_SIGNIN_DENIED;
    } else if (strcmp(result, "unavailable") != 0) {
        snprintf(answer->error, sizeof(answer->error),
                 "certvisor-ldap-check answered an unknown result");
    }
out:
    json_decref(root);
}
