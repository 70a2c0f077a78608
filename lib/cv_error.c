/* Error code to message mapping for project codes and errno values. */
#include "cv_error.h"

#include <string.h>

const char *cv_strerror(int err)
{
    int positive = err < 0 ? -err : err;

    switch (positive) {
#define CV_ERROR_CASE(name, msg)                                                                   \
    case CV_E##name##_POSITIVE:                                                                    \
        return msg;
        CV_ERROR_MAP(CV_ERROR_CASE)
#undef CV_ERROR_CASE
    default:
        return strerror(positive);
    }
}
