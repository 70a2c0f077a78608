"""Under systemd, services' output goes to journald with SYSLOG_IDENTIFIER=<service>.

A stand-in journald listens where the real one does and decodes its stream
protocol; the agent's own stderr is a socket named by JOURNAL_STREAM, as
systemd sets it up. Skipped where a real journald owns the path.
"""
import os
import pathlib
import socket
import subprocess
import threading

import pytest

from conftest import CERTVISORD, wait_for
from test_supervision import quoted, svc

JOURNAL_DIR = pathlib.Path("/run/systemd/journal")
JOURNAL_STDOUT = JOURNAL_DIR / "stdout"

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or JOURNAL_STDOUT.exists(),
                                reason="needs root and no journald of the machine's own")


class FakeJournald:
    """Accepts stream connections: a 7-line header, then one entry per line."""

    def __init__(self):
        self.created_dir = not JOURNAL_DIR.exists()
        JOURNAL_DIR.mkdir(parents=True, exist_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(JOURNAL_STDOUT))
        self.sock.listen(16)
        self.entries = []  # (identifier, priority, message)
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn):
        data = b""
        header = None
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
            if header is None:
                if data.count(b"\n") < 7:
                    continue
                parts = data.split(b"\n", 7)
                header, data = parts[:7], parts[7]
            *lines, data = data.split(b"\n")
            with self.lock:
                for line in lines:
                    self.entries.append((header[0].decode(), int(header[2]), line.decode()))

    def messages_of(self, identifier):
        with self.lock:
            return [m for i, _, m in self.entries if i == identifier]

    def close(self):
        self.sock.close()
        JOURNAL_STDOUT.unlink()
        if self.created_dir:
            for d in (JOURNAL_DIR, JOURNAL_DIR.parent):
                try:
                    d.rmdir()
                except OSError:
                    pass


def test_service_output_goes_to_the_journal_under_its_own_name(agent_factory):
    journald = FakeJournald()
    agent = agent_factory({"talker": svc(quoted("--print", "hello journal"))})
    theirs, ours = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    st = os.fstat(theirs.fileno())
    env = {"PATH": "/usr/bin:/bin", "NOTIFY_SOCKET": agent.notify.path,
           "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
    for key in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if key in os.environ:
            env[key] = os.environ[key]
    agent.write_main("")
    agent.config.write_text(agent.config.read_text().replace('log_target = "console"', 'log_target = "auto"'))
    proc = subprocess.Popen([str(CERTVISORD), "-c", str(agent.config)], stdout=theirs, stderr=theirs,
                            env=env, start_new_session=True)
    agent.proc = proc
    theirs.close()
    try:
        agent.wait_ready()
        wait_for(lambda: journald.messages_of("talker"), what="the service's line in the journal")
        wait_for(lambda: len(journald.messages_of("talker")) == 2, what="stdout and stderr lines")
        assert sorted(journald.messages_of("talker")) == ["hello journal", "hello journal (stderr)"]
        assert all(p == 6 for i, p, _ in journald.entries if i == "talker")
        # No log file when the journal takes the lines, and tail still has them.
        assert not (agent.prefix / "var/log/certvisor/talker.log").exists()
        assert "hello journal" in agent.ctl("tail", "talker").stdout
        # The agent's own messages carry syslog priority prefixes for journald.
        ours.settimeout(2)
        own = ours.recv(65536).decode()
        assert own.startswith("<6>") and "certvisord" in own
        assert agent.stop() == 0
    finally:
        ours.close()
        journald.close()
