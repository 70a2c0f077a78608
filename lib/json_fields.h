/*
 * Reading the fields of a JSON object that came from outside (a value read from etcd, a join
 * answer from a peer): every field checked for its type and size, every error naming the field
 * and what holds it ("what", as "a join token in the cluster's store"). Pure.
 */
#ifndef CERTVISOR_CLUSTER_JSON_FIELDS_H
#define CERTVISOR_CLUSTER_JSON_FIELDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The object text holds (at most max bytes, duplicate keys refused), or NULL with err. */
json_t *json_fields_object(const char *text, size_t len, size_t max, const char *what, char *err,
                           size_t err_len);

/* A string field into buf: required (or optional, left "" when absent), shorter than len, no
 * NUL inside. Returns 0 or -EINVAL with err. */
int json_fields_string(json_t *root, const char *field, bool required, char *buf, size_t len,
                       const char *what, char *err, size_t err_len);

/* A non-negative integer field (optional ones are 0 when absent). Returns 0 or -EINVAL. */
int json_fields_integer(json_t *root, const char *field, bool required, int64_t *out,
                        const char *what, char *err, size_t err_len);

/* The compact text of root (taken), keys sorted; NULL when out of memory. */
char *json_fields_dump(json_t *root);

#endif
