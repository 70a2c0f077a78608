/*
 * Fuzzes the two ends of a directory sign-in: the answer certvisor-ldap-check sends the agent
 * (agent/auth/ldap_answer.c), which carries what the directory said, and the request the helper
 * reads (services/ldap_check/request.c) with the filters and DNs it builds from a user name.
 * The first byte picks which.
 */
#include "fuzz_util.h"
#include "ldap_check.h"
#include "ldap_signin.h"

#include <stdlib.h>
#include <string.h>

static void answer(const uint8_t *data, size_t size)
{
    struct ldap_answer a;

    ldap_answer_parse((const char *)data, size, &a);
    if (a.result == LDAP_SIGNIN_OK && (!a.dn[0] || !json_is_array(a.groups)))
        fuzz_fail("an ok answer without a DN or groups");
    if (a.result != LDAP_SIGNIN_OK && a.groups)
        fuzz_fail("groups kept from an answer that is not ok");
    ldap_answer_clear(&a);
}

static void request(const uint8_t *data, size_t size)
{
    json_t *root = json_loadb((const char *)data, size, 0, NULL);
    struct ldap_check_request req;
    char err[256];

    if (root && ldap_check_request_parse(root, &req, err, sizeof(err)) == 0) {
        char *filter = ldap_check_expand(req.user_filter, 'u', req.user, 1);

        if (!req.uris || !req.user || req.timeout < 1 || req.timeout > 60)
            fuzz_fail("a request taken without what it needs");
        /* A name the helper takes leaves the filter's parentheses as they were. */
        if (filter && ldap_check_name_ok(req.user)) {
            size_t open = 0, close = 0, open_before = 0, close_before = 0;

            for (const char *p = filter; *p; p++)
                open += *p == '(', close += *p == ')';
            for (const char *p = req.user_filter; *p; p++)
                open_before += *p == '(', close_before += *p == ')';
            if (open != open_before || close != close_before)
                fuzz_fail("a user name changed the filter's structure");
        }
        free(filter);
    }
    json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        answer(data + 1, size - 1);
    else
        request(data + 1, size - 1);
    return 0;
}
