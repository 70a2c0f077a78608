/* Fuzzes opening a sealed private key (agent/cluster/sealed.c): a value read from etcd is
 * outside input; whatever it holds, it is refused or, only when it really was sealed with this
 * key for this path, opened, and never read out of bounds. */
#include "fuzz_util.h"
#include "sealed.h"

#include <errno.h>
#include <string.h>

#define PATH "/certvisor/fuzz/spec/certs/proxy/gen/1/key"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned char key[SEALED_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8};
    unsigned char *plain;
    size_t len;
    char err[256];
    int r = sealed_open(key, PATH, strlen(PATH), data, size, &plain, &len, err, sizeof(err));

    if (r < 0) {
        FUZZ_CHECK(r == -EBADMSG || r == -ENOMEM);
        FUZZ_CHECK(plain == NULL && len == 0);
        return 0;
    }
    FUZZ_CHECK(len + SEALED_OVERHEAD == size && plain[len] == '\0');
    sealed_free(plain, len);
    return 0;
}
