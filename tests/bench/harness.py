"""What the benchmarks that run real agents share: the integration tests' harness
(tests/integration/conftest.py) for a given build, agents in one directory, and the shipped
Redis shard on free ports."""

import os
import pathlib
import sys

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]


def integration_harness(build_dir):
    """The integration tests' conftest, with its binaries taken from build_dir. Their helpers
    (test_certs, test_api, ...) can be imported after this."""
    os.environ["CERTVISOR_BUILD_DIR"] = str(build_dir)
    sys.path.insert(0, str(REPOSITORY / "tests" / "integration"))
    import conftest
    return conftest


def agent_factory(conftest, base, agents):
    """factory(services, main_extra, env_extra) -> an agent in its own directory under base,
    appended to agents (the caller cleans them up)."""
    def factory(services, main_extra="", env_extra=None):
        root = pathlib.Path(base) / f"agent{len(agents)}"
        root.mkdir(mode=0o755)
        agent = conftest.Agent(root, services, main_extra, env_extra)
        agent.record.touch()
        agents.append(agent)
        return agent
    return factory


def shipped_shard(db_port, plain_port, tls_port):
    """conf.d/10-redis-db1.conf (database db1 and its Redis shard) on the given ports, on the
    loopback address only."""
    text = (REPOSITORY / "conf.d/10-redis-db1.conf").read_text()
    return (text.replace("12000", str(db_port)).replace("12100", str(plain_port))
            .replace("12101", str(tls_port)).replace('"0.0.0.0"', '"127.0.0.1"'))
