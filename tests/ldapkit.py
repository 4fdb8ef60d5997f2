"""A private OpenLDAP for the directory login tests: Debian's slapd on a free loopback port,
a generated slapd.conf and mdb database in a tmp dir, a self-signed certificate for StartTLS
(the only way our config lets a password travel over ldap://), and a generated tree of users
and groups loaded with slapadd before the start. Changes during a test go through
ldapmodify (ldap-utils), as an operator would make them. Stopped at teardown.

The tree (base dc=omnidesk,dc=test; every password is the user's name + "-pw"):
    ou=people: layla (languages ar,en, capacity 2), khalid, noura (a supervisor), dana
               (disabled: employeeType "disabled", which the test config's user_filter
               excludes, as AD's userAccountControl bit is excluded there), zaid (in no
               group), sara (the id of an agent of tests/fixtures/config/agents.yaml)
    ou=groups: desk-general (layla, dana), desk-complaints (khalid, sara), supervisors (noura)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.services import free_port, wait_for

SLAPD = shutil.which("slapd") or ("/usr/sbin/slapd" if os.path.exists("/usr/sbin/slapd") else None)
SLAPADD = shutil.which("slapadd") or (
    "/usr/sbin/slapadd" if os.path.exists("/usr/sbin/slapadd") else None
)
LDAPMODIFY = shutil.which("ldapmodify")
BASE = "dc=omnidesk,dc=test"
ADMIN_DN = f"cn=admin,{BASE}"
ADMIN_PW = "admin-secret"
SERVICE_DN = f"cn=omnidesk,ou=services,{BASE}"
SERVICE_PW = "service-secret"
SERVICE_ENV = "OMNIDESK_TEST_LDAP_BIND_PW"
USERS = {  # uid: (cn, mail, extra attribute lines)
    "layla": ("Layla Saleh", "layla@moc.example.sa", ["preferredLanguage: ar,en", "roomNumber: 2"]),
    "khalid": ("Khalid Ali", "khalid@moc.example.sa", ["preferredLanguage: ar"]),
    "noura": ("Noura Fahad", "boss@moc.example.sa", []),
    "dana": ("Dana Kh", "dana@moc.example.sa", ["employeeType: disabled"]),
    "zaid": ("Zaid Nasser", "zaid@moc.example.sa", []),
    "sara": ("Sara Other", "sara@moc.example.sa", []),
}
GROUPS = {
    "desk-general": ["layla", "dana"],
    "desk-complaints": ["khalid", "sara"],
    "supervisors": ["noura"],
}

SLAPD_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {tmp}/slapd.pid
TLSCertificateFile {tmp}/cert.pem
TLSCertificateKeyFile {tmp}/key.pem
database mdb
maxsize 16777216
suffix "{base}"
rootdn "{admin}"
rootpw {admin_pw}
directory {tmp}/db
access to attrs=userPassword by anonymous auth by self write by * none
access to * by users read by * none
"""


def user_dn(uid: str) -> str:
    return f"uid={uid},ou=people,{BASE}"


def group_dn(name: str) -> str:
    return f"cn={name},ou=groups,{BASE}"


def tree_ldif() -> str:
    blocks = [
        f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: omnidesk\no: Test",
        *(
            f"dn: ou={ou},{BASE}\nobjectClass: organizationalUnit\nou: {ou}"
            for ou in ("people", "groups", "services")
        ),
        f"dn: {SERVICE_DN}\nobjectClass: person\ncn: omnidesk\nsn: service\n"
        f"userPassword: {SERVICE_PW}",
    ]
    for uid, (cn, mail, extra) in USERS.items():
        lines = [f"dn: {user_dn(uid)}", "objectClass: inetOrgPerson", f"uid: {uid}"]
        lines += [f"cn: {cn}", f"sn: {cn.split()[-1]}", f"mail: {mail}", f"userPassword: {uid}-pw"]
        lines += extra
        blocks.append("\n".join(lines))
    for name, members in GROUPS.items():
        lines = [f"dn: {group_dn(name)}", "objectClass: groupOfNames", f"cn: {name}"]
        blocks.append("\n".join(lines + [f"member: {user_dn(m)}" for m in members]))
    return "\n\n".join(blocks) + "\n"


