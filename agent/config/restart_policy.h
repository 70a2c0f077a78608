/*
 * How a service is restarted and when it counts as ready: the parts of its configuration that
 * the state machine (supervise/service_fsm.c) decides with. Here, with the configuration, so
 * that parsing a service's section needs nothing of the supervisor.
 */
#ifndef CERTVISOR_RESTART_POLICY_H
#define CERTVISOR_RESTART_POLICY_H

enum autorestart_mode { AUTORESTART_FALSE, AUTORESTART_TRUE, AUTORESTART_UNEXPECTED };
enum readiness_mode { READINESS_NOTIFY, READINESS_STARTED };

/* The parts of a service's configuration that the state machine decides with. */
struct fsm_policy {
    enum autorestart_mode autorestart;
    enum readiness_mode readiness;
    int start_retries;    /* failed starts tolerated before FATAL */
    double start_timeout; /* seconds to become ready; 0 waits forever */
    double stop_timeout;  /* seconds between the stop signal and SIGKILL; 0 kills at once */
    double backoff_initial;
    double backoff_factor;
    double backoff_max;
    double backoff_reset_after; /* a run this long after readiness forgets earlier failures */
};

#endif
