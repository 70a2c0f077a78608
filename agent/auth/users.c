/* The REST API's users: stored hashed in the state directory, checked by the agent alone. */
#include "users.h"

#include "cv_error.h"
#include "fsutil.h"
#include "subject_line.h"

#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PBKDF2_ITERATIONS 600000 /* OWASP's figure for PBKDF2-HMAC-SHA256 (2023) */
#define SALT_BYTES 16
#define HASH_BYTES 32
#define USER_NAME_MAX 64
#define PASSWORD_MIN 8
#define PASSWORD_MAX 1024
#define CACHE_TTL_S 60 /* how long a checked pair is remembered */
#define CACHE_SLOTS 32

struct user {
    char *name;
    enum user_role role;
    struct subject_line *subject; /* certificate sign-in; NULL: none */
    bool has_password;            /* false: a certificate-only user (no Basic sign-in) */
    unsigned iterations;
    unsigned char salt[SALT_BYTES];
    unsigned char hash[HASH_BYTES];
};

/* A pair checked lately: HMAC(cache_key, name NUL password), never the password itself. */
struct cached_check {
    unsigned char digest[HASH_BYTES];
    time_t expires;
};

struct users {
    char *path;
    struct user *list;
    size_t n;
    unsigned char cache_key[32];
    struct cached_check cache[CACHE_SLOTS];
    size_t cache_next;
};

static const char *const role_names[] = {
    [USER_ROLE_VIEWER] = "viewer", [USER_ROLE_ADMIN] = "admin"};

const char *user_role_name(enum user_role role)
{
    return role_names[role];
}

int user_role_parse(const char *text, enum user_role *ret_role)
{
    for (size_t i = 0; i < 2; i++) {
        if (strcmp(text, role_names[i]) == 0) {
            *ret_role = (enum user_role)i;
            return 0;
        }
    }
    return -EINVAL;
}

static struct user *find(const struct users *users, const char *name)
{
    for (size_t i = 0; i < users->n; i++)
        if (strcmp(users->list[i].name, name) == 0)
            return &users->list[i];
    return NULL;
}

/* Hex of n bytes into buf (2n + 1). */
static void to_hex(const unsigned char *bytes, size_t n, char *buf)
{
    for (size_t i = 0; i < n; i++)
        sprintf(buf + 2 * i, "%02x", bytes[i]);
}

static int from_hex(const char *text, unsigned char *bytes, size_t n)
{
    if (!text || strlen(text) != 2 * n)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        unsigned value;

        if (sscanf(text + 2 * i, "%2x", &value) != 1)
            return -EINVAL;
        bytes[i] = (unsigned char)value;
    }
    return 0;
}

static int derive(const char *password, const unsigned char *salt, unsigned iterations,
                  unsigned char *out)
{
    return PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, SALT_BYTES, (int)iterations,
                             EVP_sha256(), HASH_BYTES, out) == 1
               ? 0
               : -EIO;
}

static int save(const struct users *users, char *err, size_t err_len)
{
    json_t *root = json_object(), *list = json_object();
    char *text;
    int r;

    for (size_t i = 0; i < users->n; i++) {
        const struct user *u = &users->list[i];
        char salt[2 * SALT_BYTES + 1], hash[2 * HASH_BYTES + 1];
        json_t *entry = json_pack("{s:s}", "role", role_names[u->role]);
        char *subject = u->subject ? subject_line_format(u->subject) : NULL;

        if (!entry || (u->subject && !subject)) {
            json_decref(entry);
            json_decref(root);
            json_decref(list);
            free(subject);
            return -ENOMEM;
        }
        to_hex(u->salt, SALT_BYTES, salt);
        to_hex(u->hash, HASH_BYTES, hash);
        /* A certificate-only user has no hash: the file of an older version reads the same. */
        if (u->has_password) {
            json_t *kdf = json_pack("{s:s, s:i, s:s, s:s}", "kdf", "pbkdf2-sha256", "iterations",
                                    (int)u->iterations, "salt", salt, "hash", hash);

            json_object_update(entry, kdf);
            json_decref(kdf);
        }
        if (subject)
            json_object_set_new(entry, "certificate_subject", json_string(subject));
        free(subject);
        json_object_set_new(list, u->name, entry);
    }
    json_object_set_new(root, "users", list);
    text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    if (!text)
        return -ENOMEM;
    r = fs_write_atomic(users->path, text, strlen(text), 0600, err, err_len);
    free(text);
    return r;
}