@dataclass
class Slapd:
    url: str
    ca_file: Path
    proc: subprocess.Popen[bytes]

    def modify(self, ldif: str) -> None:
        """Change the tree as an operator would (ldapmodify -ZZ as the admin)."""
        assert LDAPMODIFY
        done = subprocess.run(
            [LDAPMODIFY, "-x", "-ZZ", "-H", self.url, "-D", ADMIN_DN, "-w", ADMIN_PW],
            input=ldif.encode(), capture_output=True, timeout=20,
            env={**os.environ, "LDAPTLS_CACERT": str(self.ca_file)},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()

    def set_members(self, group: str, members: list[str]) -> None:
        lines = [f"dn: {group_dn(group)}", "changetype: modify", "replace: member"]
        self.modify("\n".join(lines + [f"member: {user_dn(m)}" for m in members]) + "\n")

    def directory_yaml(self, **over: str) -> str:
        """The `directory:` section of a config on this server (flow style, one line each)."""
        fields = {
            "url": self.url, "start_tls": "true", "ca_file": str(self.ca_file),
            "bind_dn": f'"{SERVICE_DN}"', "bind_password_env": SERVICE_ENV,
            "user_base": f'"ou=people,{BASE}"',
            "user_filter": '"(&(objectClass=inetOrgPerson)(!(employeeType=disabled)))"',
            "languages_attribute": "preferredLanguage", "capacity_attribute": "roomNumber",
            "sync_interval_s": "300", **over,
        }  # fmt: skip
        groups = [
            f'  - {{dn: "{group_dn("desk-general")}", queues: [general]}}',
            f'  - {{dn: "{group_dn("desk-complaints")}", queues: [complaints]}}',
            f'  - {{dn: "{group_dn("supervisors")}", role: supervisor, queues: [general]}}',
        ]
        body = "".join(f"  {k}: {v}\n" for k, v in fields.items())
        return "directory:\n" + body + "  groups:\n" + "\n".join("  " + g for g in groups) + "\n"


def _certificate(tmp: Path) -> None:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem")],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip


def start_slapd(tmp: Path) -> Slapd:
    if not (SLAPD and SLAPADD and LDAPMODIFY):
        pytest.skip("slapd and ldap-utils are not installed (apt-get install slapd ldap-utils)")
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "db").mkdir()
    _certificate(tmp)
    conf = tmp / "slapd.conf"
    conf.write_text(
        SLAPD_CONF.format(tmp=tmp, base=BASE, admin=ADMIN_DN, admin_pw=ADMIN_PW), "utf-8"
    )
    (tmp / "tree.ldif").write_text(tree_ldif(), "utf-8")
    subprocess.run([SLAPADD, "-f", str(conf), "-l", str(tmp / "tree.ldif")], check=True,
                   capture_output=True, timeout=30)  # fmt: skip
    port = free_port()
    url = f"ldap://127.0.0.1:{port}"
    log = (tmp / "slapd.log").open("wb")
    proc = subprocess.Popen(
        [SLAPD, "-f", str(conf), "-h", url + "/", "-d", "0"], stdout=log, stderr=log
    )

    def answers() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return proc.poll() is not None

    assert wait_for(answers, timeout=15), "slapd did not start"
    assert proc.poll() is None, (tmp / "slapd.log").read_text("utf-8", "replace")
    return Slapd(url=url, ca_file=tmp / "cert.pem", proc=proc)


def stop_slapd(server: Slapd) -> None:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


@pytest.fixture
def slapd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Slapd]:
    """A private slapd with the generated tree; the service password in SERVICE_ENV."""
    monkeypatch.setenv(SERVICE_ENV, SERVICE_PW)
    server = start_slapd(tmp_path / "slapd")
    try:
        yield server
    finally:
        stop_slapd(server)
