/* A line diff of two texts (rendered files), for --dry-run: every line is shown, none is cut. */
#include "text_diff.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lines {
    const char **start;
    size_t *len;
    size_t n;
};

static void lines_free(struct lines *lines)
{
    free(lines->start);
    free(lines->len);
}

/* Splits text at '\n' (a last line without one counts); pointers into text. -1 without memory. */
static int split_lines(const char *text, struct lines *lines)
{
    size_t count = 0;

    for (const char *p = text; *p; count++) {
        const char *end = strchr(p, '\n');

        p = end ? end + 1 : p + strlen(p);
    }
    lines->n = 0;
    lines->start = malloc((count ? count : 1) * sizeof(*lines->start));
    lines->len = malloc((count ? count : 1) * sizeof(*lines->len));
    if (!lines->start || !lines->len)
        return -1;
    while (*text) {
        const char *end = strchr(text, '\n');
        size_t len = end ? (size_t)(end - text) : strlen(text);

        lines->start[lines->n] = text;
        lines->len[lines->n++] = len;
        text += len + (end ? 1 : 0);
    }
    return 0;
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

/*
 * The changed middle [a_from, a_to) x [b_from, b_to), aligned by a longest common subsequence
 * when its table fits TEXT_DIFF_MAX_CELLS, else shown as replaced: every old line removed, then
 * every new line added. Both are complete and correct diffs; the second is only longer.
 */
static int emit_middle(FILE *out, const struct lines *a, size_t a_from, size_t a_to,
                       const struct lines *b, size_t b_from, size_t b_to)
{
    size_t n = a_to - a_from, m = b_to - b_from, i = 0, j = 0;
    uint32_t *table;

    if ((n + 1) > TEXT_DIFF_MAX_CELLS / (m + 1)) {
        for (size_t x = a_from; x < a_to; x++)
            emit(out, '-', a, x);
        for (size_t y = b_from; y < b_to; y++)
            emit(out, '+', b, y);
        return 0;
    }
    table = calloc((n + 1) * (m + 1), sizeof(*table)); /* LCS of a[x..] and b[y..] */
    if (!table)
        return -1;
#define LCS(x, y) table[(x) * (m + 1) + (y)]
    for (size_t x = n; x-- > 0;)
        for (size_t y = m; y-- > 0;)
            LCS(x, y) = same_line(a, a_from + x, b, b_from + y)
                            ? LCS(x + 1, y + 1) + 1
                            : (LCS(x + 1, y) > LCS(x, y + 1) ? LCS(x + 1, y) : LCS(x, y + 1));
    while (i < n || j < m) {
        if (i < n && j < m && same_line(a, a_from + i, b, b_from + j)) {
            emit(out, ' ', a, a_from + i++);
            j++;
        } else if (i < n && (j == m || LCS(i + 1, j) >= LCS(i, j + 1))) {
            emit(out, '-', a, a_from + i++); /* removals before additions, as diff -u shows them */
        } else {
            emit(out, '+', b, b_from + j++);
        }
    }
#undef LCS
    free(table);
    return 0;
}

/* The diff into out: common first and last lines as context, the middle aligned or replaced. */
static int write_diff(FILE *out, const char *label, const struct lines *a, const struct lines *b)
{
    size_t head = 0, tail = 0;

    while (head < a->n && head < b->n && same_line(a, head, b, head))
        head++;
    while (tail < a->n - head && tail < b->n - head &&
           same_line(a, a->n - 1 - tail, b, b->n - 1 - tail))
        tail++;
    fprintf(out, "--- %s\n+++ %s\n", label, label);
    for (size_t i = 0; i < head; i++)
        emit(out, ' ', a, i);
    if (emit_middle(out, a, head, a->n - tail, b, head, b->n - tail) < 0)
        return -1;
    for (size_t i = a->n - tail; i < a->n; i++)
        emit(out, ' ', a, i);
    return 0;
}

char *text_diff(const char *label, const char *old_text, const char *new_text)
{
    struct lines a = {0}, b = {0};
    char *result = NULL;
    size_t size = 0;
    FILE *out = NULL;
    int r = -1;

    if (split_lines(old_text, &a) == 0 && split_lines(new_text, &b) == 0 &&
        (out = open_memstream(&result, &size)))
        r = write_diff(out, label, &a, &b);
    /* fclose sets result; on any failure there is no partial diff, only NULL. */
    if (out && fclose(out) != 0)
        r = -1;
    if (r < 0) {
        free(result);
        result = NULL;
    }
    lines_free(&a);
    lines_free(&b);
    return result;
}
