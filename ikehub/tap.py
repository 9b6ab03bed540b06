"""
The twistd entry point: C{twistd ikehub [--config FILE] [--check]}.

Everything a person can get wrong is checked in L{Options.postOptions}, so the daemon fails with a
message naming the file and key before it forks or binds anything.
"""

import sys

from twisted.application.app import ServerOptions
from twisted.python import usage

from ikehub.config import ConfigError, HubConfig, defaultConfigPath, loadConfig
from ikehub.logobserver import installAsDefault

#: Authenticators the hub offers today; third-party ones arrive as plugins.
KNOWN_AUTHENTICATORS = frozenset({"psk"})


class Options(usage.Options):
    synopsis = "[--config FILE] [--check]"
    longdesc = (
        "Run the ikehub IKEv2 VPN concentrator. Without --config it uses the shipped example "
        "configuration."
    )
    optParameters = [
        ["config", "c", None, "Path of the TOML configuration file."],
    ]
    optFlags = [
        ["check", None, "Validate the configuration, print a summary and exit."],
    ]

    hubConfig: HubConfig

    def postOptions(self) -> None:
        path = self["config"] or defaultConfigPath()
        try:
            self.hubConfig = loadConfig(path)
        except ConfigError as e:
            raise usage.UsageError(str(e))
        for index, peer in enumerate(self.hubConfig.peers):
            if peer.auth not in KNOWN_AUTHENTICATORS:
                raise usage.UsageError(
                    f"{path}: peers[{index}].auth: unknown authenticator {peer.auth!r}; "
                    f"use one of: {', '.join(sorted(KNOWN_AUTHENTICATORS))}"
                )
        if self["check"]:
            from ikehub.cli import summarize

            sys.stdout.write(summarize(self.hubConfig) + "\n")
            raise SystemExit(0)
        parent = getattr(self, "parent", None)
        if isinstance(parent, ServerOptions):
            # twistd's default text observer formats each line in pure Python; the hub writes
            # one per IKE SA. Same lines, cheaper (see ikehub.logobserver).
            installAsDefault(parent)


def makeService(options: Options):
    from twisted.internet import reactor

    from ikehub.service import IKEHubService

    return IKEHubService(options.hubConfig, reactor)
