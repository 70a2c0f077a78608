"""Nothing slow on the agent's loop (issue 12): while `rotate all` makes RSA-4096 keys (seconds
each) and 64 clients flood the REST API with bad sign-ins, `certvisorctl status` answers, a
valid REST request succeeds, and the systemd watchdog is pinged on time. Key generation, the
staging writes and the sign-ins' key derivations run on the offload workers; were any of them on
the loop, every answer and every ping would wait for them."""
import contextlib
import threading
import time

import pytest

from conftest import Repeatedly, wait_for
from test_api import ADMIN, API, Node, add_user, api_service
from test_certs import free_port, state
from test_signin_flood import OTHER_SOURCE, Flood, sign_in_as_admin
from test_tls_services import tls_service

WATCHDOG_USEC = 4_000_000  # pinged every 2 s; a gap past 4 s would be a missed deadline
STATUS_BOUND_S = 3.0       # each answer (10 ms when idle); a loop stalled by the keys: 27 s
RSA_4096 = 'certificates {\n  key_type = "rsa-4096"\n}\n'

pytestmark = pytest.mark.skipif(not API.exists(), reason="needs certvisor-api")


def rsa_node(agent_factory):
    """An agent with the api and two TLS services whose next keys are RSA-4096.

    It starts once with the default ECDSA keys (eight RSA-4096 keys at first start would take
    half a minute), then again with key_type = rsa-4096, which rotation uses from then on."""
    port, http_port = free_port(), free_port()
    agent = agent_factory({"api": api_service(port, http_port),
                           "front": tls_service("proxy", free_port()),
                           "console": tls_service("cm", free_port())},
                          env_extra={"WATCHDOG_USEC": str(WATCHDOG_USEC)})
    agent.start()
    add_user(agent, *ADMIN, "admin")
    assert agent.stop() == 0
    (agent.conf_d / "certs.conf").write_text(RSA_4096)
    agent.start()
    return Node(agent, port, http_port)


def watchdog_gaps(agent, since, until):
    """The gaps between the pings from the last one before since to the first one after until."""
    messages = agent.notify.drain()
    times = [t for m, t in zip(messages, agent.notify.times) if "WATCHDOG=1" in m]
    first = max([i for i, t in enumerate(times) if t <= since], default=0)
    last = min([i for i, t in enumerate(times) if t >= until], default=len(times) - 1)
    times = times[first:last + 1]
    return [b - a for a, b in zip(times, times[1:])], times


def test_rotate_all_with_rsa_4096_keys_leaves_the_loop_free(agent_factory):
    node = rsa_node(agent_factory)
    agent = node.agent
    before = node.fingerprints()

    def status():
        out = agent.ctl("status", timeout=60)
        return None if out.returncode == 0 and "RUNNING" in out.stdout else out.stdout + out.stderr

    def rest():
        # From another address than the flood's, which is locked out; a 503 for the global
        # sign-in budget is waited out (sign_in_as_admin), as a client does.
        seen = sign_in_as_admin(node, OTHER_SOURCE, within=20.0)
        return None if seen[-1] == 200 else f"GET /v1/cluster as admin: {seen}"

    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        status_probe = stack.enter_context(Repeatedly(status, 0.05))
        rest_probe = stack.enter_context(Repeatedly(rest, 0.5))
        # 64 clients sending bad Basic sign-ins (tests/integration/test_signin_flood.py): their
        # key derivations share the offload workers with the rotation's keys.
        flood = stack.enter_context(Flood(node))
        out = agent.ctl("cluster", "certificate", "rotate", "all", timeout=300)
    took = time.monotonic() - started
    assert out.returncode == 0, out.stdout + out.stderr
    after = node.fingerprints()
    assert after["api"] != before["api"] and after["proxy"] != before["proxy"]
    # A PKCS#8 RSA-4096 key is over 3 kB; an ECDSA P-256 one about 240 bytes.
    assert state(agent, "certs/proxy/current/key.pem").stat().st_size > 3000

    # The ping after the rotation is in the gaps too: a stall at its end would show.
    wait_for(lambda: watchdog_gaps(agent, started, started + took)[1][-1] >= started + took,
             timeout=2 * WATCHDOG_USEC / 1e6, what="a watchdog ping after the rotation")
    gaps, pings = watchdog_gaps(agent, started, started + took)
    print(f"rotate all took {took:.1f}s; status answers: {len(status_probe.durations)}, "
          f"slowest {max(status_probe.durations):.2f}s; REST answers: {len(rest_probe.durations)}, "
          f"slowest {max(rest_probe.durations):.2f}s, {len(rest_probe.failures)} failed; "
          f"watchdog pings: {len(pings)}, "
          f"longest gap {max(gaps, default=0):.2f}s; flood answers {flood.statuses}")
    # Seven RSA-4096 keys take seconds: had they run on the loop, no probe would have
    # answered in the meantime.
    assert took > STATUS_BOUND_S, "the keys were made too fast to prove anything"
    assert not status_probe.failures, status_probe.failures[:3]
    # Nearly every admin request succeeds. On a loaded machine with a sanitizer build, an odd
    # one under the flood outlasts the API's 15 s wait for the agent (504); a stalled loop fails
    # every one made while the keys are made.
    assert len(rest_probe.failures) <= len(rest_probe.durations) // 10, rest_probe.failures[:3]
    assert max(status_probe.durations) < STATUS_BOUND_S, status_probe.durations
    assert len(rest_probe.durations) >= 5, rest_probe.durations
    assert flood.statuses.get(401, 0) > 0, flood.statuses  # the flood was real
    assert len(pings) >= 2 and max(gaps) < WATCHDOG_USEC / 1e6, gaps
    wait_for(lambda: all(state == "RUNNING" for state, _ in agent.status().values()),
             what="every service running after the rotation")


def test_stopping_while_the_keys_are_made_changes_nothing(agent_factory):
    node = rsa_node(agent_factory)
    agent = node.agent
    before = node.fingerprints()
    result = {}

    def rotate():
        result["out"] = agent.ctl("cluster", "certificate", "rotate", "all", timeout=300)

    thread = threading.Thread(target=rotate, daemon=True)
    thread.start()
    wait_for(lambda: "requested cluster certificate rotate" in agent.log_text(),
             what="the rotation to start")
    time.sleep(1)  # seven RSA-4096 keys, one after another: the first is still being made
    assert agent.stop() == 0
    thread.join(timeout=60)
    out = result["out"]
    assert out.returncode == 1, out.stdout + out.stderr
    assert "the agent is shutting down; nothing was changed" in out.stdout + out.stderr
    agent.start()
    assert node.fingerprints() == before
    # What the workers staged was never current, and start-up removed it.
    for name in ("api", "proxy"):
        generations = [p.name for p in state(agent, "certs", name).iterdir() if p.name.isdigit()]
        assert generations == ["1"], (name, generations)
