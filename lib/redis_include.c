/* Reading the redis.conf include certvisord renders for redis-server (the "redis" format). */
#include "redis_include.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* The most words a line may split into: a directive takes one value, so more is an error. */
#define WORDS_MAX 3

/* The words of one line, unquoted; each is at most a line long. */
struct words {
    char *word[WORDS_MAX];
    size_t len[WORDS_MAX];
    size_t n;
};

/*
 * Settings render_redis() leaves out when it has nothing to say, with the
 * value redis-server has when nothing sets them (CONFIG GET on a fresh 7.0).
 */
static const struct {
    const char *name;
    const char *redis_default;
} omittable[] = {
    {"tls-ca-cert-file", ""}, {"tls-protocols", ""},       {"tls-ciphers", ""},
    {"tls-ciphersuites", ""}, {"tls-auth-clients", "yes"},
};

static const char *const required[] = {"tls-port", "tls-cert-file", "tls-key-file"};

static void words_clear(struct words *words)
{
    for (size_t i = 0; i < words->n; i++)
        free(words->word[i]);
    words->n = 0;
}

/* The character a backslash escape inside double quotes stands for (sdssplitargs). */
static char unescape(char c)
{
    switch (c) {
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    case 'b':
        return '\b';
    case 'a':
        return '\a';
    default:
        return c;
    }
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\0';
}

/*
 * Splits one line into words as sdssplitargs() does, into words (which the
 * caller clears, on failure too). Returns 0, or -EINVAL with the reason in
 * why, or -ENOMEM.
 */
static int split_line(const char *p, struct words *words, const char **why)
{
    size_t line_len = strlen(p);

    while (1) {
        bool in_double = false, in_single = false, done = false;
        char *word;
        size_t len = 0;

        while (*p && isspace((unsigned char)*p))
            p++;
        if (!*p)
            return 0;
        if (words->n == WORDS_MAX) {
            *why = "takes one value (quote a value that holds blanks)";
            return -EINVAL;
        }
        word = malloc(line_len + 1);
        if (!word)
            return -ENOMEM;
        words->word[words->n] = word;
        words->len[words->n++] = 0;
        while (!done) {
            if (in_double) {
                if (p[0] == '\\' && p[1] == 'x' && OPENSSL_hexchar2int((unsigned char)p[2]) >= 0 &&
                    OPENSSL_hexchar2int((unsigned char)p[3]) >= 0) {
                    word[len++] = (char)(OPENSSL_hexchar2int((unsigned char)p[2]) * 16 +
                                         OPENSSL_hexchar2int((unsigned char)p[3]));
                    p += 3;
                } else if (p[0] == '\\' && p[1]) {
                    p++;
                    word[len++] = unescape(*p);
                } else if (*p == '"') {
                    if (!is_blank(p[1])) {
                        *why = "has a closing quote followed by more than a blank";
                        return -EINVAL;
                    }
                    done = true;
                } else if (!*p) {
                    *why = "has unbalanced quotes";
                    return -EINVAL;
                } else {
                    word[len++] = *p;
                }
            } else if (in_single) {
                if (p[0] == '\\' && p[1] == '\'') {
                    p++;
                    word[len++] = '\'';
                } else if (*p == '\'') {
                    if (!is_blank(p[1])) {
                        *why = "has a closing quote followed by more than a blank";
                        return -EINVAL;
                    }
                    done = true;
                } else if (!*p) {
                    *why = "has unbalanced quotes";
                    return -EINVAL;
                } else {
                    word[len++] = *p;
                }
            } else if (is_blank(*p)) {
                done = true;
            } else if (*p == '"') {
                in_double = true;
            } else if (*p == '\'') {
                in_single = true;
            } else {
                word[len++] = *p;
            }
            if (*p)
                p++;
        }
        word[len] = '\0';
        words->len[words->n - 1] = len;
    }
}

static struct redis_include_entry *find(const struct redis_include *include, const char *name)
{
    for (size_t i = 0; i < include->n; i++)
        if (strcmp(include->entries[i].name, name) == 0)
            return &include->entries[i];
    return NULL;
}

const char *redis_include_get(const struct redis_include *include, const char *name)
{
    const struct redis_include_entry *entry = find(include, name);

    return entry ? entry->value : NULL;
}

/* Takes over the two words of a checked line: a repeated directive keeps the later value. */
static int add_entry(struct redis_include *include, struct words *words, int line)
{
    struct redis_include_entry *entry = find(include, words->word[0]), *grown;

    if (entry) {
        free(entry->value);
        entry->value = words->word[1];
        entry->line = line;
        free(words->word[0]);
        words->n = 0;
        return 0;
    }
    grown = realloc(include->entries, (include->n + 1) * sizeof(*grown));
    if (!grown)
        return -ENOMEM;
    include->entries = grown;
    include->entries[include->n++] =
        (struct redis_include_entry){words->word[0], words->word[1], line};
    words->n = 0;
    return 0;
}

