/* certvisorctl's side of the "user ..." commands: reading a password without echoing it. */
#include "ctl_users.h"

#include "control_proto.h"

#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define PASSWORD_BUF 1100 /* the agent refuses more than 1024 characters, with its reason */

/* One line of f into buf, without its line ending. Returns 0, or -1 at end of file. */
static int read_line(FILE *f, char *buf, size_t len)
{
    if (!fgets(buf, (int)len, f))
        return -1;
    buf[strcspn(buf, "\r\n")] = '\0';
    return 0;
}

static int ask(const char *prompt, char *buf, size_t len)
{
    struct termios saved, quiet;
    int r;

    fputs(prompt, stderr);
    fflush(stderr);
    if (tcgetattr(STDIN_FILENO, &saved) < 0)
        return -1;
    quiet = saved;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    r = read_line(stdin, buf, len);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    fputc('\n', stderr);
    return r;
}

int ctl_read_password(const char *name, const char *file, bool confirm, char *buf, size_t len)
{
    char again[PASSWORD_BUF];
    char prompt[160];
    FILE *f;
    int r;

    if (file && strcmp(file, "-") == 0) {
        if (read_line(stdin, buf, len) == 0)
            return 0;
        fprintf(stderr, "certvisorctl: no password on standard input\n");
        return -1;
    }
    if (file) {
        f = fopen(file, "re");
        if (!f) {
            fprintf(stderr, "certvisorctl: cannot read %s: %m\n", file);
            return -1;
        }
        r = read_line(f, buf, len);
        fclose(f);
        if (r < 0)
            fprintf(stderr, "certvisorctl: %s is empty\n", file);
        return r;
    }
    if (!isatty(STDIN_FILENO)) {
        if (read_line(stdin, buf, len) == 0)
            return 0;
        fprintf(stderr, "certvisorctl: no password on standard input\n");
        return -1;
    }
    snprintf(prompt, sizeof(prompt), "Password for %s: ", name);
    if (ask(prompt, buf, len) < 0)
        return -1;
    if (!confirm)
        return 0;
    if (ask("Again: ", again, sizeof(again)) < 0)
        return -1;
    r = strcmp(buf, again) == 0 ? 0 : -1;
    OPENSSL_cleanse(again, sizeof(again));
    if (r < 0)
        fprintf(stderr, "certvisorctl: the passwords differ; nothing was changed\n");
    return r;
}

int ctl_user_arguments(const char *command, int argc, char **argv, json_t *args, json_t *options)
{
    const char *file = NULL, *name = NULL, *subject = NULL;
    bool adding = strcmp(command, "user add") == 0;
    char password[PASSWORD_BUF];

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--role") == 0 && i + 1 < argc) {
            json_object_set_new(options, "role", json_string(argv[++i]));
        } else if (adding && strcmp(argv[i], "--certificate-subject") == 0 && i + 1 < argc) {
            subject = argv[++i];
        } else if (strcmp(argv[i], "--password-file") == 0 && i + 1 < argc) {
            file = argv[++i];
        } else if (argv[i][0] != '-' && !name) {
            name = argv[i];
        } else {
            fprintf(stderr,
                    "certvisorctl: usage: %s <name> [--role admin|viewer] [--password-file "
                    "<file>|-]%s\n",
                    command, adding ? " [--certificate-subject <subject line>]" : "");
            return -1;
        }
    }
    if (!name) {
        fprintf(stderr, "certvisorctl: usage: %s\n",
                control_command_table[control_command_lookup(command)].usage);
        return -1;
    }
    json_array_append_new(args, json_string(name));
    /* A certificate user has a password only when one is given: it may sign in by certificate
     * alone. */
    if (subject) {
        json_object_set_new(options, "certificate_subject", json_string(subject));
        if (!file)
            return 0;
    }
    if (ctl_read_password(name, file, true, password, sizeof(password)) < 0) {
        OPENSSL_cleanse(password, sizeof(password));
        return -1;
    }
    json_object_set_new(options, "password", json_string(password));
    OPENSSL_cleanse(password, sizeof(password));
    return 0;
}

void ctl_print_user_reply(const char *command, json_t *reply)
{
    const char *name = json_string_value(json_object_get(reply, "name"));
    const char *role = json_string_value(json_object_get(reply, "role"));
    size_t i;
    json_t *item;

    if (strcmp(command, "user list") == 0) {
        json_array_foreach(json_object_get(reply, "items"), i, item)
        {
            const char *subject = json_string_value(json_object_get(item, "certificate_subject"));

            /* A user's subject and whether Basic works for it only when there is a subject. */
            if (subject)
                printf("%-32s %-7s certificate \"%s\"%s\n",
                       json_string_value(json_object_get(item, "name")),
                       json_string_value(json_object_get(item, "role")), subject,
                       json_is_true(json_object_get(item, "password")) ? ", password"
                                                                       : " (no password)");
            else
                printf("%-32s %s\n", json_string_value(json_object_get(item, "name")),
                       json_string_value(json_object_get(item, "role")));
        }
    } else if (strcmp(command, "user add") == 0) {
        const char *subject = json_string_value(json_object_get(reply, "certificate_subject"));

        if (subject)
            printf("Added user %s (%s), signing in with a certificate \"%s\"%s\n", name, role,
                   subject,
                   json_is_true(json_object_get(reply, "password")) ? " or its password"
                                                                    : " (no password)");
        else
            printf("Added user %s (%s)\n", name, role);
    } else if (strcmp(command, "user subject") == 0) {
        const char *subject = json_string_value(json_object_get(reply, "certificate_subject"));

        if (subject)
            printf("User %s signs in with a certificate \"%s\"\n", name, subject);
        else
            printf("User %s no longer signs in with a certificate\n", name);
    } else if (strcmp(command, "user passwd") == 0) {
        printf("Changed the password of %s (%s)\n", name, role);
    } else {
        printf("Deleted user %s\n", name);
    }
}
