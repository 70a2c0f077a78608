/* certvisorctl cluster join's arguments (ctl_join.h). */
#include "ctl_join.h"

#include "control_proto.h"
#include "ctl_users.h"
#include "join_http.h"
#include "join_token.h"
#include "join_wire.h"

#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int usage(const char *problem)
{
    fprintf(stderr, "certvisorctl: %s\ncertvisorctl: usage: %s\n", problem,
            control_command_table[CONTROL_CMD_cluster_join].usage);
    return -1;
}

struct fetched {
    int error;
    int status;
    char *body;
    char message[512];
};

static void on_fetched(void *data, const struct join_http_result *result)
{
    struct fetched *f = data;

    f->error = result->error;
    f->status = result->http_status;
    snprintf(f->message, sizeof(f->message), "%s", result->message);
    if (!result->error)
        f->body = strndup(result->body, result->body_len);
}

/* The PEM of the cluster CA the peer answers, fetched as the agent will (join_http.c), or NULL
 * after printing why. */
static char *fetch_ca(const char *peer)
{
    struct event_base *base = event_base_new();
    struct fetched f = {0};
    char err[512];
    char *pem = NULL;

    if (!base || !join_http_request(base, peer, NULL, "/v1/join/ca", NULL, 10000, on_fetched, &f,
                                    err, sizeof(err))) {
        fprintf(stderr, "certvisorctl: %s\n", base ? err : "out of memory");
        if (base)
            event_base_free(base);
        return NULL;
    }
    event_base_dispatch(base);
    event_base_free(base);
    if (f.body && f.status == 200)
        pem = join_ca_answer_pem(f.body, strlen(f.body));
    if (!pem && f.error)
        fprintf(stderr, "certvisorctl: %s did not answer over TLS: %s\n", peer, f.message);
    else if (!pem)
        fprintf(stderr,
                "certvisorctl: %s answered no cluster CA on /v1/join/ca (HTTP %d): is it "
                "a certvisor node's REST API?\n",
                peer, f.status);
    free(f.body);
    return pem;
}

/* Shows the peer's CA and asks the operator on the terminal. Returns 0 with its hash, else -1. */
static int confirm_ca(const char *peer, char *hash, size_t len)
{
    char *pem, err[256], subject[512] = "?", answer[16] = "";
    BIO *bio;
    X509 *cert;
    FILE *tty;

    if (!isatty(STDIN_FILENO) || !(tty = fopen("/dev/tty", "r+"))) {
        fprintf(stderr, "certvisorctl: --ca-cert-hash is needed (as 'certvisorctl cluster token "
                        "create' printed it on a node of the cluster), or a terminal to confirm "
                        "the peer's CA on\n");
        return -1;
    }
    pem = fetch_ca(peer);
    if (!pem || join_ca_cert_hash(pem, strlen(pem), hash, len, err, sizeof(err)) < 0) {
        if (pem)
            fprintf(stderr, "certvisorctl: the peer's CA: %s\n", err);
        free(pem);
        fclose(tty);
        return -1;
    }
    bio = BIO_new_mem_buf(pem, -1);
    cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    if (cert)
        X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
    X509_free(cert);
    BIO_free(bio);
    free(pem);
    fprintf(tty,
            "The node at %s holds this cluster CA:\n"
            "  subject:         %s\n"
            "  public key hash: %s\n"
            "Compare it with 'certvisorctl cluster token create' on a node of the cluster (or the "
            "SHA-256 of the public key of its 'certvisorctl cluster certificate ca').\n"
            "Is this the cluster's CA? [y/N] ",
            peer, subject, hash);
    fflush(tty);
    if (!fgets(answer, sizeof(answer), tty) || (answer[0] != 'y' && answer[0] != 'Y')) {
        fclose(tty);
        fprintf(stderr, "certvisorctl: the peer's CA was not confirmed: nothing was sent to it\n");
        return -1;
    }
    fclose(tty);
    return 0;
}

int ctl_join_arguments(int argc, char **argv, json_t *args, json_t *options)
{
    static const char *const names[] = {"--token",        "--ca-cert-hash", "--address",
                                        "--client-port",  "--peer-port",    "--user",
                                        "--password-file"};
    const size_t n_names = sizeof(names) / sizeof(names[0]);
    const char *user = NULL, *password_file = NULL;
    char password[1025], hash[JOIN_CA_HASH_TEXT_LEN + 1];

    for (int i = 0; i < argc; i++) {
        size_t k = 0;

        while (k < n_names && strcmp(argv[i], names[k]) != 0)
            k++;
        if (k == n_names && argv[i][0] != '-' && json_array_size(args) == 0) {
            json_array_append_new(args, json_string(argv[i]));
            continue;
        }
        if (k == n_names) {
            char problem[300];

            snprintf(problem, sizeof(problem), "unexpected argument '%s'", argv[i]);
            return usage(problem);
        }
        if (i + 1 >= argc) {
            char problem[300];

            snprintf(problem, sizeof(problem), "%s needs a value", argv[i]);
            return usage(problem);
        }
        if (strcmp(names[k], "--user") == 0)
            user = argv[i + 1];
        else if (strcmp(names[k], "--password-file") == 0)
            password_file = argv[i + 1];
        else
            json_object_set_new(options, names[k] + 2, json_string(argv[i + 1]));
        i++;
    }
    if (json_array_size(args) == 0)
        return usage("the node to join through (<address>:<port>) is missing");
    if (!json_object_get(options, "token") == !user)
        return usage("give --token (as 'certvisorctl cluster token create' printed it on a node "
                     "of the cluster) or --user (an administrator of the cluster's REST API)");
    if (password_file && !user)
        return usage("--password-file goes with --user");
    if (user) {
        if (ctl_read_password(user, password_file, false, password, sizeof(password)) < 0)
            return -1;
        json_object_set_new(options, "user", json_string(user));
        json_object_set_new(options, "password", json_string(password));
        OPENSSL_cleanse(password, sizeof(password));
    }
    if (!json_object_get(options, "ca-cert-hash")) {
        if (confirm_ca(json_string_value(json_array_get(args, 0)), hash, sizeof(hash)) < 0)
            return -1;
        json_object_set_new(options, "ca-cert-hash", json_string(hash));
    }
    return 0;
}
