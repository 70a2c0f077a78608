/* Unit tests for the certificate table (agent/pki/cert_names.c): its list and its invariants. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cert_names.h"

#include <string.h>

static void the_list_names_every_entry_in_order(void **state)
{
    (void)state;
    assert_string_equal(cert_names_list(),
                        "api, cm, proxy, syncer, metrics_exporter, ccs_internode_encryption, "
                        "data_internode_encryption, ldap_client, mtls_trusted_ca, ldap_server_ca");
    /* The same buffer each time: built once. */
    assert_ptr_equal(cert_names_list(), cert_names_list());
}

static void lookup_finds_each_name_and_nothing_else(void **state)
{
    (void)state;
    for (size_t i = 0; i < cert_names_count; i++)
        assert_ptr_equal(cert_name_lookup(cert_names[i].name), &cert_names[i]);
    assert_null(cert_name_lookup("cluster_ca"));
    assert_null(cert_name_lookup("API"));
    assert_null(cert_name_lookup(""));
}

static void the_entries_hold_together(void **state)
{
    bool seen_optional = false;

    (void)state;
    for (size_t i = 0; i < cert_names_count; i++) {
        const struct cert_name *e = &cert_names[i];

        assert_non_null(e->description);
        assert_true(strlen(e->description) > 0);
        /* Only what the agent can re-issue is required: deleting it would leave nothing. */
        if (e->required)
            assert_true(e->generated);
        /* Generated ones first, as the header promises. */
        if (!e->generated)
            seen_optional = true;
        else
            assert_false(seen_optional);
        /* A CA bundle is the only kind without a key. */
        assert_int_equal(e->has_key, e->purpose != CERT_PURPOSE_CA_BUNDLE);
    }
    assert_int_equal(cert_name_lookup("syncer")->purpose, CERT_PURPOSE_CLIENT);
    assert_false(cert_name_lookup("ldap_client")->required);
    assert_string_equal(cert_name_lookup("proxy")->description, "Database endpoints");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_list_names_every_entry_in_order),
        cmocka_unit_test(lookup_finds_each_name_and_nothing_else),
        cmocka_unit_test(the_entries_hold_together),
    };
    return cmocka_run_group_tests_name("cert_names", tests, NULL, NULL);
}