/* Checks one split line. Returns 0, or -EINVAL with the reason in err. */
static int check_directive(struct words *words, int line, char *err, size_t err_len)
{
    const char *why = NULL;

    for (char *c = words->word[0]; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    if (strncmp(words->word[0], "tls-", 4) != 0 || words->len[0] != strlen(words->word[0]))
        snprintf(err, err_len,
                 "line %d: '%s' is not a tls-* setting: the include certvisord renders holds "
                 "only TLS settings (move other settings to redis-server's own configuration)",
                 line, words->word[0]);
    else if (words->n != 2)
        why = "takes exactly one value (quote a value that holds blanks: \"TLSv1.2 TLSv1.3\")";
    else if (words->len[1] != strlen(words->word[1]))
        why = "has a value with a NUL byte (\\x00), which no TLS setting can hold";
    else
        return 0;
    if (why)
        snprintf(err, err_len, "line %d: %s %s", line, words->word[0], why);
    return -EINVAL;
}

static void free_entries(struct redis_include *include)
{
    for (size_t i = 0; i < include->n; i++) {
        free(include->entries[i].name);
        free(include->entries[i].value);
    }
    free(include->entries);
}

void redis_include_free(struct redis_include *include)
{
    if (!include)
        return;
    free_entries(include);
    free(include);
}

/* Parses each line of a writable copy of the text into include. */
static int parse_lines(char *text, struct redis_include *include, char *err, size_t err_len)
{
    struct words words = {0};
    int line = 0, r = 0;

    for (char *next, *start = text; r == 0 && start; start = next) {
        const char *why = NULL;
        char *end;

        next = strchr(start, '\n');
        if (next)
            *next++ = '\0';
        line++;
        /* Redis trims " \t\r\n" from both ends, then skips blank and '#' lines. */
        while (*start == ' ' || *start == '\t' || *start == '\r')
            start++;
        end = start + strlen(start);
        while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
            *--end = '\0';
        if (!*start || *start == '#')
            continue;
        r = split_line(start, &words, &why);
        if (r == -EINVAL)
            snprintf(err, err_len, "line %d: %s", line, why);
        if (r == 0 && words.n > 0)
            r = check_directive(&words, line, err, err_len);
        if (r == 0 && words.n > 0)
            r = add_entry(include, &words, line);
        words_clear(&words);
    }
    return r;
}

int redis_include_parse(const char *text, struct redis_include **ret_include, char *err,
                        size_t err_len)
{
    struct redis_include *include = calloc(1, sizeof(*include));
    char *copy = strdup(text);
    int r;

    if (!include || !copy) {
        free(include);
        free(copy);
        return -ENOMEM;
    }
    r = parse_lines(copy, include, err, err_len);
    free(copy);
    for (size_t i = 0; r == 0 && i < sizeof(required) / sizeof(required[0]); i++) {
        const char *value = redis_include_get(include, required[i]);

        if (!value || !*value) {
            snprintf(err, err_len,
                     "%s %s: this is not an include certvisord rendered for redis-server "
                     "(point --include at the tls output of the service's redis section)",
                     value ? "empty" : "no", required[i]);
            r = -EINVAL;
        }
    }
    if (r < 0) {
        redis_include_free(include);
        return r;
    }
    *ret_include = include;
    return 0;
}

int redis_include_load(const char *path, struct redis_include **ret_include, char *err,
                       size_t err_len)
{
    char *text = malloc(REDIS_INCLUDE_MAX_BYTES + 1);
    size_t len = 0;
    ssize_t n = 0;
    int fd, r;

    if (!text)
        return -ENOMEM;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        snprintf(err, err_len, "cannot open %s: %s", path, strerror(errno));
        free(text);
        return r;
    }
    while (len <= REDIS_INCLUDE_MAX_BYTES &&
           (n = read(fd, text + len, REDIS_INCLUDE_MAX_BYTES + 1 - len)) > 0)
        len += (size_t)n;
    r = n < 0 ? -errno : 0;
    close(fd);
    if (r < 0)
        snprintf(err, err_len, "cannot read %s: %s", path, strerror(-r));
    else if (len > REDIS_INCLUDE_MAX_BYTES)
        snprintf(err, err_len, "%s is larger than %d bytes: not an include certvisord rendered",
                 path, REDIS_INCLUDE_MAX_BYTES),
            r = -EINVAL;
    else if (memchr(text, '\0', len))
        snprintf(err, err_len, "%s holds a NUL byte: not a text file", path), r = -EINVAL;
    if (r == 0) {
        char inner[400];

        text[len] = '\0';
        r = redis_include_parse(text, ret_include, inner, sizeof(inner));
        if (r == -EINVAL)
            snprintf(err, err_len, "%s: %s", path, inner);
    }
    free(text);
    return r;
}

int redis_include_config_set_pairs(const struct redis_include *include, const char ***ret_pairs)
{
    size_t n_omittable = sizeof(omittable) / sizeof(omittable[0]);
    const char **pairs = calloc(2 * (include->n + n_omittable), sizeof(*pairs));
    size_t n = 0;

    if (!pairs)
        return -ENOMEM;
    for (size_t i = 0; i < include->n; i++) {
        pairs[n++] = include->entries[i].name;
        pairs[n++] = include->entries[i].value;
    }
    for (size_t i = 0; i < n_omittable; i++) {
        if (find(include, omittable[i].name))
            continue;
        pairs[n++] = omittable[i].name;
        pairs[n++] = omittable[i].redis_default;
    }
    *ret_pairs = pairs;
    return (int)n;
}
