/* Test-only hooks into the apply pipeline: proving that a crash at any step leaves a consistent
 * store. Compiled in only with CERTVISOR_TESTS (CERTVISOR_TEST_HOOKS); a no-op otherwise. */
#ifndef CERTVISOR_APPLY_HOOKS_H
#define CERTVISOR_APPLY_HOOKS_H

/*
 * Marks a point of an apply: "staged" (new generations written, nothing in
 * force), "half-committed" (the first of several certificates switched, the others
 * not yet), "committed" (generations current or policy saved, files not yet
 * written), "rendered" (files written, no service told), "service" (after each
 * service came back), "finishing" (before pruning and the audit line). When
 * the environment variable CERTVISOR_TEST_CRASH_AT names the point, the agent
 * kills itself with SIGKILL there, as a power cut would.
 */
void apply_hook(const char *point);

/*
 * Seconds to add to the clock when counting the days a certificate has
 * left: CERTVISOR_TEST_CLOCK_OFFSET_DAYS, so a test can see renewal and
 * expiry warnings without waiting months. 0 without the test hooks.
 */
long apply_hook_clock_offset(void);

/*
 * The coalescing window: default_ms, or CERTVISOR_TEST_COALESCE_MS, so a test
 * can send a burst from separate processes and see it become one plan.
 */
long apply_hook_coalesce_ms(long default_ms);

#endif
