"""
ikehub's own plugin package: authenticators and EAP methods, found with
C{twisted.plugin.getPlugins(<interface>, ikehub.plugins)}. Third parties drop a module into any
C{ikehub/plugins/} directory on C{sys.path}.
"""

from twisted.plugin import pluginPackagePaths

__path__.extend(pluginPackagePaths(__name__))  # type: ignore[name-defined]
__all__: list[str] = []
