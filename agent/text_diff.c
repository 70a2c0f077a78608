/* A line diff of two short texts (rendered files), for --dry-run. */
#include "text_diff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIFF_MAX_LINES 512 /* the LCS table is lines x lines; rendered files are far shorter */

struct lines {
    const char *start[DIFF_MAX_LINES];
    size_t len[DIFF_MAX_LINES];
    size_t n;
    int overflow;
};

static void split_lines(const char *text, struct lines *lines)
{
    lines->n = 0;
    lines->overflow = 0;
    while (*text) {
        const char *end = strchr(text, '\n');
        size_t len = end ? (size_t)(end - text) : strlen(text);

        if (lines->n == DIFF_MAX_LINES) {
            lines->overflow = 1;
            return;
        }
        lines->start[lines->n] = text;
        lines->len[lines->n++] = len;
        text += len + (end ? 1 : 0);
    }
}

static int same_line(const struct lines *a, size_t i, const struct lines *b, size_t j)
{
    return a->len[i] == b->len[j] && memcmp(a->start[i], b->start[j], a->len[i]) == 0;
}

static void emit(FILE *out, char mark, const struct lines *lines, size_t i)
{
    fputc(mark, out);
    fwrite(lines->start[i], 1, lines->len[i], out);
    fputc('\n', out);
}

char *text_diff(const char *label, const char *old_text, const char *new_text)
{
    struct lines *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    unsigned short *table = NULL; /* table[i][j]: LCS length of a[i..] and b[j..] */
    char *result = NULL;
    size_t size = 0, i = 0, j = 0;
    FILE *out = NULL;

    if (!a || !b)
        goto done;
    split_lines(old_text, a);
    split_lines(new_text, b);
    if (a->overflow || b->overflow)
        a->n = 0; /* too long to compare line by line: shown as replaced */
    table = calloc((a->n + 1) * (b->n + 1), sizeof(*table));
    out = open_memstream(&result, &size);
    if (!table || !out)
        goto done;
#define LCS(x, y) table[(x) * (b->n + 1) + (y)]
    for (size_t x = a->n; x-- > 0;)
        for (size_t y = b->n; y-- > 0;)
            LCS(x, y) = same_line(a, x, b, y)
                            ? (unsigned short)(LCS(x + 1, y + 1) + 1)
                            : (LCS(x + 1, y) > LCS(x, y + 1) ? LCS(x + 1, y) : LCS(x, y + 1));
    fprintf(out, "--- %s\n+++ %s\n", label, label);
    while (i < a->n || j < b->n) {
        if (i < a->n && j < b->n && same_line(a, i, b, j)) {
            emit(out, ' ', a, i++);
            j++;
        } else if (i < a->n && (j == b->n || LCS(i + 1, j) >= LCS(i, j + 1))) {
            emit(out, '-', a, i++); /* removals before additions, as diff -u shows them */
        } else {
            emit(out, '+', b, j++);
        }
    }
#undef LCS
done:
    if (out && fclose(out) != 0) {
        free(result);
        result = NULL;
    } else if (!out) {
        free(result);
        result = NULL;
    }
    free(table);
    free(a);
    free(b);
    return result;
}
