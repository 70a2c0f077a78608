/*
 * certvisor-ldap-check: checks one user's password against the LDAP directory, for certvisord's
 * REST sign-in. The agent runs it on one of its worker threads for each sign-in it has not seen
 * lately, writes the request (a JSON object, passwords included) on its standard input and reads
 * one JSON object back:
 *   {"result": "ok", "dn": ..., "groups": [group DNs]}
 *   {"result": "denied", "error": why}         unknown user, wrong password
 *   {"result": "unavailable", "error": why}    no directory could be asked
 * A process of its own: OpenLDAP's library (and GnuTLS under it) stays out of the agent's
 * memory, and whatever a directory sends cannot crash the node's supervisor.
 */
#include "ldap_check.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROGRAM "certvisor-ldap-check"
#define REQUEST_MAX (64 * 1024)

/*
 * Under LeakSanitizer (the suite's --sanitize run): the certificate and key objects the client
 * library loads for a connection's TLS context are never freed by OpenLDAP 2.5 with GnuTLS,
 * however the connection ends (unbind, the context dropped, the library's own TLS teardown:
 * each was tried). Those leaks are the libraries', once per run of a short-lived process; the
 * rest of this program stays checked.
 */
__attribute__((used)) const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libgnutls.so\nleak:libtasn1.so\nleak:libldap\n";
}

/* ... and said nothing of on every sign-in (its stderr is the agent's log). */
__attribute__((used)) const char *__lsan_default_options(void);
const char *__lsan_default_options(void)
{
    return "print_suppressions=0";
}

static void usage(FILE *out)
{
    fprintf(out, "Usage: " PROGRAM " < request.json\n"
                 "Checks a user's password against an LDAP directory, for certvisord: the request\n"
                 "is a JSON object on standard input (uris, user, password, bind_dn,\n"
                 "bind_password, user_dn_template or user_search_base and user_filter,\n"
                 "group_search_base and group_filter or group_attribute, ca_file, cert_file,\n"
                 "key_file, timeout); the answer is one JSON object on standard output whose\n"
                 "\"result\" is ok, denied or unavailable. Exit status: 0 answered; 2 a bad\n"
                 "request.\n");
}

int main(int argc, char **argv)
{
    static char buf[REQUEST_MAX + 1];
    static const char *const words[] = {"ok", "denied", "unavailable"};
    struct ldap_check_request req;
    json_t *root, *answer;
    json_error_t error;
    char err[256];
    size_t len;
    enum ldap_outcome outcome;

    /* A directory that refuses the client certificate after a TLS 1.3 handshake closes the
     * connection under the first write: that must be an error to report, not a SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1) {
        usage(strcmp(argv[1], "--help") == 0 ? stdout : stderr);
        return strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    len = fread(buf, 1, sizeof(buf), stdin);
    if (len > REQUEST_MAX) {
        fprintf(stderr, PROGRAM ": the request is larger than %d bytes\n", REQUEST_MAX);
        return 2;
    }
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &error);
    if (!root || ldap_check_request_parse(root, &req, err, sizeof(err)) < 0) {
        fprintf(stderr, PROGRAM ": %s\n", root ? err : error.text);
        json_decref(root);
        return 2;
    }
    answer = json_object();
    outcome = ldap_check_run(&req, answer);
    json_object_set_new(answer, "result", json_string(words[outcome]));
    json_dumpf(answer, stdout, JSON_COMPACT);
    fputc('\n', stdout);
    json_decref(answer);
    /* The passwords were in buf: wiped before exit (the JSON's copies go with the process). */
    memset(buf, 0, sizeof(buf));
    json_decref(root);
    return fflush(stdout) == 0 ? 0 : 1;
}
