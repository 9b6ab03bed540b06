"""
The local user database for the EAP methods: a TOML file, never code.

::

    [[users]]
    name = "alice"
    password = "correct horse battery staple"   # cleartext: EAP-MD5 and EAP-MSCHAPv2

    [[users]]
    name = "bob"
    nt_hash = "8846f7eaee8fb117ad06bdd830b7586c" # MD4 of the UTF-16LE password: MSCHAPv2 only

A site that does not offer EAP-MD5 needs no cleartext passwords at all. Because the file
holds secrets anyway, L{loadUsers} refuses it when its group or others may access it.

Validation works like the hub's configuration (L{ikehub.config}): every problem is
reported, one per line, as C{FILE: KEY: what is wrong; what to do}, in one
L{UserDatabaseError}; secrets are described by their kind and length only, and neither
messages nor reprs ever contain them.
"""

from __future__ import annotations

import binascii
import difflib
import os
import stat
import tomllib
from dataclasses import dataclass, field

from ikehub.auth.eap.mschapv2 import ntPasswordHash
from ikehub.config import ConfigError, valueKind

__all__ = ["User", "UserDatabase", "UserDatabaseError", "loadUsers"]

#: A user database larger than this is certainly not one.
MAX_FILE_SIZE = 16 * 1024 * 1024

_TOP_KEYS = ("users",)
_USER_KEYS = ("name", "password", "nt_hash")
_NT_HASH_HOWTO = (
    "python3 -c 'import sys; from Crypto.Hash import MD4; "
    'print(MD4.new(sys.argv[1].encode("utf-16-le")).hexdigest())\' PASSWORD'
)


class UserDatabaseError(ConfigError):
    """
    The user database cannot be used. A L{ConfigError}, so the hub reports it the same way.
    """


@dataclass(frozen=True, slots=True)
class User:
    """
    One user. At least one of C{password} and C{storedNtHash} is set; neither is shown by
    C{repr}.
    """

    name: str
    password: str | None = field(default=None, repr=False)
    storedNtHash: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.password is None and self.storedNtHash is None:
            raise ValueError("a user needs a password or an NT hash")
        if self.storedNtHash is not None and len(self.storedNtHash) != 16:
            raise ValueError("an NT hash is 16 octets")

    def ntHash(self) -> bytes:
        """The NT password hash (MD4 of the UTF-16LE password), as MSCHAPv2 needs it."""
        if self.storedNtHash is not None:
            return self.storedNtHash
        return ntPasswordHash(self.password or "")


class UserDatabase:
    """Users by exact (case-sensitive) name."""

    def __init__(self, users: tuple[User, ...] | list[User] = ()) -> None:
        self._users: dict[str, User] = {}
        for user in users:
            if user.name in self._users:
                raise ValueError(f"duplicate user name {user.name!r}")
            self._users[user.name] = user

    def lookup(self, name: str) -> User | None:
        return self._users.get(name)

    def __len__(self) -> int:
        return len(self._users)

    def __contains__(self, name: object) -> bool:
        return name in self._users

    def __repr__(self) -> str:
        return f"<UserDatabase with {len(self._users)} users>"


