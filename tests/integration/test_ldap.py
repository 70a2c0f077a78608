"""LDAP sign-in to the REST API against a real OpenLDAP slapd: a name that is not a local user
is looked up in the directory (a search as a service account, then a bind as the user with the
password given), and the groups it is a member of give its role.

Everything is a real program, as in a customer's network: slapd with a configuration of its own
(cn=config, made by slapadd as slapd-config(5) describes), reached only over ldaps and demanding
a client certificate; the openssl CLI is the CA of the directory's certificate and of the
client certificates, and a second CA ("stranger") issues a client certificate the directory
does not trust. The settings go through certvisorctl and the REST API as an operator's would.

The directory (every fixture's, unless a test changes it):

    dc=example,dc=org
      cn=reader                  the service account that searches (reader-pass)
      ou=people   uid=alice      alice-pass, in cn=certvisor-admins   -> admin
                  uid=bob        bob-pass,   in cn=certvisor-viewers  -> viewer
                  uid=carol      carol-pass, in no group              -> refused
      ou=groups   cn=certvisor-admins, cn=certvisor-viewers (groupOfNames, member)

The users' entries carry memberOf too (the memberof overlay's attribute), for the form that
reads the user's own entry instead of searching the groups.

Successful sign-ins are cached for ldap_cache_seconds: the tests that take the directory or its
trust away set it to 0, so that each request goes to the directory.
"""
import os
import pathlib
import re
import shutil
import subprocess

import pytest

from conftest import wait_for
from test_api import ADMIN, API, Node, add_user, api_service
from test_certs import free_port
from test_console import CM, cm_service, stop_cleanly
from test_ocsp import error_message, fields, refused_naming, run_openssl

SLAPD = pathlib.Path("/usr/sbin/slapd")
SLAPADD = pathlib.Path("/usr/sbin/slapadd")
LDAPWHOAMI = shutil.which("ldapwhoami")
LDAPSEARCH = shutil.which("ldapsearch")
OPENSSL = shutil.which("openssl")

pytestmark = [
    pytest.mark.skipif(not (SLAPD.exists() and SLAPADD.exists()), reason="slapd not installed"),
    pytest.mark.skipif(not (LDAPWHOAMI and LDAPSEARCH), reason="ldap-utils not installed"),
    pytest.mark.skipif(not OPENSSL, reason="openssl not installed"),
    pytest.mark.skipif(not (API.exists() and CM.exists()),
                       reason="certvisor-api or certvisor-cm not built"),
]

SUFFIX = "dc=example,dc=org"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
ADMINS_GROUP = f"cn=certvisor-admins,{GROUPS}"
VIEWERS_GROUP = f"cn=certvisor-viewers,{GROUPS}"
# A group the directory does not have, listed before the real one: the settings take lists.
AUDITORS_GROUP = f"cn=auditors,{GROUPS}"
READER_DN, READER_PASSWORD = f"cn=reader,{SUFFIX}", "reader-pass"
ROOT_DN, ROOT_PASSWORD = f"cn=admin,{SUFFIX}", "directory-root-pass"

ALICE = ("alice", "alice-pass")
BOB = ("bob", "bob-pass")
CAROL = ("carol", "carol-pass")
GROUPS_OF = {"alice": [ADMINS_GROUP], "bob": [VIEWERS_GROUP], "carol": []}
# Every secret of the directory: none may show in what the agent logs or certvisorctl prints.
SECRETS = (READER_PASSWORD, ALICE[1], BOB[1], CAROL[1])


def user_dn(name):
    return f"uid={name},{PEOPLE}"


# ------------------------------------------------------------------ the CAs


CA_CONFIG = """\
[req]
distinguished_name = subject

[subject]

[ca_itself]
basicConstraints     = critical, CA:TRUE
keyUsage             = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash

[server]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectAltName         = IP:127.0.0.1, DNS:localhost
authorityKeyIdentifier = keyid

[client]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
authorityKeyIdentifier = keyid
"""


