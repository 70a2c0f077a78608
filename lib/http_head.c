/* The HTTP/1.x message head: finding its end, splitting its lines, reading its start line. */
#include "http_head.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* Content-Length digits: 18 cannot overflow 64 bits, and no body here comes near. */
#define HTTP_HEAD_MAX_LENGTH_DIGITS 18

size_t http_head_length(const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (buf[i + 1] == '\n')
            return i + 2;
        if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

bool http_is_token(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch <= 0x20 || ch >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", ch))
            return false;
    }
    return true;
}

/* Cuts the next line off *text (without its LF, or CR LF). */
static char *next_line(char **text)
{
    char *line = *text, *nl = strchr(line, '\n');

    if (nl) {
        *nl = '\0';
        *text = nl + 1;
    } else {
        nl = line + strlen(line);
        *text = nl;
    }
    if (nl > line && nl[-1] == '\r')
        nl[-1] = '\0';
    return line;
}

/* Field values may hold visible characters, blanks and obs-text, but no other control. */
static bool value_is_clean(const char *value)
{
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return false;
    return true;
}

/* Splits "Name: value" in place into *ret_header. Returns 0 or -EBADMSG. */
static int split_field(char *line, struct http_header *ret_header)
{
    char *colon = strchr(line, ':'), *value, *end;

    /* No folded lines, no blanks before the colon (RFC 9112, 5.1 and 5.2). */
    if (!colon || !http_is_token(line, (size_t)(colon - line)))
        return -EBADMSG;
    *colon = '\0';
    value = colon + 1 + strspn(colon + 1, " \t");
    end = value + strlen(value);
    while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
        *--end = '\0';
    if (!value_is_clean(value))
        return -EBADMSG;
    *ret_header = (struct http_header){line, value};
    return 0;
}

int http_head_parse(char *text, size_t len, struct http_header *headers, unsigned max_headers,
                    struct http_head *ret_head)
{
    struct http_head head = {.headers = headers};

    /* A NUL would cut a line short and hide what follows it from every check. */
    if (len == 0 || memchr(text, '\0', len))
        return -EBADMSG;
    text[len] = '\0';
    head.start_line = next_line(&text);
    if (!value_is_clean(head.start_line))
        return -EBADMSG;
    while (*text) {
        char *line = next_line(&text);
        int r;

        if (!*line)
            break; /* the blank line */
        if (head.n_headers >= max_headers)
            return -E2BIG;
        r = split_field(line, &headers[head.n_headers]);
        if (r < 0)
            return r;
        head.n_headers++;
    }
    *ret_head = head;
    return 0;
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* "HTTP/1.0" or "HTTP/1.1": 0 or 1; -EPROTONOSUPPORT for another version; -EBADMSG. */
static int version_of(const char *version, size_t len)
{
    if (len != 8 || strncmp(version, "HTTP/", 5) != 0 || version[6] != '.' ||
        !is_digit(version[5]) || !is_digit(version[7]))
        return -EBADMSG;
    if (version[5] != '1' || (version[7] != '0' && version[7] != '1'))
        return -EPROTONOSUPPORT;
    return version[7] - '0';
}

int http_head_request_line(struct http_head *head, struct http_request_line *ret_line)
{
    char *line = head->start_line, *target, *version, *query;
    int minor;

    target = strchr(line, ' ');
    version = target ? strchr(target + 1, ' ') : NULL;
    if (!version || strchr(version + 1, ' '))
        return -EBADMSG;
    if (!http_is_token(line, (size_t)(target - line)) || target[1] != '/')
        return -EBADMSG;
    minor = version_of(version + 1, strlen(version + 1));
    if (minor < 0)
        return minor;
    for (const char *p = target + 1; p < version; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return -EBADMSG;
    *target++ = '\0';
    *version = '\0';
    query = strchr(target, '?');
    if (query)
        *query++ = '\0';
    *ret_line = (struct http_request_line){line, target, query ? query : "", minor};
    return 0;
}

int http_head_status_line(const struct http_head *head, int *ret_status)
{
    const char *line = head->start_line, *code;
    int version;

    code = strchr(line, ' ');
    if (!code)
        return -EBADMSG;
    version = version_of(line, (size_t)(code - line));
    if (version < 0)
        return version;
    code++;
    if (strspn(code, "0123456789") != 3 || (code[3] != '\0' && code[3] != ' ') || code[0] < '1' ||
        code[0] > '5')
        return -EBADMSG;
    if (code[3] == ' ' && !value_is_clean(code + 4))
        return -EBADMSG;
    *ret_status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
    return 0;
}

const char *http_head_header(const struct http_head *head, const char *name)
{
    for (unsigned i = 0; i < head->n_headers; i++)
        if (strcasecmp(head->headers[i].name, name) == 0)
            return head->headers[i].value;
    return NULL;
}

int http_head_content_length(const struct http_head *head, uint64_t *ret_length)
{
    uint64_t length = 0;
    bool seen = false;

    for (unsigned i = 0; i < head->n_headers; i++) {
        const char *value = head->headers[i].value;
        size_t digits = strspn(value, "0123456789");
        uint64_t n = 0;

        if (strcasecmp(head->headers[i].name, "content-length") != 0)
            continue;
        if (digits == 0 || value[digits] != '\0' || digits > HTTP_HEAD_MAX_LENGTH_DIGITS)
            return -EBADMSG;
        for (size_t d = 0; d < digits; d++)
            n = n * 10 + (uint64_t)(value[d] - '0');
        if (seen && n != length)
            return -EBADMSG;
        seen = true;
        length = n;
    }
    if (seen)
        *ret_length = length;
    return seen;
}

bool http_list_has(const char *value, const char *token)
{
    size_t len = strlen(token);

    while (*value) {
        size_t n;

        value += strspn(value, " \t,");
        n = strcspn(value, ",");
        while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
            n--;
        if (n == len && strncasecmp(value, token, len) == 0)
            return true;
        value += strcspn(value, ",");
    }
    return false;
}
