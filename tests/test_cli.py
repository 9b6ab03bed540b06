"""
Tests for L{ikehub.cli}: the C{ikehub check} command.
"""

import textwrap

import pytest

from ikehub.cli import main
from ikehub.config import defaultConfigPath

PSK = "a-secret-nobody-should-see-0123456789"

VALID = f"""
[hub]
identity = "hub.example.com"
listen = ["192.0.2.1", "2001:db8::1"]
certificate = "hub.pem"
private_key = "hub.key"
ca = "cas"

[pools.rw]
addresses = "198.51.100.0/24"

[[peers]]
name = "roadwarriors"
identity = "*@example.com"
auth = "psk"
psk = "{PSK}"
pool = "rw"

[[peers]]
identity = "C=CH, O=Example, CN=gateway"
auth = "pubkey"
"""


@pytest.fixture
def configFile(tmp_path):
    from tests.test_config import hubPki

    hubPki(tmp_path)

    def write(text):
        path = tmp_path / "ikehub.toml"
        path.write_text(textwrap.dedent(text))
        return str(path)

    return write


def test_checkValidPrintsSummaryAndReturnsZero(configFile, capsys):
    """A valid file: exit status 0 and one paragraph naming what the hub will do."""
    path = configFile(VALID)
    assert main(["check", path]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert len(out.strip().splitlines()) == 1
    for expected in (
        path,
        "hub.example.com",
        "192.0.2.1, 2001:db8::1",
        "IKE port 500",
        "NAT-T port 4500",
        "rw 198.51.100.0/24 (254 addresses)",
        "roadwarriors (identity *@example.com, auth psk, pool rw)",
        "peer1 (identity C=CH, O=Example, CN=gateway, auth pubkey)",
    ):
        assert expected in out


def test_checkNeverPrintsSecrets(configFile, capsys):
    """The summary does not contain the PSK."""
    assert main(["check", configFile(VALID)]) == 0
    out, err = capsys.readouterr()
    assert PSK not in out + err


def test_checkInvalidPrintsErrorToStderrAndReturnsTwo(configFile, capsys):
    """An invalid file: the ConfigError message on stderr, nothing on stdout, status 2."""
    path = configFile(VALID.replace('pool = "rw"', 'pool = "nope"'))
    assert main(["check", path]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{path}: peers[0].pool: unknown pool 'nope'" in err
    assert "Traceback" not in err


def test_checkInvalidDoesNotLeakPsk(configFile, capsys):
    """Errors about a short PSK do not print it."""
    assert main(["check", configFile(VALID.replace(PSK, "tiny-psk"))]) == 2
    out, err = capsys.readouterr()
    assert "tiny-psk" not in out + err
    assert "peers[0].psk: the pre-shared key is 8 bytes" in err


def test_checkMissingFile(tmp_path, capsys):
    """A path that does not exist is a clear error, status 2."""
    path = str(tmp_path / "missing.toml")
    assert main(["check", path]) == 2
    assert f"{path}: cannot read the configuration file" in capsys.readouterr().err


def test_checkWithoutFileChecksTheShippedExample(capsys):
    """C{ikehub check} alone validates the shipped default configuration."""
    assert main(["check"]) == 0
    assert defaultConfigPath() in capsys.readouterr().out


def test_help(capsys):
    """C{ikehub --help} prints usage with the check command and returns 0."""
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ikehub")
    assert "check" in out


def test_checkHelp(capsys):
    """C{ikehub check --help} describes FILE."""
    assert main(["check", "--help"]) == 0
    assert "FILE" in capsys.readouterr().out


def test_noCommandIsAUsageError(capsys):
    """Without a command: usage on stderr and status 2."""
    assert main([]) == 2
    assert "usage: ikehub" in capsys.readouterr().err


def test_unknownCommandIsAUsageError(capsys):
    """An unknown command: argparse's message and status 2, without raising SystemExit."""
    assert main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_mainReadsSysArgvByDefault(configFile, capsys, monkeypatch):
    """main() with no argument reads the command line, as a console script does."""
    monkeypatch.setattr("sys.argv", ["ikehub", "check", configFile(VALID)])
    assert main() == 0
