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
        from twisted.internet import reactor

        from ikehub.auth.registry import buildRegistry

        path = self["config"] or defaultConfigPath()
        try:
            self.hubConfig = loadConfig(path)
            # Plugins are found and built now, so an unknown name or a plugin that refuses its
            # options stops the hub before it forks.
            self.authRegistry = buildRegistry(self.hubConfig, reactor)
        except ConfigError as e:
            raise usage.UsageError(str(e))
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

    return IKEHubService(options.hubConfig, reactor, options.authRegistry)
