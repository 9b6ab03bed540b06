"""
Third-party plugins: the example in docs/plugins.md, dropped as one file into an ikehub/plugins
directory on the path, is discovered, configured and used, in process and by a real strongSwan
client; a plugin file that does not import, or that claims an interface it lacks, stops the hub
at start with its name.
"""

import re
import textwrap
from pathlib import Path

import pytest
from twisted.internet import task

import ikehub.plugins
from ikehub.auth.registry import buildRegistry, discoverPlugins
from ikehub.config import ConfigError, loadConfig
from ikehub.wire.identity import Identity
from tests.harness import HubProcess, StrongSwan, Topology, requireRealClients
from tests.realclient import clientConfig, clientSecrets, onlyIkeSa, waitFor

DOCS = Path(__file__).parent.parent / "docs" / "plugins.md"
BOB_KEY = "bob-looked-up-key-0123456789"


def examplePlugin() -> str:
    """The complete example plugin, as docs/plugins.md shows it."""
    [block] = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.DOTALL)
    return block


def installPlugin(root: Path, name: str, source: str) -> Path:
    directory = root / "ikehub" / "plugins"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    path.write_text(source)
    return path


@pytest.fixture
def pluginRoot(tmp_path, monkeypatch):
    """A directory whose ikehub/plugins/ the in-process plugin package also searches."""
    root = tmp_path / "extra"
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(
        ikehub.plugins, "__path__", [*ikehub.plugins.__path__, str(root / "ikehub" / "plugins")]
    )
    return root


def lookupConfig(directory: Path, extra: str = "") -> str:
    (directory / "psks.toml").write_text(f'"bob@example.com" = "{BOB_KEY}"\n')
    text = f"""
[hub]
identity = "hub.example.com"
listen = ["192.0.2.1"]

[auth."psk-lookup"]
file = "psks.toml"
{extra}

[pools.roadwarriors]
addresses = "198.51.100.10-198.51.100.200"

[[peers]]
name = "looked-up"
identity = "*@example.com"
auth = "psk-lookup"
local_auth = "psk"
pool = "roadwarriors"
local_ts = ["203.0.113.0/24"]
"""
    path = directory / "ikehub.toml"
    path.write_text(text)
    return str(path)


def test_examplePluginIsDiscoveredBuiltAndDecides(pluginRoot, tmp_path):
    installPlugin(pluginRoot, "psk_lookup", examplePlugin())
    authenticators, _ = discoverPlugins()
    assert "psk-lookup" in authenticators
    clock = task.Clock()
    registry = buildRegistry(loadConfig(lookupConfig(tmp_path)), clock)
    authenticator = registry.authenticators["psk-lookup"]

    from ikehub.auth.plugin import AuthAttempt

    def attempt(identity, key):
        mac = lambda psk: b"mac:" + psk  # noqa: E731 - a stand-in PRF for the decision logic
        return AuthAttempt(
            Identity.fromString(identity),
            "192.0.2.11",
            None,
            2,
            mac(key.encode()),
            b"",
            (),
            0.0,
            mac,
        )

    verdicts = []
    for identity, key in (
        ("bob@example.com", BOB_KEY),
        ("bob@example.com", "wrong-key-0123456789"),
        ("eve@example.com", BOB_KEY),
    ):
        authenticator.authenticate(attempt(identity, key)).addCallback(verdicts.append)
    assert verdicts == []  # the example answers later, as a directory lookup would
    clock.advance(0)
    assert [v.accepted for v in verdicts] == [True, False, False]
    assert verdicts[0].sharedKey == BOB_KEY.encode()
    assert "no key for eve@example.com" in verdicts[2].reason


def test_pluginOptionsAreCheckedByThePlugin(pluginRoot, tmp_path):
    installPlugin(pluginRoot, "psk_lookup", examplePlugin())
    with pytest.raises(ConfigError) as raised:
        buildRegistry(loadConfig(lookupConfig(tmp_path, extra='colour = "blue"')), None)
    assert 'auth."psk-lookup".colour: psk-lookup: unknown key' in str(raised.value)


def test_pluginThatFailsToImportStopsTheHubByName(pluginRoot, tmp_path):
    installPlugin(pluginRoot, "broken_auth", "raise RuntimeError('no database driver')\n")
    with pytest.raises(ConfigError) as raised:
        discoverPlugins()
    message = str(raised.value)
    assert "ikehub.plugins.broken_auth" in message and "no database driver" in message


def test_pluginClaimingAnInterfaceItLacksIsRefused(pluginRoot):
    installPlugin(
        pluginRoot,
        "hollow_auth",
        textwrap.dedent(
            """
            from twisted.plugin import IPlugin
            from zope.interface import implementer
            from ikehub.interfaces import IAuthenticatorPlugin

            @implementer(IPlugin, IAuthenticatorPlugin)
            class Hollow:
                name = "hollow"

            hollow = Hollow()
            """
        ),
    )
    with pytest.raises(ConfigError) as raised:
        discoverPlugins()
    assert "plugin 'hollow' claims IAuthenticatorPlugin but does not provide it" in str(
        raised.value
    )


@pytest.fixture
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("plg")


def test_realClientAuthenticatedByTheThirdPartyPlugin(workdir, monkeypatch):
    """
    The hub, started with the plugin's directory on PYTHONPATH, lets a strongSwan client in
    with the looked-up key, and refuses one with another key.
    """
    requireRealClients()
    root = workdir / "extra"
    installPlugin(root, "psk_lookup", examplePlugin())
    monkeypatch.setenv("PYTHONPATH", str(root))
    hubDir = workdir / "hub"
    hubDir.mkdir()
    config = Path(lookupConfig(hubDir)).read_text()
    with (
        Topology(clients=2) as net,
        HubProcess(net.hubNs, hubDir, config) as hub,
        StrongSwan(
            net.clientNs[0],
            workdir / "c1",
            clientConfig(identity="bob@example.com"),
            secrets=clientSecrets("bob@example.com", BOB_KEY),
        ) as bob,
        StrongSwan(
            net.clientNs[1],
            workdir / "c2",
            clientConfig(identity="bob@example.com"),
            secrets=clientSecrets("bob@example.com", "not-bobs-key-0123456789"),
            label="client2",
        ) as impostor,
    ):
        assert bob.initiate("home").returncode == 0, bob.log() + hub.log()
        sa = onlyIkeSa(bob)
        assert sa["state"] == "ESTABLISHED" and sa["local-vips"], sa
        assert impostor.initiate("home").returncode != 0
        assert "AUTHENTICATION_FAILED" in impostor.log()
        assert waitFor(lambda: "looked-up key" in hub.log()), hub.log()
