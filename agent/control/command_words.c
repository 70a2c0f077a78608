/* How certvisorctl reads typed words against the command table: groups, suggestions, arity. */
#include "command_words.h"

#include "control_proto.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define SUGGEST_MAX_EDITS 2
#define WORD_MAX 64 /* longer typed words are never close to a command's */

/* The k-th word (from 0) of a command's words and its length, or NULL past the last. */
static const char *nth_word(const char *words, int k, size_t *ret_len)
{
    for (; k > 0; k--) {
        words += strcspn(words, " ");
        if (*words == '\0')
            return NULL;
        words++;
    }
    *ret_len = strcspn(words, " ");
    return words;
}

/* Whether the command's first n words are argv[0..n). */
static bool begins_with(const char *words, int n, char **argv)
{
    for (int k = 0; k < n; k++) {
        size_t len;
        const char *w = nth_word(words, k, &len);

        if (!w || strlen(argv[k]) != len || strncmp(w, argv[k], len) != 0)
            return false;
    }
    return true;
}

int command_words_known(int argc, char **argv)
{
    int best = 0;

    for (int i = 0; i < CONTROL_CMD_COUNT; i++) {
        int n = 0;

        while (n < argc && begins_with(control_command_table[i].word, n + 1, argv))
            n++;
        if (n > best)
            best = n;
    }
    return best;
}

/* Whether an earlier command already offered the same word after argv[0..n). */
static bool offered_before(int command, int n, char **argv, const char *w, size_t len)
{
    for (int i = 0; i < command; i++) {
        size_t other_len;
        const char *other;

        if (!begins_with(control_command_table[i].word, n, argv))
            continue;
        other = nth_word(control_command_table[i].word, n, &other_len);
        if (other && other_len == len && strncmp(other, w, len) == 0)
            return true;
    }
    return false;
}

int command_words_next(int n, char **argv, char *buf, size_t len)
{
    size_t used = 0;
    int count = 0;

    if (len > 0)
        buf[0] = '\0';
    for (int i = 0; i < CONTROL_CMD_COUNT; i++) {
        size_t wlen;
        const char *w;

        if (!begins_with(control_command_table[i].word, n, argv) ||
            !(w = nth_word(control_command_table[i].word, n, &wlen)) ||
            offered_before(i, n, argv, w, wlen))
            continue;
        if (used < len)
            used +=
                (size_t)snprintf(buf + used, len - used, "%s%.*s", count ? ", " : "", (int)wlen, w);
        count++;
    }
    return count;
}

/* Levenshtein distance between a (alen) and b (blen), both at most WORD_MAX long. */
static size_t edit_distance(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t row[WORD_MAX + 1];

    for (size_t j = 0; j <= blen; j++)
        row[j] = j;
    for (size_t i = 1; i <= alen; i++) {
        size_t diagonal = row[0];

        row[0] = i;
        for (size_t j = 1; j <= blen; j++) {
            size_t above = row[j];
            size_t best = diagonal + (a[i - 1] != b[j - 1]);

            if (above + 1 < best)
                best = above + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            diagonal = above;
            row[j] = best;
        }
    }
    return row[blen];
}

/* Keeps the closest of the candidates offered one at a time; see command_words_closest(). */
struct closest {
    const char *typo;
    size_t typo_len, nearest_edits;
    const char *nearest, *prefixed, *abbreviated;
    int prefixes, abbreviations;
};

/* Whether typo's letters all appear in w, in order: "certfile" in "certificate_file". */
static bool abbreviates(const char *typo, size_t typo_len, const char *w, size_t wlen)
{
    size_t i = 0;

    for (size_t j = 0; i < typo_len && j < wlen; j++)
        if (typo[i] == w[j])
            i++;
    return i == typo_len;
}

static void consider(struct closest *c, const char *w, size_t wlen)
{
    size_t edits;

    if (c->typo_len == 0 || c->typo_len > WORD_MAX || wlen > WORD_MAX)
        return;
    /* "cert" for "certificate"; only a prefix of one word says which is meant. */
    if (wlen > c->typo_len && strncmp(w, c->typo, c->typo_len) == 0) {
        c->prefixes++;
        c->prefixed = w;
    }
    if (c->typo_len >= 3 && wlen > c->typo_len && abbreviates(c->typo, c->typo_len, w, wlen)) {
        c->abbreviations++;
        c->abbreviated = w;
    }
    edits = edit_distance(c->typo, c->typo_len, w, wlen);
    if (edits < c->nearest_edits) {
        c->nearest_edits = edits;
        c->nearest = w;
    }
}

/* A unique prefix, else the nearest within SUGGEST_MAX_EDITS, else a unique abbreviation. */
static const char *chosen(const struct closest *c)
{
    if (c->prefixes == 1)
        return c->prefixed;
    if (c->nearest)
        return c->nearest;
    return c->abbreviations == 1 ? c->abbreviated : NULL;
}

const char *command_words_closest(const char *typo, const char *const *choices)
{
    struct closest c = {typo, strlen(typo), SUGGEST_MAX_EDITS + 1, NULL, NULL, NULL, 0, 0};

    for (; *choices; choices++)
        consider(&c, *choices, strlen(*choices));
    return chosen(&c);
}

const char *command_words_suggest(int n, char **argv, const char *typo, size_t *ret_len)
{
    struct closest c = {typo, strlen(typo), SUGGEST_MAX_EDITS + 1, NULL, NULL, NULL, 0, 0};
    const char *best;

    for (int i = 0; i < CONTROL_CMD_COUNT; i++) {
        size_t wlen;
        const char *w;

        if (begins_with(control_command_table[i].word, n, argv) &&
            (w = nth_word(control_command_table[i].word, n, &wlen)) &&
            !offered_before(i, n, argv, w, wlen))
            consider(&c, w, wlen);
    }
    best = chosen(&c);
    if (best)
        *ret_len = strcspn(best, " ");
    return best;
}

/* Skips one usage token: a <placeholder> may hold spaces ("<subject line>|--clear"). */
static const char *token_end(const char *p)
{
    bool in_angle = false;

    for (; *p && (in_angle || *p != ' '); p++) {
        if (*p == '<')
            in_angle = true;
        else if (*p == '>')
            in_angle = false;
    }
    return p;
}

int command_words_max_args(int command)
{
    const struct control_command_info *c = &control_command_table[command];
    const char *p = c->usage;
    bool in_option = false; /* inside "[-n <lines>]": the option's value is no argument */
    int count = 0;

    if (strstr(p, "..."))
        return -1;
    if (strncmp(p, c->word, strlen(c->word)) == 0)
        p += strlen(c->word);
    for (p += strspn(p, " "); *p; p += strspn(p, " ")) {
        const char *end = token_end(p);
        bool option = p[0] == '-' || (p[0] == '[' && p[1] == '-');

        if (option || in_option)
            in_option = end[-1] != ']';
        else
            count++;
        p = end;
    }
    return count;
}