static int load(struct users *users, char *err, size_t err_len)
{
    json_error_t error;
    json_t *root = json_load_file(users->path, 0, &error), *list, *entry;
    const char *name;

    if (!root) {
        FILE *f = fopen(users->path, "re");

        if (!f && errno == ENOENT)
            return 0;
        if (f)
            fclose(f);
        snprintf(err, err_len, "%s: line %d: %s", users->path, error.line, error.text);
        return CV_ECONFIG;
    }
    list = json_object_get(root, "users");
    users->list = calloc(json_object_size(list) + 1, sizeof(*users->list));
    if (!users->list) {
        json_decref(root);
        return -ENOMEM;
    }
    json_object_foreach(list, name, entry)
    {
        struct user *u = &users->list[users->n];
        json_int_t iterations = json_integer_value(json_object_get(entry, "iterations"));
        const char *subject = json_string_value(json_object_get(entry, "certificate_subject"));
        char why[256] = "";

        u->has_password = json_object_get(entry, "hash") != NULL;
        if (user_role_parse(json_string_value(json_object_get(entry, "role")) ?: "", &u->role) <
                0 ||
            (u->has_password && (iterations < 1 || iterations > INT_MAX ||
                                 from_hex(json_string_value(json_object_get(entry, "salt")),
                                          u->salt, SALT_BYTES) < 0 ||
                                 from_hex(json_string_value(json_object_get(entry, "hash")),
                                          u->hash, HASH_BYTES) < 0)) ||
            (!u->has_password && !subject) ||
            (subject && subject_line_parse(subject, &u->subject, why, sizeof(why)) < 0) ||
            !(u->name = strdup(name))) {
            snprintf(err, err_len, "%s: user '%s' is not a valid entry%s%s", users->path, name,
                     *why ? ": " : "", why);
            subject_line_free(u->subject);
            json_decref(root);
            return CV_ECONFIG;
        }
        u->iterations = (unsigned)iterations;
        users->n++;
    }
    json_decref(root);
    return 0;
}

int users_open(const char *state_dir, struct users **ret_users, char *err, size_t err_len)
{
    struct users *users = calloc(1, sizeof(*users));
    int r;

    if (!users)
        return -ENOMEM;
    if (asprintf(&users->path, "%s/users.json", state_dir) < 0) {
        free(users);
        return -ENOMEM;
    }
    r = RAND_bytes(users->cache_key, sizeof(users->cache_key)) == 1 ? load(users, err, err_len)
                                                                    : -EIO;
    if (r < 0) {
        users_free(users);
        return r;
    }
    *ret_users = users;
    return 0;
}

void users_free(struct users *users)
{
    if (!users)
        return;
    for (size_t i = 0; i < users->n; i++) {
        free(users->list[i].name);
        subject_line_free(users->list[i].subject);
    }
    free(users->list);
    free(users->path);
    OPENSSL_cleanse(users, sizeof(*users));
    free(users);
}

static bool valid_name(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > USER_NAME_MAX)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("._@-", *p)))
            return false;
    return true;
}

static void forget_cache(struct users *users)
{
    OPENSSL_cleanse(users->cache, sizeof(users->cache));
}

static int check_new_user(const char *name, const char *password, char *err, size_t err_len)
{
    size_t len = password ? strlen(password) : PASSWORD_MIN;

    if (!valid_name(name)) {
        snprintf(err, err_len,
                 "'%s' is not a user name (letters, digits, '.', '_', '@' and '-', at most %d)",
                 name, USER_NAME_MAX);
        return CV_EUSAGE;
    }
    if (len < PASSWORD_MIN || len > PASSWORD_MAX) {
        snprintf(err, err_len, "the password must have from %d to %d characters", PASSWORD_MIN,
                 PASSWORD_MAX);
        return CV_EUSAGE;
    }
    return 0;
}

/* Parses a subject line for a user; the message says whose and how to write one. */
static int parse_subject(const char *subject, struct subject_line **ret_line, char *err,
                         size_t err_len)
{
    char why[512];
    int r = subject_line_parse(subject, ret_line, why, sizeof(why));

    if (r == -EINVAL) {
        snprintf(err, err_len,
                 "certificate subject '%s': %s (write it as \"CN=ops, OU=Platform, O=Example, "
                 "L=Austin, ST=TX, C=US\")",
                 subject, why);
        return CV_EUSAGE;
    }
    return r;
}

/*
 * Puts fresh (its name, role, subject and hash filled in) in place of existing, or
 * appends it, then saves. Takes fresh's subject.
 */
