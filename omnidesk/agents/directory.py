"""The directory (LDAP through ldap3: Active Directory or OpenLDAP) as the agents' login.

Search-then-bind: the service account (`directory.bind_dn`, its password from the variable
`bind_password_env` names) finds the one entry whose login attribute is the name typed, and a
second connection binds as that entry's DN with the password typed; the server checks it, we
never see a hash. Both go over LDAPS or StartTLS with the certificate verified. Every value a
person typed goes into a filter through `escape_filter_chars`, so `*)(uid=*` is a name, not a
filter. The mapped groups say the role and the queues; the sync (directory_sync.py) reads
their members. ldap3 is synchronous: callers run this in a thread.
"""

from __future__ import annotations

import logging
import os
import re
import ssl
from dataclasses import dataclass
from typing import Any

import ldap3
from ldap3.core.exceptions import LDAPException, LDAPInvalidDnError
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn
from pydantic import ValidationError

from omnidesk.config import AgentConfig, DirectoryConfig, DirectoryGroup
from omnidesk.errors import AuthError, TransientError

log = logging.getLogger("omnidesk.agents.directory")

MAX_NAME = 256
MAX_PASSWORD = 1024


class DirectoryUnavailable(TransientError):
    """The directory did not answer, refused TLS, or refused the service account."""


class LoginRefused(AuthError):
    """A login that does not give an agent. `reason` is for the audit trail only: the person
    is told the same thing whatever it is (no telling which names exist)."""

    def __init__(self, reason: str) -> None:
        super().__init__("wrong user name or password")
        self.reason = reason


@dataclass(frozen=True)
class DirectoryUser:
    """One person as the directory has them, with the mapped groups they are in."""

    dn: str
    attributes: dict[str, list[str]]
    groups: tuple[DirectoryGroup, ...]