class DirectoryCa:
    """A CA made with the openssl CLI, as an operator's would be: it issues the directory's
    server certificate (for 127.0.0.1 and localhost) and client certificates (clientAuth, what
    the agent requires of ldap_client). Each CA has a name of its own: a stranger CA with the
    same subject as the trusted one would fail differently (a bad signature, not an unknown
    issuer)."""

    def __init__(self, directory, subject):
        self.dir = directory
        self.dir.mkdir(parents=True)
        self.config = self.dir / "ca.cnf"
        self.config.write_text(CA_CONFIG)
        self.cert, self.key = self.dir / "ca.pem", self.dir / "ca.key"
        run_openssl("req", "-x509", "-config", self.config, "-extensions", "ca_itself",
                    "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", self.key, "-out", self.cert, "-days", "400",
                    "-subj", f"/CN={subject}")
        self.key.chmod(0o600)

    def issue(self, name, usage):
        """A leaf signed by this CA, usage "server" or "client": (certificate, key) files."""
        key, csr, cert = (self.dir / f"{name}{suffix}" for suffix in (".key", ".csr", ".pem"))
        run_openssl("req", "-new", "-config", self.config, "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                    "-out", csr, "-subj", f"/CN={name}")
        run_openssl("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
                    "-CAcreateserial", "-extfile", self.config, "-extensions", usage,
                    "-days", "200", "-sha256", "-out", cert)
        key.chmod(0o600)
        return cert, key


# ------------------------------------------------------------------ the directory


SLAPD_CONFIG = """\
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {root}/slapd.pid
olcArgsFile: {root}/slapd.args
olcTLSCACertificateFile: {ca}
olcTLSCertificateFile: {cert}
olcTLSCertificateKeyFile: {key}
olcTLSVerifyClient: demand

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: memberof

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {suffix}
olcRootDN: {root_dn}
olcRootPW: {root_password}
olcDbDirectory: {data}
olcDbIndex: objectClass eq
olcDbIndex: uid,member eq
olcAccess: {{0}}to attrs=userPassword by self read by anonymous auth by * none
olcAccess: {{1}}to * by * read

dn: olcOverlay={{0}}memberof,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {{0}}memberof
"""


def directory_entries():
    """The directory's data as LDIF for slapadd -n1 (memberOf given as the overlay keeps it:
    slapadd does not run overlays)."""
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\n"
        f"o: Example\n",
        f"dn: {READER_DN}\nobjectClass: applicationProcess\nobjectClass: simpleSecurityObject\n"
        f"cn: reader\nuserPassword: {READER_PASSWORD}\n",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n",
    ]
    for name, password in (ALICE, BOB, CAROL):
        entries.append(f"dn: {user_dn(name)}\nobjectClass: inetOrgPerson\nuid: {name}\n"
                       f"cn: {name.title()}\nsn: {name.title()}\nuserPassword: {password}\n"
                       + "".join(f"memberOf: {group}\n" for group in GROUPS_OF[name]))
    for group in (ADMINS_GROUP, VIEWERS_GROUP):
        members = [name for name, groups in GROUPS_OF.items() if group in groups]
        entries.append(f"dn: {group}\nobjectClass: groupOfNames\n"
                       f"cn: {group.split(',')[0][3:]}\n"
                       + "".join(f"member: {user_dn(name)}\n" for name in members))
    return "\n".join(entries)


