/*
 * Unit tests for the REST API's request bodies (services/api/json_body.c): JSON objects, and the
 * repairs that let the documented `sed -z` escaping and pasted PEM through, inside strings only.
 * The service's source is compiled in (the services are programs, not libraries).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

#include "../../services/api/json_body.c"

#define KEY_LINES "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----"

static json_t *parse(const char *text, struct json_body_error *error)
{
    return json_body_parse(text, strlen(text), error);
}

static char *repair(const char *text, size_t *ret_len)
{
    char *out = json_body_repair(text, strlen(text), ret_len);

    assert_non_null(out);
    return out;
}

static void assert_key(json_t *body, const char *member, const char *expected)
{
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, member)), expected);
}

static void valid_json_is_taken_as_it_is(void **state)
{
    struct json_body_error error;
    json_t *body = parse("{\"name\": \"api\", \"key\": \"a\\\\nb\\\"c\"}", &error);

    (void)state;
    assert_key(body, "key", "a\\nb\"c");
    json_decref(body);
}

/* What sed -z 's/\n/\\\n/g' makes of a key, read by $(...): a backslash before each line break,
 * and one left before the closing quote. */
static void the_documented_sed_escaping_is_read_as_line_breaks(void **state)
{
    struct json_body_error error;
    json_t *body = parse("{ \"name\": \"api\", \"key\": \"-----BEGIN PRIVATE KEY-----\\\n"
                         "MIGHAgEAMBMGByqGSM49\\\n-----END PRIVATE KEY-----\\\", "
                         "\"certificate\": \"x\" }",
                         &error);

    (void)state;
    assert_key(body, "key", KEY_LINES "\n");
    assert_key(body, "certificate", "x");
    json_decref(body);
    /* The last value of the object, and with CR LF line breaks. */
    body = parse("{\"key\": \"-----BEGIN PRIVATE KEY-----\\\r\nMIGHAgEAMBMGByqGSM49\\\r\n"
                 "-----END PRIVATE KEY-----\\\" }",
                 &error);
    assert_key(body, "key", KEY_LINES "\n");
    json_decref(body);
}

static void pem_pasted_between_the_quotes_is_read_as_it_is(void **state)
{
    struct json_body_error error;
    json_t *body = parse("{\"key\": \"" KEY_LINES "\n\", \"note\": \"a\tb\x01\"}", &error);

    (void)state;
    assert_key(body, "key", KEY_LINES "\n");
    assert_key(body, "note", "a\tb\x01");
    json_decref(body);
}

static void repairs_stay_inside_strings(void **state)
{
    size_t len;
    char *out;

    (void)state;
    /* Line breaks between members are JSON's own whitespace: left alone. */
    out = repair("{\n\"a\": \"x\ny\",\n\"b\": 1\n}", &len);
    assert_string_equal(out, "{\n\"a\": \"x\\ny\",\n\"b\": 1\n}");
    assert_int_equal(len, strlen(out));
    free(out);
    /* An escaped quote that does not end a PEM value stays an escaped quote. */
    out = repair("{\"a\": \"say \\\"hi\\\" -----\\\"x\"}", &len);
    assert_string_equal(out, "{\"a\": \"say \\\"hi\\\" -----\\\"x\"}");
    free(out);
}

static void errors_are_those_of_the_body_as_sent(void **state)
{
    struct json_body_error error;

    (void)state;
    assert_null(parse("{\"name\": \"api\",\n  \"key\": }", &error));
    assert_int_equal(error.line, 2);
    assert_int_equal(error.column, 10);
    assert_int_equal(error.position, 26);
    assert_non_null(strstr(error.text, "unexpected token"));
    assert_null(parse("{\"name\": \"api\", \"key\": \"abc", &error)); /* truncated */
    assert_int_equal(error.line, 1);
    assert_true(error.position > 20);
    assert_null(parse("[1, 2]", &error));
    assert_string_equal(error.text, "not a JSON object");
    assert_null(parse("{\"a\": 1, \"a\": 2}", &error));
    assert_non_null(strstr(error.text, "duplicate"));
}

/* DER pasted or encoded into a body: the NUL byte's field is named, non-UTF-8 is said so. */
static void binary_data_in_strings_is_found_and_named(void **state)
{
    static const char raw[] = "{\"name\": \"api\", \"key\": \"0\x01\x00\x02\"}";
    static const char not_utf8[] = "{\"certificate\": \"0\x82\x01\"}";
    struct json_body_error error;

    (void)state;
    assert_null(parse("{\"name\": \"api\", \"certificate\": \"0\\u0000\\u0082\"}", &error));
    assert_true(error.binary);
    assert_string_equal(error.field, "certificate");
    assert_null(parse("{\"certificates\": [{\"name\": \"a\"}, {\"key\": \"\\u0000\"}]}", &error));
    assert_string_equal(error.field, "certificates[1].key");
    /* A raw NUL byte, as a shell or a client may send one, is found too. */
    assert_null(json_body_parse(raw, sizeof(raw) - 1, &error));
    assert_true(error.binary);
    assert_string_equal(error.field, "key");
    assert_null(json_body_parse(not_utf8, sizeof(not_utf8) - 1, &error));
    assert_true(error.binary);
    assert_string_equal(error.field, "");
    assert_non_null(strstr(error.text, "byte 0x82"));
    /* Text is not binary. */
    assert_null(parse("{\"name\": ", &error));
    assert_false(error.binary);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_json_is_taken_as_it_is),
        cmocka_unit_test(the_documented_sed_escaping_is_read_as_line_breaks),
        cmocka_unit_test(pem_pasted_between_the_quotes_is_read_as_it_is),
        cmocka_unit_test(repairs_stay_inside_strings),
        cmocka_unit_test(errors_are_those_of_the_body_as_sent),
        cmocka_unit_test(binary_data_in_strings_is_found_and_named),
    };
    return cmocka_run_group_tests_name("api_json_body", tests, NULL, NULL);
}