class Directory:
    """One directory as `config` describes it; a connection per call (no pool to go stale)."""

    def __init__(self, config: DirectoryConfig, environ: dict[str, str] | None = None) -> None:
        self.config = config
        self.environ = os.environ if environ is None else environ

    # ------------------------------------------------------------ login

    def authenticate(self, name: str, password: str) -> DirectoryUser:
        """The user `name` if `password` is theirs and they are in a mapped group;
        LoginRefused (with the reason) otherwise, DirectoryUnavailable when it cannot say."""
        if not name or len(name) > MAX_NAME or any(ord(c) < 32 for c in name):
            raise LoginRefused("bad_name")
        if not password or len(password) > MAX_PASSWORD:  # an empty password binds anonymously
            raise LoginRefused("empty_password")
        with self._service() as conn:
            entries = self._search(
                conn,
                self.config.user_base,
                self._user_filter(name),
                ldap3.SUBTREE,
            )
            found = entries[0] if len(entries) == 1 else None
            # no such name (or two): the same group searches and bind, on a DN nobody has,
            # so how long the answer takes does not tell which names exist
            dn, attributes = found or (self.no_such_dn(), {})
            groups = self._groups_of(conn, dn)
        binds = self._binds(dn, password)
        if found is None:
            raise LoginRefused("unknown_or_disabled" if not entries else "ambiguous")
        if not binds:
            raise LoginRefused("wrong_password")
        if not groups:
            raise LoginRefused("no_group")
        return DirectoryUser(dn, attributes, groups)

    def no_such_dn(self) -> str:
        """The DN an unknown name's login binds as: under `user_base`, held by no entry, so
        the bind fails as a wrong password would, taking as long."""
        return f"cn=omnidesk-no-such-user,{self.config.user_base}"

    def _user_filter(self, name: str) -> str:
        attr = self.config.login_attribute
        return f"(&{self.config.user_filter}({attr}={escape_filter_chars(name)}))"

    def _groups_of(self, conn: ldap3.Connection, dn: str) -> tuple[DirectoryGroup, ...]:
        member = f"({self.config.member_attribute}={escape_filter_chars(dn)})"
        return tuple(
            g for g in self.config.groups if self._search(conn, g.dn, member, ldap3.BASE, [])
        )

    def _binds(self, dn: str, password: str) -> bool:
        conn = self._open(dn, password)
        try:
            return bool(conn.bind())
        except LDAPException as exc:
            raise DirectoryUnavailable(f"directory: {type(exc).__name__}") from None
        finally:
            conn.unbind()

    # ------------------------------------------------------------ sync

    def members(self) -> dict[str, DirectoryUser]:
        """Everyone in a mapped group who passes `user_filter` under `user_base`, by
        `dn_key`: the agents the directory gives now. Direct members only (no nested
        groups); ldap3 follows AD's ranged `member` values by itself."""
        found: dict[str, tuple[str, list[DirectoryGroup]]] = {}
        with self._service() as conn:
            for group in self.config.groups:
                rows = self._search(
                    conn, group.dn, "(objectClass=*)", ldap3.BASE, [self.config.member_attribute]
                )
                for _, attrs in rows:
                    for dn in attrs.get(self.config.member_attribute.lower(), []):
                        found.setdefault(dn_key(dn), (dn, []))[1].append(group)
            base = dn_key(self.config.user_base)
            users: dict[str, DirectoryUser] = {}
            for key, (dn, groups) in found.items():
                if not key.endswith("," + base):
                    continue
                # the DN as the server gave it: its escapes intact, so the base search finds it
                rows = self._search(conn, dn, self.config.user_filter, ldap3.BASE)
                if rows:
                    users[key] = DirectoryUser(rows[0][0], rows[0][1], tuple(groups))
        return users

    # ------------------------------------------------------------ connections

    def _service(self) -> _Bound:
        password = self.environ.get(self.config.bind_password_env)
        if not password:
            raise DirectoryUnavailable(
                f"directory: the variable {self.config.bind_password_env} "
                "(directory.bind_password_env) is not set"
            )
        return _Bound(self, self._open(self.config.bind_dn, password))

    def _open(self, dn: str, password: str) -> ldap3.Connection:
        """A connection, TLS started, not yet bound."""
        cfg = self.config
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=cfg.ca_file)
        server = ldap3.Server(
            cfg.url, use_ssl=cfg.url.startswith("ldaps://"), tls=tls,
            connect_timeout=cfg.timeout_s, get_info=ldap3.NONE,
        )  # fmt: skip
        conn = ldap3.Connection(
            server, user=dn, password=password, auto_bind=ldap3.AUTO_BIND_NONE,
            receive_timeout=max(1, round(cfg.timeout_s)), read_only=True, raise_exceptions=False,
        )  # fmt: skip
        try:
            conn.open()
            if cfg.start_tls and not conn.start_tls():
                raise DirectoryUnavailable("directory: StartTLS refused")
        except LDAPException as exc:
            conn.unbind()
            raise DirectoryUnavailable(f"directory: {type(exc).__name__}: {exc}") from None
        return conn

    def _search(
        self,
        conn: ldap3.Connection,
        base: str,
        search_filter: str,
        scope: Any,
        attributes: list[str] | None = None,
    ) -> list[tuple[str, dict[str, list[str]]]]:
        """(dn, attributes with lower-case names and string values) of each entry found;
        a base that does not exist finds nothing."""
        wanted = self._attributes() if attributes is None else attributes
        try:
            conn.search(base, search_filter, scope, attributes=wanted or ldap3.NO_ATTRIBUTES)
        except LDAPException as exc:
            raise DirectoryUnavailable(f"directory: {type(exc).__name__}: {exc}") from None
        if conn.result.get("result") not in (0, 32):  # success, noSuchObject
            raise DirectoryUnavailable(f"directory: search refused: {conn.result.get('message')}")
        return [
            (str(row["dn"]), _strings(row.get("attributes", {})))
            for row in conn.response or []
            if row.get("type") == "searchResEntry"
        ]

    def _attributes(self) -> list[str]:
        cfg = self.config
        names = [cfg.login_attribute, cfg.name_attribute, cfg.mail_attribute]
        names += [a for a in (cfg.languages_attribute, cfg.capacity_attribute) if a]
        names += [cfg.extension_attribute] if cfg.extension_attribute else []
        return names