def loadUsers(path: str) -> UserDatabase:
    """
    Read and validate the user database at C{path}.

    @raise UserDatabaseError: listing every problem found, one per line.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise UserDatabaseError(
                    f"{path}: is not a regular file; point it at the user database"
                )
            mode = stat.S_IMODE(info.st_mode)
            if mode & 0o077:
                raise UserDatabaseError(
                    f"{path}: the user database is accessible by group or others "
                    f"(mode {mode:04o}); run: chmod 600 {path}"
                )
            raw = f.read(MAX_FILE_SIZE + 1)
    except FileNotFoundError:
        raise UserDatabaseError(
            f"{path}: does not exist; create it with [[users]] entries and chmod 600"
        ) from None
    except IsADirectoryError:
        raise UserDatabaseError(f"{path}: is a directory; point it at the user database") from None
    except OSError as e:
        raise UserDatabaseError(
            f"{path}: cannot read the user database: {e.strerror or e}; make it readable by "
            "the user ikehub runs as"
        ) from None
    if len(raw) > MAX_FILE_SIZE:
        raise UserDatabaseError(
            f"{path}: larger than {MAX_FILE_SIZE} bytes; is it the user database?"
        )
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise UserDatabaseError(f"{path}: the file is not UTF-8 text; save it as UTF-8") from None
    except tomllib.TOMLDecodeError as e:
        # The decoder's message names a line and column, never the content.
        raise UserDatabaseError(f"{path}: TOML syntax error: {e}; fix the syntax there") from None
    return _Validator(path).validate(document)


class _Validator:
    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[str] = []

    def problem(self, key: str, text: str) -> None:
        self.problems.append(f"{self.path}: {key}: {text}")

    def checkKeys(self, table: dict, allowed: tuple[str, ...], where: str) -> None:
        for key in table:
            if key in allowed:
                continue
            dotted = f"{where}.{key}" if where else key
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            self.problem(
                dotted, f"unknown key{hint}; the keys allowed here are: " + ", ".join(allowed)
            )

    def validate(self, document: dict) -> UserDatabase:
        self.checkKeys(document, _TOP_KEYS, "")
        entries = document.get("users")
        users: list[User] = []
        if entries is None:
            self.problem(
                "users", 'no users; add [[users]] entries with name = "..." and a password'
            )
        elif not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            self.problem(
                "users",
                f"expected [[users]] tables, got {valueKind(entries)}; start each user "
                "with a [[users]] line",
            )
        else:
            if not entries:
                self.problem("users", "the list is empty; add at least one [[users]] entry")
            names: dict[str, int] = {}
            for index, table in enumerate(entries):
                user = self.user(index, table, names)
                if user is not None:
                    users.append(user)
        if self.problems:
            raise UserDatabaseError("\n".join(self.problems), tuple(self.problems))
        return UserDatabase(users)

    def user(self, index: int, table: dict, names: dict[str, int]) -> User | None:
        where = f"users[{index}]"
        self.checkKeys(table, _USER_KEYS, where)
        ok = True
        name = table.get("name")
        if name is None:
            self.problem(f"{where}.name", 'missing; give the user name, like name = "alice"')
            ok = False
        elif not isinstance(name, str):
            self.problem(f"{where}.name", f"expected a string in quotes, got {valueKind(name)}")
            ok = False
        elif not name or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
            self.problem(f"{where}.name", "must be non-empty and without control characters")
            ok = False
        elif name in names:
            self.problem(
                f"{where}.name",
                f"{name!r} is already the name of users[{names[name]}]; user names must be unique",
            )
            ok = False
        else:
            names[name] = index

        hasPassword = "password" in table
        hasHash = "nt_hash" in table
        password: str | None = None
        ntHash: bytes | None = None
        if hasPassword and hasHash:
            self.problem(
                where,
                "set either password or nt_hash, not both (nt_hash is derived from the password)",
            )
            ok = False
        elif not hasPassword and not hasHash:
            self.problem(
                where,
                'needs a secret: set password = "..." (EAP-MD5 and EAP-MSCHAPv2) or '
                'nt_hash = "<32 hex digits>" (EAP-MSCHAPv2 only)',
            )
            ok = False
        elif hasPassword:
            value = table["password"]
            if not isinstance(value, str):
                self.problem(
                    f"{where}.password", f"expected a string in quotes, got {valueKind(value)}"
                )
                ok = False
            elif not value:
                self.problem(f"{where}.password", "is empty; set the user's password")
                ok = False
            else:
                password = value
        else:
            value = table["nt_hash"]
            if not isinstance(value, str):
                self.problem(
                    f"{where}.nt_hash", f"expected a string in quotes, got {valueKind(value)}"
                )
                ok = False
            else:
                ntHash = self.ntHash(f"{where}.nt_hash", value)
                ok = ok and ntHash is not None
        if not ok or name is None:
            return None
        return User(name, password, ntHash)

    def ntHash(self, key: str, text: str) -> bytes | None:
        digits = text.strip()
        if digits[:2] in ("0x", "0X"):
            digits = digits[2:]
        try:
            if len(digits) != 32:
                raise ValueError
            return binascii.unhexlify(digits)
        except (binascii.Error, ValueError):
            self.problem(
                key,
                f"a string of {len(text)} characters is not 32 hexadecimal digits; it must be "
                f"the MD4 of the UTF-16LE password, for example from: {_NT_HASH_HOWTO}",
            )
            return None
