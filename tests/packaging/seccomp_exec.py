"""Runs a command under the system call filter a unit's SystemCallFilter= describes.

Usage: seccomp_exec.py ERRNO FILTER -- COMMAND [ARGUMENT...]
  FILTER is the unit's allow list, as in "SystemCallFilter=@system-service": groups and names,
  separated by spaces; systemd-analyze syscall-filter expands the groups as systemd would.
  A call outside it fails with ERRNO (SystemCallErrorNumber=), or kills the process (SIGSYS)
  when ERRNO is "kill". Deny lists ("~...") are not supported.
"""
import errno
import os
import subprocess
import sys

import seccomp


def expand(name, seen):
    """The system calls of a group (recursively) or the name itself."""
    if not name.startswith("@"):
        return {name}
    if name in seen:
        return set()
    seen.add(name)
    out = subprocess.run(["systemd-analyze", "syscall-filter", name], check=True,
                         capture_output=True, text=True).stdout
    calls = set()
    for line in out.splitlines()[1:]:
        line = line.strip()
        if line and not line.startswith("#"):
            calls |= expand(line, seen)
    return calls


def main():
    separator = sys.argv.index("--")
    error, words, command = sys.argv[1], sys.argv[2:separator], sys.argv[separator + 1:]
    if any(w.startswith("~") for w in words):
        sys.exit("seccomp_exec: deny lists are not supported")
    action = seccomp.KILL if error == "kill" else seccomp.ERRNO(getattr(errno, error))
    allowed = set()
    for word in " ".join(words).split():
        allowed |= expand(word, set())
    # What systemd always allows with an allow list, so that the process can exec and exit.
    allowed |= {"execve", "exit", "exit_group", "rt_sigreturn", "getrlimit"}
    rules = seccomp.SyscallFilter(defaction=action)
    for call in sorted(allowed):
        try:
            rules.add_rule(seccomp.ALLOW, call)
        except (RuntimeError, ValueError, OSError):
            pass  # not a system call of this architecture
    rules.load()
    os.execvp(command[0], command)


main()
