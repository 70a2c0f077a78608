/* Project error codes and the one table that turns any error into a message. */
#ifndef CERTVISOR_CV_ERROR_H
#define CERTVISOR_CV_ERROR_H

/*
 * Functions return >= 0 on success and a negative value on failure: either a
 * negative errno or one of the project codes below. cv_strerror() names both.
 */
#define CV_ERROR_MAP(X)                                                                            \
    X(CONFIG, "invalid configuration")                                                             \
    X(NO_AGENT, "certvisord is not running")                                                       \
    X(NO_SUCH_SERVICE, "no such service")                                                          \
    X(PERMISSION, "permission denied")                                                             \
    X(PROTOCOL, "malformed control message")                                                       \
    X(TOO_LONG, "message too long")                                                                \
    X(DEPENDENCY, "a dependency is not running")                                                   \
    X(USAGE, "invalid arguments")                                                                  \
    X(INVALID_CERT, "invalid certificate or key")                                                  \
    X(CERT_EXPIRED, "certificate expired")                                                         \
    X(UNKNOWN_CERT, "unknown certificate name")                                                    \
    X(INVALID_TLS, "invalid TLS configuration")

enum cv_error_base { CV_ERROR_FIRST = 10000 };

#define CV_ERROR_ENUM(name, msg) CV_E##name##_POSITIVE,
enum cv_error_positive {
    CV_ERROR_POSITIVE_START = CV_ERROR_FIRST - 1,
    CV_ERROR_MAP(CV_ERROR_ENUM)
};
#undef CV_ERROR_ENUM

#define CV_ERROR_VALUE(name, msg) CV_E##name = -CV_E##name##_POSITIVE,
enum cv_error { CV_ERROR_MAP(CV_ERROR_VALUE) };
#undef CV_ERROR_VALUE

/* Returns a static message for a negative errno or project error code. */
const char *cv_strerror(int err);

#endif