static int put_user(struct users *users, struct user *existing, struct user *fresh,
                    const char *name, char *err, size_t err_len)
{
    struct user *grown;
    int r;

    if (existing) {
        fresh->name = existing->name;
        if (existing->subject != fresh->subject)
            subject_line_free(existing->subject);
        *existing = *fresh;
    } else {
        grown = realloc(users->list, (users->n + 1) * sizeof(*grown));
        fresh->name = strdup(name);
        if (!grown || !fresh->name) {
            if (grown)
                users->list = grown;
            free(fresh->name);
            subject_line_free(fresh->subject);
            return -ENOMEM;
        }
        users->list = grown;
        users->list[users->n++] = *fresh;
    }
    forget_cache(users);
    r = save(users, err, err_len);
    OPENSSL_cleanse(fresh, sizeof(*fresh));
    return r;
}

struct users_password {
    char *password; /* a copy, wiped once derived */
    size_t password_len;
    unsigned iterations;
    unsigned char salt[SALT_BYTES];
    unsigned char hash[HASH_BYTES];
    bool derived_ok;
};

int users_password_new(const char *password, struct users_password **ret_password, char *err,
                       size_t err_len)
{
    size_t len = strlen(password);
    struct users_password *fresh;

    if (len < PASSWORD_MIN || len > PASSWORD_MAX) {
        snprintf(err, err_len, "the password must have from %d to %d characters", PASSWORD_MIN,
                 PASSWORD_MAX);
        return CV_EUSAGE;
    }
    fresh = calloc(1, sizeof(*fresh));
    if (!fresh || !(fresh->password = malloc(len + 1))) {
        free(fresh);
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    memcpy(fresh->password, password, len + 1);
    fresh->password_len = len;
    fresh->iterations = PBKDF2_ITERATIONS;
    if (RAND_bytes(fresh->salt, SALT_BYTES) != 1) {
        users_password_free(fresh);
        snprintf(err, err_len, "cannot draw a salt from OpenSSL's random generator");
        return -EIO;
    }
    *ret_password = fresh;
    return 0;
}

void users_password_derive(struct users_password *password)
{
    password->derived_ok =
        derive(password->password, password->salt, password->iterations, password->hash) == 0;
    OPENSSL_cleanse(password->password, password->password_len);
}

void users_password_free(struct users_password *password)
{
    if (!password)
        return;
    OPENSSL_clear_free(password->password, password->password_len + 1);
    OPENSSL_clear_free(password, sizeof(*password));
}

/* Puts a derived password into fresh. -EIO when the derivation failed (or never ran). */
static int take_password(struct user *fresh, const struct users_password *password)
{
    if (!password->derived_ok)
        return -EIO;
    fresh->has_password = true;
    fresh->iterations = password->iterations;
    memcpy(fresh->salt, password->salt, SALT_BYTES);
    memcpy(fresh->hash, password->hash, HASH_BYTES);
    return 0;
}

/* The whole of a password's making, on the calling thread: for callers that may wait. */
static int hash_now(const char *password, struct users_password **ret_password, char *err,
                    size_t err_len)
{
    int r = users_password_new(password, ret_password, err, err_len);

    if (r == 0)
        users_password_derive(*ret_password);
    return r;
}

int users_set(struct users *users, const char *name, const char *password, enum user_role role,
              bool replace, char *err, size_t err_len)
{
    struct users_password *hashed = NULL;
    int r = check_new_user(name, password, err, err_len);

    if (r == 0)
        r = hash_now(password, &hashed, err, err_len);
    if (r == 0)
        r = users_set_hashed(users, name, hashed, role, replace, err, err_len);
    users_password_free(hashed);
    return r;
}

int users_set_hashed(struct users *users, const char *name, const struct users_password *password,
                     enum user_role role, bool replace, char *err, size_t err_len)
{
    struct user *existing = find(users, name), fresh = {0};
    int r = check_new_user(name, NULL, err, err_len);

    if (r < 0)
        return r;
    if (existing && !replace) {
        snprintf(err, err_len, "user '%s' exists (change its password with 'user passwd')", name);
        return -EEXIST;
    }
    if (!existing && replace) {
        snprintf(err, err_len, "no user '%s' (see 'user list')", name);
        return -ENOENT;
    }
    fresh.role = role;
    fresh.subject = existing ? existing->subject : NULL; /* a new password keeps the subject */
    if (take_password(&fresh, password) < 0) {
        snprintf(err, err_len, "the password could not be hashed (PBKDF2 failed)");
        return -EIO;
    }
    return put_user(users, existing, &fresh, name, err, err_len);
}

int users_add(struct users *users, const char *name, const char *password, const char *subject,
              enum user_role role, char *err, size_t err_len)
{
    struct users_password *hashed = NULL;
    int r;

    if (!subject)
        return users_set(users, name, password ? password : "", role, false, err, err_len);
    r = check_new_user(name, password, err, err_len);
    if (r == 0 && password)
        r = hash_now(password, &hashed, err, err_len);
    if (r == 0)
        r = users_add_hashed(users, name, hashed, subject, role, err, err_len);
    users_password_free(hashed);
    return r;
}

int users_add_hashed(struct users *users, const char *name, const struct users_password *password,
                     const char *subject, enum user_role role, char *err, size_t err_len)
{
    struct user fresh = {0};
    int r;

    if (!password && !subject) {
        snprintf(err, err_len, "a user needs a password, a certificate subject, or both");
        return CV_EUSAGE;
    }
    if (!subject)
        return users_set_hashed(users, name, password, role, false, err, err_len);
    r = check_new_user(name, NULL, err, err_len);
    if (r < 0)
        return r;
    if (find(users, name)) {
        snprintf(err, err_len, "user '%s' exists (change its subject with 'user subject')", name);
        return -EEXIST;
    }
    r = parse_subject(subject, &fresh.subject, err, err_len);
    if (r < 0)
        return r;
    fresh.role = role;
    if (password && take_password(&fresh, password) < 0) {
        subject_line_free(fresh.subject);
        snprintf(err, err_len, "the password could not be hashed (PBKDF2 failed)");
        return -EIO;
    }
    return put_user(users, NULL, &fresh, name, err, err_len);
}

int users_set_subject(struct users *users, const char *name, const char *subject, char *err,
                      size_t err_len)
{
    struct user *u = find(users, name);
    struct subject_line *line = NULL, *old;
    int r;

    if (!u) {
        snprintf(err, err_len, "no user '%s' (see 'user list')", name);
        return -ENOENT;
    }
    if (!subject && !u->has_password) {
        snprintf(err, err_len,
                 "user '%s' signs in by certificate only: without its subject it could not sign "
                 "in at all (give it a password first with 'user passwd', or delete it)",
                 name);
        return CV_EUSAGE;
    }
    if (subject) {
        r = parse_subject(subject, &line, err, err_len);
        if (r < 0)
            return r;
    }
    old = u->subject;
    u->subject = line;
    r = save(users, err, err_len);
    if (r < 0) {
        u->subject = old; /* the file still says the old one */
        subject_line_free(line);
        return r;
    }
    subject_line_free(old);
    return 0;
}

int users_subject(const struct users *users, const char *name, char **ret_subject)
{
    const struct user *u = find(users, name);

    if (!u)
        return -ENOENT;
    *ret_subject = u->subject ? subject_line_format(u->subject) : NULL;
    return 0;
}

int users_find_by_certificate(const struct users *users, X509 *cert, enum subject_match how,
                              char *ret_name, size_t name_len, enum user_role *ret_role, char *err,
                              size_t err_len)
{
    const struct user *found = NULL;

    for (size_t i = 0; i < users->n; i++) {
        const struct user *u = &users->list[i];

        if (!u->subject || !subject_line_matches(u->subject, cert, how))
            continue;
        if (found) {
            /* Two users for one certificate: which role applies would be a guess. */
            snprintf(err, err_len,
                     "the certificate matches users '%s' and '%s': make their certificate "
                     "subjects distinct",
                     found->name, u->name);
            return -EEXIST;
        }
        found = u;
    }
    if (!found) {
        snprintf(err, err_len, "no user's certificate subject matches the certificate");
        return -ENOENT;
    }
    snprintf(ret_name, name_len, "%s", found->name);
    *ret_role = found->role;
    return 0;
}

int users_delete(struct users *users, const char *name, char *err, size_t err_len)
{
    struct user *u = find(users, name);

    if (!u) {
        snprintf(err, err_len, "no user '%s' (see 'user list')", name);
        return -ENOENT;
    }
    free(u->name);
    subject_line_free(u->subject);
    *u = users->list[--users->n];
    forget_cache(users);
    return save(users, err, err_len);
}

json_t *users_list(const struct users *users)
{
    json_t *list = json_array();

    for (size_t i = 0; i < users->n; i++) {
        const struct user *u = &users->list[i];
        char *subject = u->subject ? subject_line_format(u->subject) : NULL;

        json_array_append_new(list, json_pack("{s:s, s:s, s:b, s:s?}", "name", u->name, "role",
                                              role_names[u->role], "password", (int)u->has_password,
                                              "certificate_subject", subject));
        free(subject);
    }
    return list;
}

int users_role(const struct users *users, const char *name, enum user_role *ret_role)
{
    const struct user *u = find(users, name);

    if (!u)
        return -ENOENT;
    *ret_role = u->role;
    return 0;
}

static void cache_digest(const struct users *users, const char *name, const char *password,
                         unsigned char *out)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0),
                           OSSL_PARAM_construct_end()};
    size_t len = 0;

    memset(out, 0, HASH_BYTES);
    if (ctx && EVP_MAC_init(ctx, users->cache_key, sizeof(users->cache_key), params) == 1 &&
        EVP_MAC_update(ctx, (const unsigned char *)name, strlen(name) + 1) == 1 &&
        EVP_MAC_update(ctx, (const unsigned char *)password, strlen(password)) == 1)
        EVP_MAC_final(ctx, out, &len, HASH_BYTES);
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
}

