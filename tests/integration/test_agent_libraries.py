"""What the agent loads: no library twice and none it was kept free of (docs/design.md). Each
one costs every node its private memory (tests/bench/README.md, "USS on a real node")."""
import re
import subprocess

from conftest import CERTVISORD


def loaded_libraries():
    out = subprocess.run(["ldd", str(CERTVISORD)], capture_output=True, text=True, check=True)
    return set(re.findall(r"^\s*(\S+\.so[.\d]*)", out.stdout, re.M))


def test_libevent_is_loaded_once_and_libsystemd_not_at_all():
    libraries = loaded_libraries()
    assert "libevent_core-2.1.so.7" in libraries, libraries
    # libevent_openssl's pkg-config file asks for libevent, core and extra again in one
    # library: linked by name, the agent loads only the parts.
    assert "libevent-2.1.so.7" not in libraries, libraries
    # The agent speaks systemd's protocols itself (lib/sdproto.c).
    assert not [name for name in libraries if name.startswith("libsystemd")], libraries


def test_the_directory_client_stays_out_of_the_agent():
    """OpenLDAP's library, and GnuTLS under it, run in certvisor-ldap-check only."""
    libraries = loaded_libraries()
    assert not [name for name in libraries
                if name.startswith(("libldap", "liblber", "libgnutls", "libsasl2"))], libraries
