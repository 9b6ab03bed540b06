"""
Packaging: twistd finds the ikehub plugin after `pip install .` and `pip install -e .` into a
fresh virtualenv, the built-in plugins are discoverable, and a bad configuration stops twistd
before it starts with a message that names the key.
"""

import os
import subprocess
import sys
import sysconfig
import textwrap
import venv
from pathlib import Path

import pytest
from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
from twisted.python import usage

from ikehub import tap

REPO = Path(__file__).resolve().parent.parent
#: twistd itself, without relying on the console script of whichever Twisted is installed.
TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"


def test_ikehubIsATwistdPlugin():
    makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker)}
    assert "ikehub" in makers
    assert makers["ikehub"].options is tap.Options


def freshVenvWithDependencies(where: Path) -> Path:
    """
    A new virtualenv whose only extra path is where this interpreter finds Twisted and
    cryptography, so installing ikehub needs no dependency download (pip still fetches setuptools
    for the isolated build, as any user's install would) and sees none of the work tree.
    """
    venv.EnvBuilder(with_pip=True).create(where)
    purelib = subprocess.run(
        [
            str(where / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    import cryptography
    import twisted
    import zope.interface

    dependencyDirs = {
        str(Path(module.__file__).resolve().parents[levels])
        for module, levels in ((twisted, 1), (cryptography, 1), (zope.interface, 2))
    }
    dependencyDirs.add(sysconfig.get_path("purelib"))
    Path(purelib, "outer-dependencies.pth").write_text("\n".join(sorted(dependencyDirs)) + "\n")
    return where / "bin"


@pytest.mark.parametrize("editable", [False, True], ids=["install", "editable"])
def test_twistdListsIkehubInAFreshVirtualenv(tmp_path, editable):
    bindir = freshVenvWithDependencies(tmp_path / "venv")
    install = [str(bindir / "pip"), "install", "-q", "--no-deps"]
    install += ["-e", str(REPO)] if editable else [str(REPO)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        install, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert result.returncode == 0, result.stderr
    twistd = [str(bindir / "python"), "-c", TWISTD]
    help = subprocess.run(
        twistd + ["--help"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )
    assert help.returncode == 0, help.stderr
    assert "ikehub" in help.stdout
    assert "IKEv2" in help.stdout
    check = subprocess.run(
        twistd + ["ikehub", "--check"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "hub.example.com" in check.stdout


BAD_CONFIG = textwrap.dedent(
    """
    [hub]
    identity = "hub.example.com"

    [[peers]]
    identity = "alice@example.com"
    auth = "psk"
    psk = "too-short"
    """
)


def test_badConfigNamesFileAndKey(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(BAD_CONFIG)
    options = tap.Options()
    with pytest.raises(usage.UsageError) as raised:
        options.parseOptions(["--config", str(path)])
    message = str(raised.value)
    assert str(path) in message
    assert "peers[0].psk" in message
    assert "too-short" not in message, "a secret leaked into an error message"


def test_twistdRefusesABadConfigBeforeStarting(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(BAD_CONFIG)
    result = subprocess.run(
        [sys.executable, "-c", TWISTD, "-n", "--pidfile=", "ikehub", "--config", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert result.returncode != 0
    assert "peers[0].psk" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_unknownAuthenticatorIsRefused(tmp_path):
    path = tmp_path / "auth.toml"
    path.write_text(
        '[hub]\nidentity = "hub.example.com"\n\n[[peers]]\nidentity = "a@example.com"\n'
        'auth = "carrier-pigeon"\nlocal_auth = "psk"\n'
    )
    with pytest.raises(usage.UsageError) as raised:
        tap.Options().parseOptions(["--config", str(path)])
    assert "peers[0].auth" in str(raised.value)
    assert "carrier-pigeon" in str(raised.value)