static bool cached(const struct users *users, const unsigned char *digest, time_t now)
{
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        if (users->cache[i].expires > now &&
            CRYPTO_memcmp(users->cache[i].digest, digest, HASH_BYTES) == 0)
            return true;
    return false;
}

static void remember(struct users *users, const unsigned char *digest, time_t now)
{
    struct cached_check *slot = &users->cache[users->cache_next++ % CACHE_SLOTS];

    memcpy(slot->digest, digest, HASH_BYTES);
    slot->expires = now + CACHE_TTL_S;
}

struct users_check {
    char name[USER_NAME_MAX + 1];
    char *password; /* a copy, wiped once derived */
    size_t password_len;
    unsigned char salt[SALT_BYTES];
    unsigned iterations;
    bool known;                       /* a user with a password, and a password within limits */
    unsigned char digest[HASH_BYTES]; /* the pair's cache key */
    unsigned char derived[HASH_BYTES];
    bool derived_ok;
};

enum user_check users_check_begin(struct users *users, const char *name, const char *password,
                                  time_t now, enum user_role *ret_role,
                                  struct users_check **ret_check)
{
    static const unsigned char dummy_salt[SALT_BYTES];
    struct user *u = find(users, name);
    size_t password_len = strlen(password);
    struct users_check *check;

