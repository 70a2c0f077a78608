/* Test-only hooks into the apply pipeline (see apply_hooks.h). */
#include "apply_hooks.h"

#include "log.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

void apply_hook(const char *point)
{
#ifdef CERTVISOR_TEST_HOOKS
    const char *crash_at = getenv("CERTVISOR_TEST_CRASH_AT");

    if (crash_at && strcmp(crash_at, point) == 0) {
        log_warning("Test hook: killing the agent at apply step '%s'", point);
        raise(SIGKILL);
    }
#else
    (void)point;
#endif
}

long apply_hook_clock_offset(void)
{
#ifdef CERTVISOR_TEST_HOOKS
    const char *days = getenv("CERTVISOR_TEST_CLOCK_OFFSET_DAYS");

    if (days)
        return strtol(days, NULL, 10) * 86400L;
#endif
    return 0;
}

long apply_hook_coalesce_ms(long default_ms)
{
#ifdef CERTVISOR_TEST_HOOKS
    const char *ms = getenv("CERTVISOR_TEST_COALESCE_MS");

    if (ms)
        return strtol(ms, NULL, 10);
#endif
    return default_ms;
}
