/* The control protocol shared by certvisord and its clients: the command table and framing. */
#include "control_proto.h"

#include "cv_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONTROL_COMMAND_ROW(id, words, access, usage, summary) {words, access, usage, summary},
const struct control_command_info control_command_table[CONTROL_CMD_COUNT] = {
    CONTROL_COMMANDS(CONTROL_COMMAND_ROW)};
#undef CONTROL_COMMAND_ROW

int control_command_lookup(const char *words)
{
    for (int i = 0; i < CONTROL_CMD_COUNT; i++)
        if (strcmp(control_command_table[i].word, words) == 0)
            return i;
    return -1;
}

/* Counts how many of argv the words take ("a b c" against {"a","b","c",...}), or -1. */
static int words_match(const char *words, int argc, char **argv)
{
    int used = 0;

    while (*words) {
        size_t len = strcspn(words, " ");

        if (used >= argc || strlen(argv[used]) != len || strncmp(argv[used], words, len) != 0)
            return -1;
        used++;
        words += len;
        words += strspn(words, " ");
    }
    return used;
}

int control_command_match(int argc, char **argv, int *ret_consumed)
{
    int best = -1, best_used = 0;

    for (int i = 0; i < CONTROL_CMD_COUNT; i++) {
        int used = words_match(control_command_table[i].word, argc, argv);

        if (used > best_used) {
            best = i;
            best_used = used;
        }
    }
    if (best >= 0)
        *ret_consumed = best_used;
    return best;
}

char *control_encode(const json_t *message, size_t *ret_len)
{
    char *body = json_dumps(message, JSON_COMPACT);
    char *line;
    size_t len;

    if (!body)
        return NULL;
    len = strlen(body);
    line = realloc(body, len + 2);
    if (!line) {
        free(body);
        return NULL;
    }
    line[len] = '\n';
    line[len + 1] = '\0';
    *ret_len = len + 1;
    return line;
}

int control_decode(const char *line, size_t len, json_t **ret_message, char *err_buf,
                   size_t err_len)
{
    json_error_t error;
    json_t *message;

    if (len > CONTROL_MAX_MESSAGE) {
        snprintf(err_buf, err_len, "message of %zu bytes exceeds the limit of %d", len,
                 CONTROL_MAX_MESSAGE);
        return CV_EPROTOCOL;
    }
    message = json_loadb(line, len, JSON_REJECT_DUPLICATES, &error);
    if (!message) {
        snprintf(err_buf, err_len, "invalid JSON at position %d: %s", error.position, error.text);
        return CV_EPROTOCOL;
    }
    if (!json_is_object(message)) {
        json_decref(message);
        snprintf(err_buf, err_len, "message is not a JSON object");
        return CV_EPROTOCOL;
    }
    *ret_message = message;
    return 0;
}