    /* A certificate-only user has no password: Basic fails for it as for an unknown name. */
    bool known = u && u->has_password && password_len <= PASSWORD_MAX;

    if (known) {
        unsigned char digest[HASH_BYTES];

        cache_digest(users, name, password, digest);
        if (cached(users, digest, now)) {
            OPENSSL_cleanse(digest, sizeof(digest));
            *ret_role = u->role;
            return USER_CHECK_OK;
        }
        OPENSSL_cleanse(digest, sizeof(digest));
    }
    if (password_len > PASSWORD_MAX)
        password_len = 0; /* derived as "": the cost of a real check, without a long one */
    check = calloc(1, sizeof(*check));
    if (!check || !(check->password = malloc(password_len + 1))) {
        free(check);
        return USER_CHECK_FAILED;
    }
    memcpy(check->password, password, password_len);
    check->password[password_len] = '\0';
    check->password_len = password_len;
    check->known = known;
    check->iterations = known ? u->iterations : PBKDF2_ITERATIONS;
    memcpy(check->salt, known ? u->salt : dummy_salt, SALT_BYTES);
    if (known) {
        snprintf(check->name, sizeof(check->name), "%s", name);
        cache_digest(users, name, password, check->digest);
    }
    *ret_check = check;
    return USER_CHECK_PENDING;
}

void users_check_derive(struct users_check *check)
{
    check->derived_ok =
        derive(check->password, check->salt, check->iterations, check->derived) == 0;
    OPENSSL_cleanse(check->password, check->password_len);
}

enum user_check users_check_finish(struct users *users, const struct users_check *check, time_t now,
                                   enum user_role *ret_role)
{
    const struct user *u = check->known ? find(users, check->name) : NULL;

    /* The user as it is now: a password changed meanwhile has a new salt. */
    if (!u || !u->has_password || !check->derived_ok || u->iterations != check->iterations ||
        CRYPTO_memcmp(u->salt, check->salt, SALT_BYTES) != 0 ||
        CRYPTO_memcmp(u->hash, check->derived, HASH_BYTES) != 0)
        return USER_CHECK_FAILED;
    remember(users, check->digest, now);
    *ret_role = u->role;
    return USER_CHECK_OK;
}

void users_check_free(struct users_check *check)
{
    if (!check)
        return;
    if (check->password)
        OPENSSL_cleanse(check->password, check->password_len);
    free(check->password);
    OPENSSL_cleanse(check, sizeof(*check));
    free(check);
}