class _Bound:
    """The service account's connection, bound, as a context manager."""

    def __init__(self, directory: Directory, conn: ldap3.Connection) -> None:
        self.directory, self.conn = directory, conn

    def __enter__(self) -> ldap3.Connection:
        try:
            bound = self.conn.bind()
        except LDAPException as exc:
            self.conn.unbind()
            raise DirectoryUnavailable(f"directory: {type(exc).__name__}") from None
        if not bound:
            self.conn.unbind()
            raise DirectoryUnavailable("directory: the service account's bind was refused")
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.unbind()


def dn_key(dn: str) -> str:
    """A DN to compare: each RDN's type and value in lower case, escapes read ("\\2C" and
    "\\," alike) and written one way, no spaces around the separators ("OU=People, DC=x" as
    "ou=people,dc=x"), as AD and OpenLDAP may spell the same one differently. An escaped
    comma stays inside its value ("CN=Smith\\, John,..."): a DN is never split on it."""
    try:
        parts = parse_dn(dn, escape=False, strip=True)
    except LDAPInvalidDnError:
        return dn.strip().lower()
    out = []
    for attr_type, value, separator in parts:
        text = _canonical_value(_unescape(value).lower())
        out.append(f"{attr_type.strip().lower()}={text}{separator}")
    return "".join(out)


_HEX_PAIR = re.compile(r"\\([0-9a-fA-F]{2})|\\(.)", re.DOTALL)


def _unescape(value: str) -> str:
    """An RDN value as the text it stands for: "\\," is ",", "\\2C" is "," (hex pairs are
    UTF-8 bytes)."""
    raw = bytearray()
    pos = 0
    for match in _HEX_PAIR.finditer(value):
        raw += value[pos : match.start()].encode("utf-8")
        raw += bytes.fromhex(match[1]) if match[1] else match[2].encode("utf-8")
        pos = match.end()
    raw += value[pos:].encode("utf-8")
    return raw.decode("utf-8", "replace").strip()


def _canonical_value(text: str) -> str:
    """The one spelling of a value in a key: every special character backslash-escaped."""
    return "".join("\\" + c if c in ',+"\\<>;=#' else c for c in text)


def _strings(attributes: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in attributes.items():
        values = value if isinstance(value, list) else [value]
        out[name.lower()] = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                             for v in values]  # fmt: skip
    return out


def agent_of(user: DirectoryUser, config: DirectoryConfig) -> AgentConfig | None:
    """The agent a directory user is: id from the login attribute (lower case), role and
    queues from the groups, languages and capacity from attributes or the config. None when
    the id cannot be an agent id."""
    attrs = user.attributes

    def first(name: str | None) -> str:
        return (attrs.get(name.lower()) or [""])[0].strip() if name else ""

    role = "supervisor" if any(g.role == "supervisor" for g in user.groups) else "agent"
    queues = list(dict.fromkeys(q for g in user.groups for q in g.queues))
    languages = [
        v.strip().lower()
        for raw in attrs.get((config.languages_attribute or "").lower(), [])
        for v in raw.split(",")
        if v.strip().lower() in ("ar", "en")
    ]
    capacity = first(config.capacity_attribute)
    extension = extension_of(first(config.extension_attribute))
    try:
        return AgentConfig(
            id=first(config.login_attribute).lower(),
            name=first(config.name_attribute),
            queues=queues,
            languages=list(dict.fromkeys(languages)) or config.languages,
            capacity=min(max(int(capacity), 1), 1000) if capacity.isdigit() else config.capacity,
            role=role,
            email=first(config.mail_attribute) or None,
            extension=extension or None,
        )
    except ValidationError:
        return None


def extension_of(value: str) -> str:
    """A directory's phone attribute as a PBX extension: spaces, dots and brackets of a
    written number dropped (`+966 11 123 4567`); one the PBX still cannot name is left out,
    with a log line."""
    extension = "".join(c for c in value if c not in " .()")
    if len(extension) > 32 or not all(
        c.isascii() and (c.isalnum() or c in "*#+_-") for c in extension
    ):
        log.warning("directory: extension %r is not one a PBX can name; left out", value[:40])
        return ""
    return extension
