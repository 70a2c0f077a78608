/* certvisorctl's side of the "cluster ldap ..." commands. */
#include "ctl_ldap.h"

#include "ctl_users.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#define PASSWORD_MAX 1024

int ctl_ldap_test_arguments(int argc, char **argv, json_t *args, json_t *options)
{
    const char *file = NULL, *user = NULL;
    char password[PASSWORD_MAX + 2];

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--password-file") == 0 && i + 1 < argc) {
            file = argv[++i];
        } else if (argv[i][0] != '-' && !user) {
            user = argv[i];
        } else {
            fprintf(stderr, "certvisorctl: usage: cluster ldap test <user> [--password-file "
                            "<file>|-]\n");
            return -1;
        }
    }
    if (!user) {
        fprintf(stderr, "certvisorctl: usage: cluster ldap test <user> [--password-file "
                        "<file>|-]\n");
        return -1;
    }
    json_array_append_new(args, json_string(user));
    if (ctl_read_password(user, file, false, password, sizeof(password)) < 0) {
        OPENSSL_cleanse(password, sizeof(password));
        return -1;
    }
    json_object_set_new(options, "password", json_string(password));
    OPENSSL_cleanse(password, sizeof(password));
    return 0;
}

static void print_value(const char *name, json_t *value)
{
    if (json_is_array(value)) {
        size_t i;
        json_t *item;

        printf("%s: ", name);
        json_array_foreach(value, i, item)
        {
            printf("%s%s", i ? "; " : "", json_string_value(item));
        }
        printf("\n");
    } else if (json_is_string(value)) {
        printf("%s: %s\n", name, json_string_value(value));
    }
}

void ctl_print_ldap_reply(const char *command, json_t *reply)
{
    const char *error = json_string_value(json_object_get(reply, "error"));
    const char *key;
    json_t *value;

    if (error) {
        fprintf(stderr, "certvisorctl: %s\n", error);
        return;
    }
    if (strcmp(command, "cluster ldap show") == 0) {
        json_object_foreach(json_object_get(reply, "settings"), key, value) print_value(key, value);
        json_object_foreach(json_object_get(reply, "certificates"), key, value)
            printf("%s: %s\n", key, json_is_true(value) ? "set" : "not set");
        return;
    }
    /* cluster ldap test */
    print_value("user", json_object_get(reply, "user"));
    print_value("dn", json_object_get(reply, "dn"));
    print_value("groups", json_object_get(reply, "groups"));
    print_value("role", json_object_get(reply, "role"));
}
