"""The Redis shard: a stock redis-server supervised with its own notify support."""
import shutil
import socket
import subprocess

import pytest

from test_certs import free_port

from conftest import wait_for

pytestmark = pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server not installed")




def test_redis_server_becomes_ready_through_the_agents_notify_socket(agent_factory):
    port = free_port()
    agent = agent_factory({"redis-db1": f"""
        command = "/usr/bin/redis-server"
        arguments = {{"--port", "{port}", "--bind", "127.0.0.1", "--supervised", "systemd",
                     "--daemonize", "no", "--dir", "%{{state_dir}}", "--save", "", "--appendonly", "no"}}
        readiness = notify
        start_timeout = 20
    """})
    agent.start()
    assert agent.state("redis-db1") == "RUNNING"
    ping = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True)
    assert ping.stdout.strip() == "PONG"
    subprocess.run(["redis-cli", "-p", str(port), "set", "k", "v"], check=True, capture_output=True)
    old = agent.pid_of("redis-db1")
    assert agent.ctl("restart", "redis-db1").returncode == 0
    assert agent.pid_of("redis-db1") != old
    # Readiness means it answers at once.
    ping = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True)
    assert ping.stdout.strip() == "PONG"
    assert "Ready to accept connections" in agent.ctl("tail", "redis-db1").stdout
