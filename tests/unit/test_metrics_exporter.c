/*
 * Unit tests for the metrics exporter's pure part: Prometheus text from an agent reply. The
 * service's source is compiled in (the services are programs, not libraries), so its static
 * functions can be tested as they are. Its HTTP server is lib/http_server.c (test_http_server.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

#include "../../services/metrics_exporter/render.c"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static json_t *load(const char *text)
{
    json_error_t error;
    json_t *value = json_loads(text, 0, &error);

    if (!value)
        fail_msg("bad test JSON: %s", error.text);
    return value;
}

static char *render_text(const char *reply_text)
{
    json_t *reply = load(reply_text);
    size_t len = 0;
    char *text = render_metrics(reply, &len);

    json_decref(reply);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

static void assert_contains(const char *text, const char *needle)
{
    if (!strstr(text, needle))
        fail_msg("missing %s in:\n%s", needle, text);
}

static void certificates_become_expiry_and_info_samples(void **state)
{
    char *text = render_text(
        "{\"certificates\": [{\"name\": \"proxy\", \"path\": \"/s/proxy/3/cert.pem\", "
        "\"current_path\": \"/s/proxy/current/cert.pem\", "
        "\"not_after\": 1800000000, \"seconds_left\": -5, \"origin\": \"user-provided\", "
        "\"generation\": 3}, {\"name\": \"broken\"}], "
        "\"cluster\": {\"cluster\": \"prod\", \"node\": \"n1\", \"store\": \"local\"}}");

    (void)state;
    assert_contains(text, "# HELP node_cert_expiration_seconds ");
    assert_contains(text, "# TYPE node_cert_expiration_seconds gauge\n");
    /* Expired: negative, as Redis Enterprise reports it. */
    assert_contains(text, "node_cert_expiration_seconds{cluster=\"prod\",node=\"n1\",logical_name="
                          "\"proxy\",path=\"/s/proxy/current/cert.pem\"} -5\n");
    /* Redis Enterprise's v2 name, the same samples. */
    assert_contains(text, "node_cert_expires_in_seconds{cluster=\"prod\",node=\"n1\",logical_name="
                          "\"proxy\",path=\"/s/proxy/current/cert.pem\"} -5\n");
    assert_contains(text,
                    "certvisor_certificate_expiry_timestamp_seconds{name=\"proxy\"} 1800000000\n");
    assert_contains(
        text,
        "certvisor_certificate_info{name=\"proxy\",origin=\"user-provided\",generation=\"3\"} 1\n");
    /* An entry without its fields is left out, not guessed. */
    assert_null(strstr(text, "broken\"}"));
    assert_contains(text, "certvisor_up 1\n");
    free(text);
}

static void label_values_are_escaped(void **state)
{
    char *text = render_text("{\"services\": [{\"name\": \"p\", \"state\": \"RUNNING\", "
                             "\"stats\": {\"databases\": {\"a\\\"b\\\\c\\nd\": "
                             "{\"connections\": 2, \"bytes_in\": 1.5, \"errors\": -1, "
                             "\"handshakes\": \"many\"}}}}]}");

    (void)state;
    assert_contains(text,
                    "certvisor_proxy_connections{service=\"p\",database=\"a\\\"b\\\\c\\nd\"} 2\n");
    assert_contains(
        text, "certvisor_proxy_bytes_received_total{service=\"p\",database=\"a\\\"b\\\\c\\nd\"} "
              "1.5\n");
    /* Negative and non-numeric counts are dropped; their families are still declared. */
    assert_contains(text, "# TYPE certvisor_proxy_errors_total counter\n");
    assert_null(strstr(text, "certvisor_proxy_errors_total{"));
    assert_null(strstr(text, "certvisor_proxy_handshakes_total{"));
    free(text);
}

static void service_state_is_one_hot_over_the_agent_states(void **state)
{
    char *text = render_text("{\"service_states\": [\"STOPPED\", \"RUNNING\", \"FATAL\"], "
                             "\"services\": [{\"name\": \"web\", \"state\": \"FATAL\", \"pid\": 0, "
                             "\"uptime_seconds\": 0, \"restarts\": 4, \"crashes\": 3}]}");

    (void)state;
    assert_contains(text, "certvisor_service_up{service=\"web\"} 0\n");
    assert_contains(text, "certvisor_service_state{service=\"web\",state=\"STOPPED\"} 0\n");
    assert_contains(text, "certvisor_service_state{service=\"web\",state=\"RUNNING\"} 0\n");
    assert_contains(text, "certvisor_service_state{service=\"web\",state=\"FATAL\"} 1\n");
    assert_contains(text, "certvisor_service_restarts_total{service=\"web\"} 4\n");
    assert_contains(text, "# TYPE certvisor_service_restarts_total counter\n");
    assert_contains(text, "certvisor_service_crashes_total{service=\"web\"} 3\n");
    /* Without stats, no proxy families at all. */
    assert_null(strstr(text, "certvisor_proxy_"));
    free(text);
}

