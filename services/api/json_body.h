/* Request bodies: JSON objects, with the PEM pastes operators make from the documented commands. */
#ifndef CERTVISOR_API_JSON_BODY_H
#define CERTVISOR_API_JSON_BODY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Where and why a body is not JSON: jansson's own account (1-based line and column). */
struct json_body_error {
    int line;
    int column;
    int position; /* bytes from the start */
    char text[160];
    /*
     * Binary data where text belongs (what a DER file pasted or encoded into
     * the body gives): a string holding a NUL byte, named by field ("key",
     * "certificates[0].certificate"), or bytes that are not UTF-8 (field "").
     */
    bool binary;
    char field[64];
};

/*
 * Parses a body as a JSON object (duplicate keys refused). A body that is not
 * JSON as it stands is read once more with the repairs of json_body_repair(),
 * which only touch the inside of strings; if that does not parse either, the
 * error given is the one of the body as sent. A string holding a NUL byte
 * ("\u0000") is refused too: the routes read strings as C strings, and it
 * is binary data, not text. Returns a new reference, or NULL with *error
 * filled (text "not a JSON object" for valid JSON of another type, and the
 * field with the NUL byte, both at line 1, column 1, position 0).
 */
json_t *json_body_parse(const char *body, size_t len, struct json_body_error *error);

/*
 * Rewrites what shells and pastes do to PEM text inside JSON strings into
 * the escapes JSON has, leaving everything outside strings as it is:
 *   - a raw line break, carriage return or tab becomes \n, \r, \t, and any
 *     other control character \u00XX (a PEM pasted between the quotes);
 *   - a backslash before a line break becomes \n: the output of
 *     sed -z 's/\n/\\\n/g', the escaping Redis Enterprise's documents give
 *     for keys, which puts a backslash before every line break;
 *   - that output read by $(...) keeps a backslash after the last
 *     "-----END ...-----" line (the shell drops the last line break), which
 *     would escape the closing quote: a backslash after "-----" and before a
 *     quote that is followed by ',', '}' or ']' (blanks aside) ends the line
 *     and the string.
 * Returns a malloc'd NUL-terminated text (its length in *ret_len), or NULL
 * without memory.
 */
char *json_body_repair(const char *body, size_t len, size_t *ret_len);

#endif