class Directory:
    """slapd serving dc=example,dc=org over ldaps on the loopback address, and plain LDAP for
    StartTLS, demanding a client certificate from its CA (olcTLSVerifyClient: demand). Its configuration and its
    database stay in root across stop() and start(), and so does its port: a directory that
    goes down and comes back. Run in the foreground (-d) with the stats log level, its log says
    every connection, bind and search, which the tests read to see what the agent asked."""

    def __init__(self, root, ca, port):
        self.root = root
        self.ca = ca
        self.port = port
        self.uri = f"ldaps://127.0.0.1:{port}"
        # And plain LDAP, where a client must ask for TLS first (StartTLS): the agent always does.
        self.starttls_uri = f"ldap://127.0.0.1:{free_port()}"
        self.config_dir, self.data_dir = root / "slapd.d", root / "data"
        for made in (self.config_dir, self.data_dir):
            made.mkdir(mode=0o700, parents=True)
        self.log = root / "slapd.log"
        self.proc = None
        self.cert, self.key = ca.issue("ldap-server", "server")
        # The test's own client certificate, for its checks with ldapwhoami and ldapsearch.
        self.client = ca.issue("directory-checks", "client")
        self.slapadd(0, SLAPD_CONFIG.format(root=root, ca=ca.cert, cert=self.cert, key=self.key,
                                            suffix=SUFFIX, root_dn=ROOT_DN,
                                            root_password=ROOT_PASSWORD, data=self.data_dir))
        self.slapadd(1, directory_entries())

    def slapadd(self, database, ldif):
        """Loads LDIF into database 0 (cn=config) or 1 (the data), slapd not running."""
        source = self.root / f"slapadd-{database}.ldif"
        source.write_text(ldif)
        out = subprocess.run([str(SLAPADD), "-n", str(database), "-F", str(self.config_dir),
                              "-l", str(source)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"slapadd -n{database}:\n{out.stdout}{out.stderr}\n{ldif}"

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def start(self):
        """Starts slapd and returns once it answers a bind over TLS with a client certificate
        (it listens only once its configuration is loaded, but the bind is what tests use)."""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(SLAPD), "-h", f"{self.uri}/ {self.starttls_uri}/", "-F", str(self.config_dir),
                 "-d", "stats"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

        def answering():
            if self.proc.poll() is not None:
                raise AssertionError(f"slapd exited with {self.proc.returncode}:\n"
                                     f"{self.log_text()[-3000:]}")
            return self.whoami(READER_DN, READER_PASSWORD).returncode == 0

        wait_for(answering, timeout=15, interval=0.1, what=f"slapd to answer on {self.uri}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def client_env(self, client):
        """The environment libldap's tools read TLS settings from: this CA verifies the
        server, and client (certificate, key), or None for no client certificate."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LDAPTLS_")}
        env.update(LDAPTLS_CACERT=str(self.ca.cert), LDAPTLS_REQCERT="demand")
        if client:
            env.update(LDAPTLS_CERT=str(client[0]), LDAPTLS_KEY=str(client[1]))
        return env

    def ldap_tool(self, tool, dn, password, *args, client="own"):
        client = self.client if client == "own" else client
        return subprocess.run([tool, "-H", self.uri, "-x", "-o", "nettimeout=5", "-D", dn,
                               "-w", password, *args],
                              capture_output=True, text=True, timeout=30,
                              env=self.client_env(client))

    def whoami(self, dn, password, client="own"):
        return self.ldap_tool(LDAPWHOAMI, dn, password, client=client)

    def search(self, dn, password, base, query, *attributes):
        return self.ldap_tool(LDAPSEARCH, dn, password, "-LLL", "-o", "ldif-wrap=no", "-b", base,
                              query, *attributes)


@pytest.fixture
def directory(tmp_path):
    """The directory, running; stopped at the end whatever the test did to it."""
    server = Directory(tmp_path / "slapd", DirectoryCa(tmp_path / "ca", "certvisor LDAP test CA"),
                       free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def stranger_ca(tmp_path):
    """A CA the directory has never heard of."""
    return DirectoryCa(tmp_path / "stranger-ca", "certvisor stranger CA")


# ------------------------------------------------------------------ the node


def search_settings(directory, **changes):
    """What an operator sets to sign directory users in by search: the service account finds
    the user's entry, a bind as that entry checks the password, a search of the groups by
    member gives the role. The filters and the group attribute are left to their defaults.
    Enabled last, after everything it needs."""
    return {"ldap_uris": directory.uri,
            "ldap_bind_dn": READER_DN, "ldap_bind_password": READER_PASSWORD,
            "ldap_user_search_base": PEOPLE,
            "ldap_group_search_base": GROUPS,
            "ldap_admin_groups": ADMINS_GROUP,
            "ldap_viewer_groups": f"{AUDITORS_GROUP};{VIEWERS_GROUP}",
            **changes,
            "ldap_authentication": "enabled"}


def template_settings(directory):
    """The other form: the user's DN made from the name (no service account, no search), and
    the groups read from the user's own entry (memberOf, the default group attribute)."""
    return {"ldap_uris": directory.uri,
            "ldap_user_dn_template": f"uid=%u,{PEOPLE}",
            "ldap_admin_groups": ADMINS_GROUP,
            "ldap_viewer_groups": VIEWERS_GROUP,
            "ldap_authentication": "enabled"}


class LdapNode:
    """An agent running the api and the console (cm, whose pid shows that nothing restarts),
    with a local REST admin, that trusts the directory's CA (ldap_server_ca) and presents a
    client certificate from it (ldap_client)."""

    def __init__(self, agent_factory, directory):
        api_port, http_port, cm_port = free_port(), free_port(), free_port()
        self.agent = agent_factory({"api": api_service(api_port, http_port),
                                    "cm": cm_service(cm_port, api_port)})
        self.agent.start()
        for name in ("api", "cm"):
            self.agent.wait_state(name, "RUNNING")
        add_user(self.agent, *ADMIN, "admin")
        self.rest = Node(self.agent, api_port, http_port)
        self.directory = directory
        self.printed = []  # everything certvisorctl said, searched for secrets
        self.client = directory.ca.issue("node-ldap-client", "client")
        self.set_certificate("ldap_server_ca", directory.ca.cert)
        self.set_certificate("ldap_client", *self.client)

    def ctl(self, *args):
        out = self.agent.ctl(*args)
        self.printed.append(out.stdout + out.stderr)
        return out

    def ctl_ok(self, *args):
        out = self.ctl(*args)
        assert out.returncode == 0, f"certvisorctl {' '.join(args)}:\n{out.stdout}{out.stderr}"
        return out.stdout

    def set_certificate(self, name, cert, key=None):
        self.ctl_ok("cluster", "certificate", "set", name, "certificate_file", str(cert),
                    *(("key_file", str(key)) if key else ()))

    def configure(self, settings):
        """`certvisorctl cluster config` with every setting in one command."""
        pairs = [str(part) for name, value in settings.items() for part in (name, value)]
        return self.ctl_ok("cluster", "config", *pairs)

    def sign_in(self, user):
        """A read any signed-in user may make: its status says whether the sign-in worked."""
        return self.rest.request("GET", "/v1/cluster", auth=user)

    def change_policy(self, user):
        """A change only an admin may make (setting http_support to what it already is)."""
        return self.rest.request("PUT", "/v1/cluster", {"http_support": True}, auth=user)

    def ldap_test(self, name, password):
        secret = self.agent.root / f"ldap-test-{name}.pw"
        secret.write_text(password + "\n")
        return self.ctl("cluster", "ldap", "test", name, "--password-file", str(secret))

    def ldap_show(self):
        return fields(self.ctl_ok("cluster", "ldap", "show"))

    def service_pids(self):
        return {name: self.agent.pid_of(name) for name in ("api", "cm")}

    def assert_no_secret_shown(self):
        """No password of the directory in the agent's log, the api's output, anything
        certvisorctl printed, or the cluster's settings as the REST API shows them (GET
        /v1/cluster lists every policy setting, to viewers too)."""
        api_output = self.agent.ctl("tail", "-n", "10000", "api", "stderr").stdout
        cluster = self.rest.request("GET", "/v1/cluster")
        assert cluster.status == 200, cluster
        for place, text in (("the agent's log", self.agent.log_text()),
                            ("the api's output", api_output),
                            ("certvisorctl's output", "\n".join(self.printed)),
                            ("GET /v1/cluster", cluster.body.decode())):
            for secret in SECRETS:
                assert secret not in text, f"{secret!r} in {place}"

    def finish(self):
        for name in ("cm", "api"):
            stop_cleanly(self.agent, name)


@pytest.fixture
def ldap_node(agent_factory, directory):
    node = LdapNode(agent_factory, directory)
    yield node
    node.finish()


def assert_unavailable(response, *words):
    """The answer to a directory user while the directory cannot be asked: 503
    directory_unavailable, its message naming each of words (case-insensitive)."""
    assert response.status == 503, response
    assert response.json["error_code"] == "directory_unavailable", response
    message = error_message(response)
    for word in words:
        assert word.lower() in message.lower(), (word, response.json)
    return message


def assert_refused(response):
    assert response.status == 401 and response.json["error_code"] == "unauthorized", response
    assert response.headers["www-authenticate"] == 'Basic realm="certvisor", charset="UTF-8"'


def log_since(directory, mark):
    return directory.log_text()[mark:]


# ------------------------------------------------------------------ the tests


def test_the_directory_demands_a_client_certificate_it_trusts(directory, stranger_ca):
    # The fixture itself, checked with OpenLDAP's own tools: when this fails, the directory is
    # at fault, not the agent.
    out = directory.whoami(user_dn("alice"), ALICE[1])
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == f"dn:{user_dn('alice')}", out.stdout
    mark = len(directory.log_text())
    for client in (None, stranger_ca.issue("stranger-client", "client")):
        out = directory.whoami(user_dn("alice"), ALICE[1], client=client)
        assert out.returncode != 0 and "Can't contact LDAP server" in out.stderr, \
            (client, out.stdout + out.stderr)
    assert log_since(directory, mark).count("TLS negotiation failure") == 2, directory.log_text()
    assert directory.whoami(user_dn("alice"), "wrong").returncode == 49  # invalidCredentials
    # The service account finds users and their groups, and never a password.
    out = directory.search(READER_DN, READER_PASSWORD, PEOPLE, "(uid=alice)", "userPassword",
                           "memberOf")
    assert out.returncode == 0, out.stderr
    assert f"dn: {user_dn('alice')}" in out.stdout and f"memberOf: {ADMINS_GROUP}" in out.stdout
    assert "userPassword" not in out.stdout, out.stdout
    out = directory.search(READER_DN, READER_PASSWORD, GROUPS, f"(member={user_dn('bob')})", "1.1")
    assert out.stdout.split() == ["dn:", VIEWERS_GROUP], out.stdout
    out = directory.search(READER_DN, READER_PASSWORD, GROUPS, f"(member={user_dn('carol')})")
    assert out.returncode == 0 and out.stdout.strip() == "", out.stdout
    # Down and up again on the same port.
    directory.stop()
    assert directory.whoami(READER_DN, READER_PASSWORD).returncode != 0
    directory.start()
    assert directory.whoami(user_dn("bob"), BOB[1]).returncode == 0


def test_directory_users_sign_in_with_the_role_their_groups_give(ldap_node):
    node = ldap_node
    # Off by default: the directory is not asked.
    assert_refused(node.sign_in(ALICE))
    # (What the agent asks from here on, binds made when it is configured included.)
    mark = len(node.directory.log_text())
    node.configure(search_settings(node.directory))
    r = node.sign_in(ALICE)
    assert r.status == 200, r
    assert node.sign_in(BOB).status == 200
    # The viewer reads and may not change; the admin may.
    r = node.change_policy(BOB)
    assert r.status == 403 and r.json["error_code"] == "insufficient_permissions", r
    r = node.change_policy(ALICE)
    assert r.status == 200, r
    # In neither group: refused, though the password is right.
    assert_refused(node.sign_in(CAROL))
    # The agent searched as the service account and bound as each user.
    asked = log_since(node.directory, mark)
    assert f'BIND dn="{READER_DN}"' in asked, asked
    assert 'filter="(uid=alice)"' in asked and f'BIND dn="{user_dn("alice")}"' in asked, asked
    assert f'filter="(member={user_dn("bob")})"' in asked, asked
    # The local admin is still the local admin.
    assert node.sign_in(ADMIN).status == 200
    node.assert_no_secret_shown()


def test_a_page_that_asks_several_things_at_once_costs_one_directory_sign_in(ldap_node):
    """The console signs in, then loads several things at once with the same credentials: the
    directory is asked once, and the rest go on from the memory of that sign-in."""
    import concurrent.futures

    node = ldap_node
    node.configure(search_settings(node.directory))
    mark = len(node.directory.log_text())
    assert node.sign_in(ALICE).status == 200
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: node.sign_in(ALICE).status, range(8)))
    assert statuses == [200] * 8, statuses
    asked = log_since(node.directory, mark)
    # slapd logs each bind twice (method=128, then mech=SIMPLE).
    assert asked.count(f'BIND dn="{user_dn("alice")}" method=128') == 1, asked
    node.assert_no_secret_shown()


def test_a_wrong_password_or_an_unknown_user_is_refused_as_a_local_one_is(ldap_node):
    node = ldap_node
    node.configure(search_settings(node.directory))
    local = node.sign_in(("admin", "wrong password"))
    assert_refused(local)
    # The same answer for a directory user's wrong password and a name nobody has: nothing
    # tells which names exist.
    for user in (("alice", "wrong password"), ("nobody", "alice-pass")):
        r = node.sign_in(user)
        assert_refused(r)
        assert r.json == local.json, (user, r.json, local.json)
    # A good sign-in after one failure (well below the lock-out).
    assert node.sign_in(ALICE).status == 200
    # A local user's name is never the directory's: bob the local viewer signs in with his
    # local password only, and with it keeps his local role.
    add_user(node.agent, "bob", "local bob password", "viewer")
    assert_refused(node.sign_in(BOB))
    assert node.sign_in(("bob", "local bob password")).status == 200
    assert node.change_policy(("bob", "local bob password")).status == 403
    node.assert_no_secret_shown()


def test_the_directory_down_refuses_its_users_with_503_and_local_admins_still_sign_in(
        ldap_node):
    node = ldap_node
    directory = node.directory
    node.configure(search_settings(directory, ldap_cache_seconds=0, ldap_timeout=2))
    assert node.sign_in(ALICE).status == 200
    directory.stop()
    # The directory user is told the directory is the trouble, and which one; no 401: the
    # password may be right.
    assert_unavailable(node.sign_in(ALICE), directory.uri)
    assert_unavailable(node.sign_in(BOB), directory.uri)
    # The local admin, meanwhile, works as ever.
    r = node.sign_in(ADMIN)
    assert r.status == 200, r
    assert node.change_policy(ADMIN).status == 200
    out = node.ldap_test(*ALICE)
    assert out.returncode == 1 and directory.uri in out.stderr, out.stdout + out.stderr
    # Back up: signed in again (a request or two may still find the old connection gone).
    directory.start()
    wait_for(lambda: node.sign_in(ALICE).status == 200, timeout=10, interval=0.5,
             what="alice to sign in once the directory is back")
    assert node.change_policy(ALICE).status == 200
    assert node.sign_in(BOB).status == 200
    node.assert_no_secret_shown()


def test_an_untrusted_client_certificate_then_a_trusted_one_take_effect_with_no_restart(
        ldap_node, stranger_ca):
    node = ldap_node
    directory = node.directory
    node.configure(search_settings(directory, ldap_cache_seconds=0))
    assert node.sign_in(ALICE).status == 200
    pids = node.service_pids()
    # A client certificate the agent takes (clientAuth, well formed) but the directory does
    # not trust: the handshake fails, and the message says where to look.
    mark = len(directory.log_text())
    node.set_certificate("ldap_client", *stranger_ca.issue("stranger-client", "client"))
    message = assert_unavailable(node.sign_in(ALICE), "ldap_client")
    assert re.search(r"TLS|handshake", message, re.I), message
    assert "TLS negotiation failure" in log_since(directory, mark), log_since(directory, mark)
    out = node.ldap_test(*ALICE)
    assert out.returncode == 1 and "ldap_client" in out.stderr, out.stdout + out.stderr
    # A new certificate from the directory's CA: signed in again, at once.
    node.set_certificate("ldap_client", *directory.ca.issue("node-ldap-client-2", "client"))
    r = node.sign_in(ALICE)
    assert r.status == 200, r
    assert node.sign_in(BOB).status == 200
    assert node.service_pids() == pids


def test_without_ldap_client_a_directory_that_demands_one_gives_an_error_naming_it(ldap_node):
    node = ldap_node
    node.configure(search_settings(node.directory, ldap_cache_seconds=0))
    assert node.sign_in(ALICE).status == 200
    node.ctl_ok("cluster", "certificate", "delete", "ldap_client")
    assert_unavailable(node.sign_in(ALICE), "ldap_client")
    out = node.ldap_test(*ALICE)
    assert out.returncode == 1 and "ldap_client" in out.stderr, out.stdout + out.stderr
    assert node.sign_in(ADMIN).status == 200
    # Given again, it is used again.
    node.set_certificate("ldap_client", *node.client)
    assert node.sign_in(ALICE).status == 200


def test_ldap_show_and_config_show_hide_the_bind_password_and_no_log_has_it(ldap_node):
    node = ldap_node
    directory = node.directory
    # Set with the names without their prefix, as `cluster ldap config` takes them.
    # A name it does not know, or one setting twice under its two names: refused, nothing set.
    out = node.ctl("cluster", "ldap", "config", "uri", directory.uri)
    assert out.returncode == 2 and "unknown LDAP setting 'uri'" in out.stderr, out.stderr
    out = node.ctl("cluster", "ldap", "config", "uris", directory.uri, "ldap_uris", directory.uri)
    assert out.returncode == 2 and "'ldap_uris' is given twice" in out.stderr, out.stderr
    assert node.ldap_show()["uris"] == "", node.ldap_show()
    node.ctl_ok("cluster", "ldap", "config", "uris", directory.uri, "bind_dn", READER_DN,
                "bind_password", READER_PASSWORD, "user_search_base", PEOPLE,
                "group_search_base", GROUPS, "admin_groups", ADMINS_GROUP,
                "viewer_groups", VIEWERS_GROUP, "cache_seconds", "30", "timeout", "4",
                "authentication", "enabled")
    shown = node.ldap_show()
    expected = {"authentication": "enabled", "uris": directory.uri, "bind_dn": READER_DN,
                "bind_password": "(set)", "user_search_base": PEOPLE, "user_filter": "(uid=%u)",
                "group_search_base": GROUPS, "group_filter": "(member=%d)",
                "group_attribute": "memberOf", "admin_groups": ADMINS_GROUP,
                "viewer_groups": VIEWERS_GROUP, "cache_seconds": "30", "timeout": "4"}
    assert {name: shown.get(name) for name in expected} == expected, shown
    # The settings go without their prefix; the two certificates by their own names.
    assert shown.get("ldap_client") == "set" and shown.get("ldap_server_ca") == "set", shown
    assert not any(name.startswith("ldap_") for name in shown
                   if name not in ("ldap_client", "ldap_server_ca")), shown
    # `cluster config show` lists them with the other settings, the password as "(set)" too.
    policy = node.ctl_ok("cluster", "config", "show")
    line = next((l for l in policy.splitlines() if re.match(r"\s*ldap_bind_password\b", l)),
                None)
    assert line is not None and "(set)" in line, policy
    node.ctl_ok("--json", "cluster", "config", "show")
    # Used, tested, changed again and audited: the password is in none of it.
    assert node.sign_in(ALICE).status == 200
    assert node.ldap_test(*ALICE).returncode == 0
    node.ctl_ok("cluster", "config", "ldap_bind_password", READER_PASSWORD)
    assert node.ldap_show()["bind_password"] == "(set)"
    node.ctl_ok("audit")
    r = node.rest.request("GET", "/v1/cluster/ldap")
    assert r.status == 200 and READER_PASSWORD not in r.body.decode(), r
    node.assert_no_secret_shown()


def test_cluster_ldap_test_signs_a_user_in_and_says_why_not(ldap_node):
    node = ldap_node
    node.configure(search_settings(node.directory))
    out = node.ldap_test(*ALICE)
    assert out.returncode == 0, out.stdout + out.stderr
    result = fields(out.stdout)
    assert result.get("user") == "alice" and result.get("dn") == user_dn("alice"), out.stdout
    assert ADMINS_GROUP in result.get("groups", ""), out.stdout
    assert result.get("role") == "admin", out.stdout
    out = node.ldap_test(*BOB)
    assert out.returncode == 0, out.stdout + out.stderr
    result = fields(out.stdout)
    assert result.get("dn") == user_dn("bob") and VIEWERS_GROUP in result.get("groups", "")
    assert result.get("role") == "viewer", out.stdout
    # Failures: exit 1 and the reason on standard error.
    out = node.ldap_test("alice", "wrong password")
    assert out.returncode == 1 and out.stderr.strip(), out.stdout + out.stderr
    out = node.ldap_test("nobody", "whatever")
    assert out.returncode == 1 and out.stderr.strip(), out.stdout + out.stderr
    out = node.ldap_test(*CAROL)  # the right password, and in neither group
    assert out.returncode == 1 and re.search(r"group", out.stderr, re.I), out.stdout + out.stderr
    node.assert_no_secret_shown()


def test_rest_reads_and_changes_the_ldap_settings_and_never_returns_the_password(ldap_node):
    node = ldap_node
    directory = node.directory
    # The service account's password wrong at first: the REST API puts it right.
    node.configure(search_settings(directory, ldap_bind_password="not-the-reader-password"))
    assert node.sign_in(ALICE).status != 200
    expected = {"control_plane": True, "uris": [directory.uri], "bind_dn": READER_DN,
                "user_dn_template": "", "user_dn_query": {"base": PEOPLE, "filter": "(uid=%u)"},
                "dn_group_attr": "memberOf",
                "dn_group_query": {"base": GROUPS, "filter": "(member=%d)"},
                "admin_groups": [ADMINS_GROUP], "viewer_groups": [AUDITORS_GROUP, VIEWERS_GROUP],
                "cache_ttl": 60, "directory_timeout_s": 5}
    r = node.rest.request("GET", "/v1/cluster/ldap")
    assert r.status == 200, r
    assert r.json == expected, r.json
    # The settings are the admins' (they name the directory and its service account).
    # Not a local user yet: the directory is asked, and its service account is refused, which
    # is the directory's state (503, naming the account), not the caller's failure.
    r = node.rest.request("GET", "/v1/cluster/ldap", auth=("viewer-local", "x"))
    assert_unavailable(r, "ldap_bind_dn")
    add_user(node.agent, "viewer-local", "viewer password", "viewer")
    r = node.rest.request("GET", "/v1/cluster/ldap", auth=("viewer-local", "viewer password"))
    assert r.status == 403 and r.json["error_code"] == "insufficient_permissions", r
    r = node.rest.request("PUT", "/v1/cluster/ldap", {"cache_ttl": 0},
                          auth=("viewer-local", "viewer password"))
    assert r.status == 403 and r.json["error_code"] == "insufficient_permissions", r
    # Wrong types and values out of range, alone or beside a good field: 400, nothing changed.
    for body, field in [({"uris": directory.uri}, "uris"),
                        ({"uris": [5]}, "uris"),
                        ({"control_plane": "enabled"}, "control_plane"),
                        ({"control_plane": 1}, "control_plane"),
                        ({"bind_dn": 7}, "bind_dn"),
                        ({"bind_pass": 42}, "bind_pass"),
                        ({"admin_groups": ADMINS_GROUP}, "admin_groups"),
                        ({"user_dn_query": "(uid=%u)"}, "user_dn_query"),
                        ({"user_dn_query": {"base": 5, "filter": "(uid=%u)"}}, "base"),
                        ({"dn_group_attr": ["memberOf"]}, "dn_group_attr"),
                        ({"cache_ttl": "60"}, "cache_ttl"),
                        ({"cache_ttl": 3601}, "cache_ttl"),
                        ({"directory_timeout_s": 0}, "directory_timeout_s"),
                        ({"directory_timeout_s": 1.5}, "directory_timeout_s"),
                        ({"bind_pass": READER_PASSWORD, "directory_timeout_s": 61},
                         "directory_timeout_s")]:
        refused_naming(node.rest.request("PUT", "/v1/cluster/ldap", body), field)
    r = node.rest.request("PUT", "/v1/cluster/ldap", {"cache_ttl": 0, "colour": "blue"})
    assert r.status == 400 and r.json["error_code"] == "unknown_field", r
    assert node.rest.request("GET", "/v1/cluster/ldap").json == expected
    assert node.sign_in(ALICE).status != 200  # the good password above was not taken either
    # The password (write-only) and more: a dead URI first, which the agent passes over.
    dead = f"ldaps://127.0.0.1:{free_port()}"
    change = {"bind_pass": READER_PASSWORD, "uris": [dead, directory.uri], "cache_ttl": 0,
              "directory_timeout_s": 3, "admin_groups": [ADMINS_GROUP]}
    r = node.rest.request("PUT", "/v1/cluster/ldap", change)
    assert r.status == 200, r
    changed = {**expected, **change}
    del changed["bind_pass"]
    r = node.rest.request("GET", "/v1/cluster/ldap")
    assert r.status == 200 and r.json == changed, r.json
    assert "bind_pass" not in r.json and READER_PASSWORD not in r.body.decode()
    assert node.sign_in(ALICE).status == 200
    assert node.change_policy(ALICE).status == 200
    shown = node.ldap_show()
    assert shown["uris"] == f"{dead} {directory.uri}" and shown["cache_seconds"] == "0", shown
    assert shown["timeout"] == "3" and shown["bind_password"] == "(set)", shown
    # Off through the REST API: directory users are refused, local ones are not.
    r = node.rest.request("PUT", "/v1/cluster/ldap", {"control_plane": False})
    assert r.status == 200, r
    assert node.ldap_show()["authentication"] == "disabled"
    assert_refused(node.sign_in(ALICE))
    assert node.sign_in(ADMIN).status == 200
    node.assert_no_secret_shown()


def test_over_ldap_the_agent_asks_for_tls_before_it_binds(ldap_node):
    """ldap:// in ldap_uris: StartTLS first, with the same certificates, and no bind in the
    clear."""
    node = ldap_node
    directory = node.directory
    mark = len(directory.log_text())
    node.configure(search_settings(directory, ldap_uris=directory.starttls_uri,
                                   ldap_cache_seconds="0"))
    assert node.sign_in(ALICE).status == 200
    asked = log_since(directory, mark)
    first_bind = asked.index(f'BIND dn="{READER_DN}"')
    assert "STARTTLS" in asked[:first_bind], asked
    assert "tls_ssf=" in asked[:first_bind], asked
    node.assert_no_secret_shown()


def test_a_user_dn_template_binds_as_the_user_without_searching(ldap_node):
    node = ldap_node
    directory = node.directory
    mark = len(directory.log_text())
    node.configure(template_settings(directory))
    shown = node.ldap_show()
    assert shown["user_dn_template"] == f"uid=%u,{PEOPLE}", shown
    assert shown["group_attribute"] == "memberOf", shown
    assert node.sign_in(ALICE).status == 200
    assert node.change_policy(ALICE).status == 200
    assert node.sign_in(BOB).status == 200
    r = node.change_policy(BOB)
    assert r.status == 403 and r.json["error_code"] == "insufficient_permissions", r
    assert_refused(node.sign_in(CAROL))
    assert_refused(node.sign_in(("alice", "wrong password")))
    out = node.ldap_test(*ALICE)
    assert out.returncode == 0 and fields(out.stdout).get("role") == "admin", \
        out.stdout + out.stderr
    # Each user bound with the DN the template made, no service account, no search for a
    # user, no search of the groups (they came from the users' own entries).
    asked = log_since(directory, mark)
    for name in ("alice", "bob"):
        assert f'BIND dn="{user_dn(name)}"' in asked, asked
    assert READER_DN not in asked, asked
    assert "(uid=" not in asked and "(member=" not in asked, asked
    assert f'SRCH base="{PEOPLE}"' not in asked and f'SRCH base="{GROUPS}"' not in asked, asked
    node.assert_no_secret_shown()