static void no_change_yet_means_no_last_apply_sample(void **state)
{
    char *before =
        render_text("{\"apply\": {\"at\": 0, \"ok\": false, \"applied\": 0, \"failed\": 0}}");
    char *after = render_text(
        "{\"apply\": {\"at\": 1700000000, \"ok\": false, \"applied\": 2, \"failed\": 1}}");

    (void)state;
    assert_contains(before, "# TYPE certvisor_last_apply_success gauge\n");
    assert_null(strstr(before, "\ncertvisor_last_apply_success "));
    assert_null(strstr(before, "\ncertvisor_last_apply_timestamp_seconds "));
    assert_contains(before, "certvisor_applies_total{result=\"applied\"} 0\n");
    assert_contains(after, "\ncertvisor_last_apply_timestamp_seconds 1700000000\n");
    assert_contains(after, "\ncertvisor_last_apply_success 0\n");
    assert_contains(after, "certvisor_applies_total{result=\"failed\"} 1\n");
    free(before);
    free(after);
}

static void the_cluster_store_is_reported_on_etcd_only(void **state)
{
    char *local = render_text("{\"cluster\": {\"cluster\": \"prod\", \"node\": \"n1\", "
                              "\"store\": \"local\"}}");
    char *etcd = render_text(
        "{\"cluster\": {\"cluster\": \"prod\", \"node\": \"n1\", \"store\": \"etcd\", "
        "\"reachable\": true, \"has_leader\": false, \"revision\": 42, \"alive\": [\"n1\", "
        "\"n2\", \"n3\"], \"seconds_since_sync\": 1.5, \"applied_revision\": 40, "
        "\"apply_error\": \"proxy did not come back\", \"reads_stale\": \"no quorum\"}}");

    (void)state;
    assert_null(strstr(local, "certvisor_cluster_"));
    assert_contains(etcd, "certvisor_cluster_store_reachable{cluster=\"prod\",node=\"n1\"} 1\n");
    assert_contains(etcd, "certvisor_cluster_store_has_leader{cluster=\"prod\",node=\"n1\"} 0\n");
    assert_contains(etcd, "certvisor_cluster_store_revision{cluster=\"prod\",node=\"n1\"} 42\n");
    assert_contains(etcd, "certvisor_cluster_nodes_alive{cluster=\"prod\",node=\"n1\"} 3\n");
    assert_contains(etcd, "certvisor_cluster_seconds_since_sync{cluster=\"prod\",node=\"n1\"} 1.5");
    assert_contains(etcd, "certvisor_cluster_applied_revision{cluster=\"prod\",node=\"n1\"} 40\n");
    assert_contains(etcd, "certvisor_cluster_apply_failing{cluster=\"prod\",node=\"n1\"} 1\n");
    assert_contains(etcd, "certvisor_cluster_reads_stale{cluster=\"prod\",node=\"n1\"} 1\n");
    free(local);
    free(etcd);
}

static void ocsp_is_reported_while_enabled_or_held(void **state)
{
    char *off = render_text("{\"ocsp\": {\"enabled\": false, \"cert_status\": \"NONE\", "
                            "\"next_update\": 0, \"queries\": 0, \"failures\": 0}}");
    char *revoked =
        render_text("{\"ocsp\": {\"enabled\": true, \"cert_status\": \"REVOKED\", \"next_update\": "
                    "1800000000, \"queries\": 7, \"failures\": 2}}");

    (void)state;
    assert_null(strstr(off, "certvisor_ocsp_"));
    assert_contains(revoked, "certvisor_ocsp_cert_status{status=\"REVOKED\"} 1\n");
    assert_contains(revoked, "certvisor_ocsp_cert_status{status=\"GOOD\"} 0\n");
    assert_contains(revoked, "certvisor_ocsp_cert_status{status=\"NONE\"} 0\n");
    assert_contains(revoked, "certvisor_ocsp_revoked 1\n");
    assert_contains(revoked, "certvisor_ocsp_next_update_timestamp_seconds 1800000000\n");
    assert_contains(revoked, "certvisor_ocsp_queries_total{result=\"ok\"} 5\n");
    assert_contains(revoked, "certvisor_ocsp_queries_total{result=\"failed\"} 2\n");
    free(off);
    free(revoked);
}

static void unavailable_is_a_comment_and_up_zero(void **state)
{
    size_t len = 0;
    char *text = render_unavailable("no agent\nhere", &len);

    (void)state;
    assert_non_null(text);
    assert_string_equal(text, "# certvisor-metrics-exporter: no metrics from the agent: no agent "
                              "here\n"
                              "# HELP certvisor_up Whether the agent answered this scrape (1) or "
                              "not (0).\n"
                              "# TYPE certvisor_up gauge\n"
                              "certvisor_up 0\n");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(certificates_become_expiry_and_info_samples),
        cmocka_unit_test(label_values_are_escaped),
        cmocka_unit_test(the_cluster_store_is_reported_on_etcd_only),
        cmocka_unit_test(ocsp_is_reported_while_enabled_or_held),
        cmocka_unit_test(service_state_is_one_hot_over_the_agent_states),
        cmocka_unit_test(no_change_yet_means_no_last_apply_sample),
        cmocka_unit_test(unavailable_is_a_comment_and_up_zero),
    };
    return cmocka_run_group_tests_name("metrics_exporter", tests, NULL, NULL);
}
