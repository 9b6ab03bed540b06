"""
The C{ikehub} command: tools an operator runs next to the daemon (which runs as C{twistd ikehub}).

C{ikehub check FILE} validates a configuration exactly as the daemon would at start, so a
change can be checked before a restart, and prints what the hub would do with it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ikehub.auth.registry import buildRegistry
from ikehub.config import ConfigError, HubConfig, defaultConfigPath, loadConfig

__all__ = ["main", "summarize"]

#: Exit status for a configuration (or command line) that cannot be used.
EXIT_INVALID = 2


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {plural or word + 's'}"


def summarize(config: HubConfig) -> str:
    """One paragraph saying what the hub would do; never any secret."""
    listen = ", ".join(config.listen)
    sentences = [
        f"Configuration {config.path} is valid.",
        (
            f"The hub identifies as {config.identity} and listens on {listen} "
            f"(IKE port {config.port}, NAT-T port {config.nattPort}), "
            f"offering {_plural(len(config.ikeProposals), 'IKE proposal')} and "
            f"{_plural(len(config.espProposals), 'ESP proposal')}."
        ),
    ]
    if config.pools:
        pools = "; ".join(
            f"{pool.name} {pool.addresses} ({_plural(pool.size, 'address', 'addresses')})"
            for pool in config.pools.values()
        )
        sentences.append(f"{_plural(len(config.pools), 'pool')}: {pools}.")
    else:
        sentences.append("No address pools.")
    if config.peers:
        peers = "; ".join(
            f"{peer.name} (identity {peer.identity}, auth {peer.auth}"
            + (f", pool {', '.join(peer.pools)}" if peer.pools else "")
            + ")"
            for peer in config.peers
        )
        sentences.append(f"{_plural(len(config.peers), 'peer')}: {peers}.")
    else:
        sentences.append("No peers: every client will be refused.")
    if config.saveKeys:
        sentences.append(f"IKE keys are written to {config.saveKeys} (debugging only).")
    return " ".join(sentences)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ikehub",
        description="Tools for the ikehub IKEv2 concentrator (the daemon runs as: twistd ikehub).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = commands.add_parser(
        "check",
        help="validate a configuration file and summarize it",
        description="Validate a configuration file as the daemon would at start, and print "
        "a summary. Exit status 0 if it is valid, 2 if not.",
    )
    check.add_argument(
        "path",
        metavar="FILE",
        nargs="?",
        default=None,
        help=f"the TOML configuration (default: the shipped example, {defaultConfigPath()})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the C{ikehub} command line; returns the exit status (0 ok, 2 invalid input).
    """
    parser = _parser()
    try:
        options = parser.parse_args(argv)
    except SystemExit as e:
        # argparse exits for --help (0) and for usage errors (2); report instead of exiting.
        return e.code if isinstance(e.code, int) else EXIT_INVALID
    if options.command is None:
        parser.print_usage(sys.stderr)
        print("ikehub: error: give a command, for example: ikehub check FILE", file=sys.stderr)
        return EXIT_INVALID
    path = options.path if options.path is not None else defaultConfigPath()
    try:
        config = loadConfig(path)
        buildRegistry(config)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return EXIT_INVALID
    print(summarize(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
