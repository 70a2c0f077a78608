"""certvisorctl: help, output formats, exit statuses, tail, reload of one service."""
import subprocess

from conftest import CERTVISORCTL, follow_until_attached, wait_for
from test_supervision import quoted, svc


def test_help_lists_every_command_of_the_table():
    out = subprocess.run([str(CERTVISORCTL), "help"], capture_output=True, text=True)
    assert out.returncode == 0
    for command in ("status", "start", "stop", "restart", "reload", "pid", "tail", "avail", "version"):
        assert f"\n  {command}" in out.stdout, command
    one = subprocess.run([str(CERTVISORCTL), "help", "restart"], capture_output=True, text=True)
    assert one.stdout.strip().startswith("restart <name>...|all")


def test_unknown_command_is_a_usage_error():
    out = subprocess.run([str(CERTVISORCTL), "frobnicate"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "unknown command 'frobnicate'" in out.stderr


def test_no_agent_exits_4(tmp_path):
    out = subprocess.run([str(CERTVISORCTL), "-s", str(tmp_path / "none.sock"), "status"],
                         capture_output=True, text=True)
    assert out.returncode == 4
    assert "certvisord is not running" in out.stderr


def test_status_format_and_exit_codes(agent_factory):
    agent = agent_factory({"web": svc(), "idle": svc(extra="autostart = false")})
    agent.start()
    out = agent.ctl("status", "web")
    assert out.returncode == 0
    line = out.stdout.rstrip("\n")
    assert line[:33] == "web".ljust(33) and line[33:43] == "RUNNING".ljust(10)
    assert line[43:].startswith(f"pid {agent.pid_of('web')}, uptime 0:00:0")
    assert agent.ctl("status").returncode == 3  # idle is not running
    out = agent.ctl("status", "web", "ghost")
    assert out.returncode == 4
    assert "ghost: ERROR (no such process)" in out.stdout
    assert agent.ctl("status", "idle").stdout.split()[1] == "STOPPED"


def test_start_stop_messages(agent_factory):
    agent = agent_factory({"web": svc()})
    agent.start()
    out = agent.ctl("start", "web")
    assert out.stdout.strip() == "web: ERROR (already started)"
    out = agent.ctl("stop", "web")
    assert (out.returncode, out.stdout.strip()) == (0, "web: stopped")
    out = agent.ctl("stop", "web")
    assert (out.returncode, out.stdout.strip()) == (1, "web: ERROR (not running)")
    out = agent.ctl("start", "web", "ghost")
    assert out.returncode == 4
    assert out.stdout.splitlines() == ["ghost: ERROR (no such process)", "web: started"]
    assert agent.ctl("start").returncode == 2


def test_pid_avail_version_and_json(agent_factory):
    agent = agent_factory({"web": svc(), "db": svc(extra="autostart = false")})
    agent.start()
    assert int(agent.ctl("pid").stdout) == agent.proc.pid
    assert int(agent.ctl("pid", "db").stdout) == 0
    assert len(agent.ctl("pid", "all").stdout.split()) == 2
    avail = agent.ctl("avail").stdout
    assert "web" in avail and "auto" in avail and "manual" in avail
    assert agent.ctl("version").stdout.strip() == agent.ctl("--json", "version").stdout.split('"version":"')[1].split('"')[0]
    assert '"state":"RUNNING"' in agent.ctl("--json", "status", "web").stdout


def test_tail_shows_last_lines_and_follows(agent_factory):
    agent = agent_factory({"talker": svc(quoted("--print", "hello from talker"))})
    agent.start()
    wait_for(lambda: "hello from talker" in agent.ctl("tail", "talker").stdout, what="the line")
    assert agent.ctl("tail", "talker", "stderr").stdout.strip() == "hello from talker (stderr)"
    assert agent.ctl("tail", "talker", "stdout").stdout.strip() == "hello from talker"
    follower = subprocess.Popen([str(CERTVISORCTL), "-s", str(agent.socket), "tail", "-f", "-n", "0", "talker", "stdout"],
                                stdout=subprocess.PIPE, text=True)
    try:
        follow_until_attached(follower, lambda: agent.ctl("restart", "talker"), "hello from talker")
    finally:
        follower.kill()
        follower.wait()
    # The agent noticed the follower leaving and still answers.
    assert agent.ctl("status", "talker").returncode == 0
    assert agent.ctl("tail", "ghost").returncode == 4


def test_reload_of_a_service_uses_its_signal_and_the_notify_handshake(agent_factory):
    agent = agent_factory({
        "hup": svc(extra="reload_signal = HUP"),
        "plain": svc(),
        "bad": svc(quoted("--reject-reload"), extra="reload_signal = HUP\nstart_retries = 0"),
    })
    agent.start()
    pid = agent.pid_of("hup")
    out = agent.ctl("reload", "hup")
    assert (out.returncode, out.stdout.strip()) == (0, "hup: reloaded")
    assert agent.pid_of("hup") == pid
    assert agent.records("reload", "hup")
    old_plain = agent.pid_of("plain")
    out = agent.ctl("reload", "plain")
    assert out.stdout.strip() == "plain: restarted (it has no reload signal)"
    assert agent.pid_of("plain") != old_plain
    out = agent.ctl("reload", "bad")
    assert out.returncode == 1
    assert "bad: ERROR (exited during the reload)" in out.stdout


def ctl_alone(*args):
    """certvisorctl without an agent: what it says before it would connect."""
    return subprocess.run([str(CERTVISORCTL), "-s", "/nonexistent/control.sock", *args],
                          capture_output=True, text=True)


def test_help_after_any_command_or_group_prints_its_usage():
    for words, first in ((["status"], "status [<name>...]"),
                         (["cluster"], "cluster certificate list"),
                         (["user"], "user list"),
                         (["cluster", "certificate", "rotate"], "cluster certificate rotate <name>|all"),
                         (["tail"], "tail [-f] [-n <lines>] <name>")):
        for flag in ("--help", "-h"):
            out = ctl_alone(*words, flag)
            assert out.returncode == 0, (words, out.stderr)
            assert out.stdout.lstrip().startswith(first), (words, out.stdout)
            assert out.stderr == ""
    out = ctl_alone("cluster", "--help")
    # Only the group's commands: "cluster status", not the top-level "status".
    assert "cluster config <setting> <value>" in out.stdout and "cluster status" in out.stdout
    assert not any(line.lstrip().startswith("status") for line in out.stdout.splitlines())


def test_a_missing_subcommand_lists_the_subcommands():
    out = ctl_alone("cluster")
    assert out.returncode == 2
    assert out.stderr.startswith("certvisorctl: 'cluster' needs a subcommand: certificate, status, init, token, join, leave, remove, admit, config, ocsp, ldap\n")
    assert "cluster certificate set <name>" in out.stderr
    out = ctl_alone("cluster", "certificate")
    assert out.returncode == 2
    assert ("'cluster certificate' needs a subcommand: list, show, ca, set, set-many, rotate, delete, csr"
            in out.stderr)
    out = ctl_alone("user")
    assert out.returncode == 2 and "'user' needs a subcommand: list, add, passwd" in out.stderr


def test_an_unknown_subcommand_is_named_with_the_closest_one():
    out = ctl_alone("cluster", "certificat", "list")
    assert out.returncode == 2
    assert ("unknown subcommand 'certificat' of 'cluster' (did you mean 'certificate'?); its subcommands: "
            "certificate, status, init, token, join, leave, remove, admit, config, ocsp, ldap") in out.stderr
    out = ctl_alone("cluster", "certificate", "lst")
    assert out.returncode == 2 and "unknown subcommand 'lst' of 'cluster certificate' (did you mean 'list'?)" in out.stderr
    out = ctl_alone("stauts")
    assert out.returncode == 2 and "unknown command 'stauts' (did you mean 'status'?)" in out.stderr
    out = ctl_alone("help", "cluster", "certificat")
    assert out.returncode == 2 and "did you mean 'certificate'?" in out.stderr


def test_options_in_the_wrong_place_say_where_they_go():
    out = ctl_alone("--dry-run", "cluster", "config", "min_data_TLS_version", "1.3")
    assert out.returncode == 2
    assert out.stderr == ("certvisorctl: --dry-run goes after the command: certvisorctl cluster config "
                          "min_data_TLS_version 1.3 --dry-run\n")
    out = ctl_alone("-n", "5", "audit")
    assert out.returncode == 2 and "-n goes after the command, e.g. certvisorctl audit [-n <entries>]" in out.stderr
    out = ctl_alone("status", "--json")
    assert out.returncode == 2
    assert "--json is certvisorctl's own option and goes before the command: certvisorctl --json status" in out.stderr
    out = ctl_alone("--bogus", "status")
    assert out.returncode == 2 and "unknown option '--bogus'" in out.stderr
    assert len(out.stderr.splitlines()) == 1  # not the whole help
    out = ctl_alone("status", "--bogus")
    assert out.returncode == 2 and "unknown option '--bogus' of 'status'" in out.stderr


def test_bad_keywords_of_certificate_set_are_named(tmp_path):
    usage = "usage: cluster certificate set <name> certificate_file <file> [key_file <file>]"
    pem = tmp_path / "c.pem"
    pem.write_text("x\n")
    cases = [
        (["cm", "certfile", "c.pem"], "unknown keyword 'certfile' (did you mean 'certificate_file'?); expected certificate_file <file>"),
        (["certificate_file", "cm", "c.pem"], "'certificate_file' is a keyword, not a certificate name: the name comes first"),
        (["cm", "certificate_file", str(pem), "keyfile", "k.pem"], "unknown keyword 'keyfile' (did you mean 'key_file'?)"),
        (["cm", "certificate_file"], "certificate_file needs a file"),
        (["cm", "certificate_file", str(pem), "key_file", str(pem), "extra"], "unexpected argument 'extra'"),
        ([], "the certificate's name is missing"),
    ]
    for args, message in cases:
        out = ctl_alone("cluster", "certificate", "set", *args)
        assert out.returncode == 2, (args, out.stderr)
        assert message in out.stderr and usage in out.stderr, (args, out.stderr)
    out = ctl_alone("cluster", "certificate", "set-many", "api", "certificate_file", str(pem), "keyfile", "k")
    assert out.returncode == 2 and "unknown keyword 'keyfile' (did you mean 'key_file'?)" in out.stderr


def test_extra_arguments_are_refused(agent_factory):
    agent = agent_factory({"web": svc()})
    agent.start()
    before = agent.ctl("cluster", "config", "show").stdout
    for args in (["cluster", "config", "show", "extra"], ["cluster", "certificate", "list", "extra"],
                 ["cluster", "certificate", "ca", "extra"], ["version", "extra"], ["avail", "extra"],
                 ["metrics", "extra"], ["cluster", "certificate", "rotate", "cm", "extra"]):
        out = agent.ctl(*args)
        assert out.returncode == 2, (args, out.stdout)
        assert "unexpected argument 'extra'" in out.stderr and "usage: " in out.stderr, args
        assert out.stdout == ""
    assert agent.ctl("cluster", "config", "show").stdout == before
    assert "requested cluster certificate rotate" not in agent.log_text()


def config_rows(agent):
    return {line.split()[0]: line.split()[1] for line in agent.ctl("cluster", "config", "show").stdout.splitlines()}


def test_policy_values_take_every_spelling_operators_know(agent_factory):
    agent = agent_factory({"web": svc()})
    agent.start()
    out = agent.ctl("cluster", "config", "min_control_TLS_version", "TLSv1.0")
    assert out.returncode == 0, out.stderr
    assert "min_control_TLS_version 1 allows TLS 1" in out.stderr  # the warning, not a refusal
    out = agent.ctl("cluster", "config", "sentinel_tls_mode", "Required", "http_support", "false")
    assert out.returncode == 0, out.stderr
    rows = config_rows(agent)
    assert (rows["min_control_TLS_version"], rows["sentinel_tls_mode"], rows["http_support"]) == ("1", "required", "disabled")
    assert agent.ctl("cluster", "config", "http_support", "True").returncode == 0
    assert config_rows(agent)["http_support"] == "enabled"


def test_one_setting_twice_in_one_command_is_refused(agent_factory):
    agent = agent_factory({"web": svc()})
    agent.start()
    before = agent.ctl("cluster", "config", "show").stdout
    out = agent.ctl("cluster", "config", "cipher_suites", "HIGH", "control_cipher_suites", "ECDHE+AESGCM")
    assert out.returncode == 2
    assert ("cipher_suites and control_cipher_suites are two names of one setting (control_cipher_suites); "
            "give it once: nothing was changed") in out.stderr
    out = agent.ctl("cluster", "config", "http_support", "disabled", "HTTP_SUPPORT", "enabled")
    assert out.returncode == 2 and "HTTP_SUPPORT is given twice" in out.stderr
    assert agent.ctl("cluster", "config", "show").stdout == before


def test_usage_lines_agree_with_the_behaviour():
    out = ctl_alone("user", "add")
    assert out.returncode == 2
    assert "usage: user add <name> [--role admin|viewer] [--password-file <file>|-]" in out.stderr
    assert "oldest first" in ctl_alone("help", "audit").stdout
    assert "newest" not in ctl_alone("help").stdout


def test_audit_prints_oldest_first(agent_factory):
    agent = agent_factory({"web": svc()})
    agent.start()
    assert agent.ctl("cluster", "config", "http_support", "disabled").returncode == 0
    assert agent.ctl("cluster", "config", "http_support", "enabled").returncode == 0
    lines = agent.ctl("audit").stdout.splitlines()
    assert "http_support=disabled" in lines[-2] and "http_support=enabled" in lines[-1]
