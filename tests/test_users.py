"""
The local user database: a TOML file validated like the hub's configuration, refused when
group or others can read it, and never showing a secret in an error or a repr.
"""

import os

import pytest

from ikehub.auth.users import User, UserDatabase, UserDatabaseError, loadUsers
from ikehub.config import ConfigError

# RFC 2759 section 9.2: NtPasswordHash("clientPass")
CLIENT_PASS_HASH = bytes.fromhex("44EBBA8D5312B8D611474411F56989AE")

GOOD = """
[[users]]
name = "alice"
password = "wonderland-secret"

[[users]]
name = "User"
nt_hash = "44EBBA8D5312B8D611474411F56989AE"
"""


def write(tmp_path, text, mode=0o600, name="users.toml"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    os.chmod(path, mode)
    return str(path)


def problems(tmp_path, text, mode=0o600):
    with pytest.raises(UserDatabaseError) as caught:
        loadUsers(write(tmp_path, text, mode))
    return str(caught.value)


def test_loadsPasswordAndHashUsers(tmp_path):
    database = loadUsers(write(tmp_path, GOOD))
    assert len(database) == 2
    alice = database.lookup("alice")
    assert alice.password == "wonderland-secret"
    assert database.lookup("User").ntHash() == CLIENT_PASS_HASH
    assert database.lookup("nobody") is None


def test_lookupIsExact(tmp_path):
    """Names are case-sensitive: "Alice" is not "alice"."""
    database = loadUsers(write(tmp_path, GOOD))
    assert database.lookup("Alice") is None
    assert "alice" in database


def test_ntHashComputedFromPassword():
    """With only a password, ntHash() is NtPasswordHash of it (RFC 2759 section 9.2)."""
    assert User("User", password="clientPass").ntHash() == CLIENT_PASS_HASH


def test_ntHashAcceptsPrefixAndLowercase(tmp_path):
    text = '[[users]]\nname = "u"\nnt_hash = "0x44ebba8d5312b8d611474411f56989ae"\n'
    assert loadUsers(write(tmp_path, text)).lookup("u").ntHash() == CLIENT_PASS_HASH


def test_reprsShowNoSecrets(tmp_path):
    database = loadUsers(write(tmp_path, GOOD))
    for text in (repr(database), repr(database.lookup("alice")), repr(database.lookup("User"))):
        assert "wonderland" not in text
        assert "44EBBA" not in text.upper()
        assert "44eb" not in text
    assert "alice" in repr(database.lookup("alice"))


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_groupOrWorldAccessibleFileRefused(tmp_path, mode):
    """mode & 0o077 must be 0; the error says how to fix it."""
    message = problems(tmp_path, GOOD, mode)
    assert f"chmod 600 {tmp_path / 'users.toml'}" in message
    assert f"{mode:04o}" in message


def test_ownerReadOnlyFileAccepted(tmp_path):
    assert len(loadUsers(write(tmp_path, GOOD, 0o400))) == 2


def test_missingFile(tmp_path):
    with pytest.raises(UserDatabaseError) as caught:
        loadUsers(str(tmp_path / "nope.toml"))
    assert "does not exist" in str(caught.value)


def test_directory(tmp_path):
    with pytest.raises(UserDatabaseError) as caught:
        loadUsers(str(tmp_path))
    assert "regular file" in str(caught.value) or "directory" in str(caught.value)


def test_tomlSyntaxErrorNamesFileNotContent(tmp_path):
    message = problems(tmp_path, '[[users]]\nname = "a"\npassword = "s3cr3t-value\n')
    assert "TOML syntax error" in message
    assert str(tmp_path / "users.toml") in message
    assert "s3cr3t" not in message


def test_notUtf8(tmp_path):
    assert "UTF-8" in problems(tmp_path, b'[[users]]\nname = "\xff"\n')


def test_bothPasswordAndHash(tmp_path):
    text = '[[users]]\nname = "a"\npassword = "pw-secret"\nnt_hash = "' + "0" * 32 + '"\n'
    message = problems(tmp_path, text)
    assert "users[0]: set either password or nt_hash, not both" in message
    assert "pw-secret" not in message


def test_noSecret(tmp_path):
    message = problems(tmp_path, '[[users]]\nname = "a"\n')
    assert "users[0]: needs a secret" in message


def test_badNtHashNotEchoed(tmp_path):
    """A malformed nt_hash is described by its length only."""
    text = '[[users]]\nname = "a"\nnt_hash = "deadbeefcafe"\n'
    message = problems(tmp_path, text)
    assert "users[0].nt_hash:" in message
    assert "32 hexadecimal digits" in message
    assert "deadbeef" not in message


def test_nonHexNtHash(tmp_path):
    text = '[[users]]\nname = "a"\nnt_hash = "' + "zz" * 16 + '"\n'
    assert "users[0].nt_hash:" in problems(tmp_path, text)


def test_passwordOfWrongKindNotEchoed(tmp_path):
    message = problems(tmp_path, '[[users]]\nname = "a"\npassword = 123456789\n')
    assert "users[0].password: expected a string in quotes, got a number" in message
    assert "123456789" not in message


def test_emptyPassword(tmp_path):
    assert "users[0].password: is empty" in problems(
        tmp_path, '[[users]]\nname = "a"\npassword = ""\n'
    )


def test_duplicateNames(tmp_path):
    text = '[[users]]\nname = "a"\npassword = "x"\n[[users]]\nname = "a"\npassword = "y"\n'
    assert "users[1].name: 'a' is already the name of users[0]" in problems(tmp_path, text)


def test_missingName(tmp_path):
    assert "users[0].name: missing" in problems(tmp_path, '[[users]]\npassword = "x"\n')


def test_unknownKeySuggestsTheRightOne(tmp_path):
    message = problems(tmp_path, '[[users]]\nname = "a"\npasword = "x"\n')
    assert "users[0].pasword: unknown key (did you mean password?)" in message


def test_unknownTopLevelKey(tmp_path):
    message = problems(tmp_path, 'user = "x"\n' + GOOD)
    assert "user: unknown key (did you mean users?)" in message


def test_noUsers(tmp_path):
    assert "users: no users" in problems(tmp_path, "")


def test_usersNotTables(tmp_path):
    assert "expected [[users]] tables" in problems(tmp_path, 'users = ["alice"]\n')


def test_everyProblemReportedAtOnce(tmp_path):
    """All problems come in one error, one per line, each naming the file and the key."""
    text = (
        '[[users]]\nname = "a"\n'
        '[[users]]\nname = "b"\nnt_hash = "12"\n'
        '[[users]]\nname = 5\npassword = "x"\n'
    )
    with pytest.raises(UserDatabaseError) as caught:
        loadUsers(write(tmp_path, text))
    assert len(caught.value.problems) == 3
    path = str(tmp_path / "users.toml")
    assert all(line.startswith(path + ": users[") for line in caught.value.problems)
    assert str(caught.value) == "\n".join(caught.value.problems)


def test_errorIsAConfigError():
    """The hub reports a bad user database the way it reports a bad configuration."""
    assert issubclass(UserDatabaseError, ConfigError)


def test_userNeedsASecret():
    with pytest.raises(ValueError):
        User("a")
    with pytest.raises(ValueError):
        User("a", storedNtHash=b"short")


def test_databaseRejectsDuplicates():
    with pytest.raises(ValueError):
        UserDatabase([User("a", password="x"), User("a", password="y")])
