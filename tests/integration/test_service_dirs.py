"""A service's own writable directory, made and handed over by the agent before it starts."""
import os
import pwd
import stat

from test_certs import state
from test_supervision import svc


def test_state_directory_is_made_for_the_service_user(agent_factory):
    nobody = pwd.getpwnam("nobody")
    agent = agent_factory({"keeper": svc(extra='state_directory = "%{state_dir}/keeper"\n'
                                               'user = "nobody"')})
    agent.start()
    directory = state(agent, "keeper")
    st = directory.stat()
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o750
    assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid)
    # The agent's own state directory stays the agent's.
    assert state(agent).stat().st_uid == os.getuid()


def test_a_state_directory_that_is_a_file_stops_the_start_with_the_reason(agent_factory):
    agent = agent_factory({"keeper": svc(extra='state_directory = "%{state_dir}/keeper"\n'
                                               'start_retries = 0')})
    agent.start()
    assert agent.ctl("stop", "keeper").returncode == 0
    directory = state(agent, "keeper")
    directory.rmdir()
    directory.write_text("not a directory")
    out = agent.ctl("start", "keeper")
    assert out.returncode != 0
    assert f"{directory} is not a directory" in agent.log_text()
