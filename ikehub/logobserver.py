"""
The hub's text log observer: the same lines twistd writes, for a fraction of the CPU.

twistd's default observer (L{twisted.logger.textFileLogObserver}) formats every event with
Twisted's pure-Python C{string.Formatter} and converts its timestamp with two C{fromtimestamp}
calls, a time zone object and C{strftime}. The hub logs one line per IKE SA, so at a few thousand
handshakes per second that formatting alone costs more than a tenth of the responder's CPU.

L{ClassicTextFormatter} writes byte-for-byte what L{twisted.logger.formatEventAsClassicLogText}
writes, by taking a fast path for the events that need nothing special, which are the hub's own:
a text format whose fields are plain names is expanded by C{str.format_map} (in C), the time stamp
is computed once per second, and the C{[namespace#level]} prefix once per logger. Anything else
(failures, pre-flattened events, attribute or call syntax, fields that are missing or will not
format) goes through Twisted's own formatter, so it prints exactly what it always did.

L{installAsDefault} makes this the observer of C{twistd ikehub} unless the command line chose
otherwise: C{--logfile} and C{-n} are honoured the way twistd honours them, and C{--logger} or
C{--syslog} leave twistd's own choice alone.
"""

import signal
import string
import sys

from twisted.logger import (
    FileLogObserver,
    ILogObserver,
    formatEventAsClassicLogText,
    formatTime,
    timeFormatRFC3339,
)
from twisted.python import logfile

_parse = string.Formatter().parse


def _isSimpleFormat(text: str) -> bool:
    """
    Whether C{str.format_map(event)} expands C{text} the way Twisted's formatter does: every
    field a plain name, with no nested fields in its format spec. Twisted's formatter would
    also call C{name()} fields and index positional ones, which C{format_map} would not.
    """
    try:
        for _, name, spec, _ in _parse(text):
            if name is None:
                continue
            if not name.isidentifier() or (spec and "{" in spec):
                return False
    except ValueError:  # unbalanced braces: Twisted reports it as unformattable
        return False
    return True


class ClassicTextFormatter:
    """
    A callable that turns an event into the text line twistd's default observer writes for it
    (C{"<time> [<system>] <text>\\n"}), or L{None} when there is nothing to write.

    @ivar timeFormat: the C{strftime} format of the time stamp (twistd's is RFC 3339 to the
        second); L{None} prints C{"-"}.
    """

    __slots__ = ("timeFormat", "_second", "_stamp", "_simple", "_systems", "_cacheTime")

    #: Formats remembered at most; the hub has a few dozen, this bounds a caller who builds
    #: format strings on the fly (which Twisted discourages).
    maxFormats = 4096

    def __init__(self, timeFormat: str | None = timeFormatRFC3339) -> None:
        self.timeFormat = timeFormat
        # A stamp holds whole seconds, so one second's text serves every event in it, unless
        # the format prints fractions.
        self._cacheTime = timeFormat is not None and "%f" not in timeFormat
        self._second = -1
        self._stamp = ""
        #: format text -> whether format_map expands it as Twisted would
        self._simple: dict[str, bool] = {}
        #: (namespace, level) -> "namespace#level"
        self._systems: dict[tuple, str] = {}

    def formatTime(self, when: float | None) -> str:
        """
        The time stamp of an event logged at C{when}, as L{twisted.logger.formatTime} writes it.
        """
        if self._cacheTime and when is not None and when >= 0:
            second = int(when)
            # datetime rounds to microseconds, so a time within half a microsecond of the next
            # second prints as that second: leave that rare case to the slow path.
            if when - second < 0.9999995:
                if second != self._second:
                    self._stamp = formatTime(second, self.timeFormat)
                    self._second = second
                return self._stamp
        return formatTime(when, self.timeFormat)

    def _slow(self, event) -> str | None:
        return formatEventAsClassicLogText(event, formatTime=self.formatTime)

    def __call__(self, event) -> str | None:
        text = event.get("log_format")
        if type(text) is not str or "log_failure" in event or "log_flattened" in event:
            return self._slow(event)
        simple = self._simple.get(text)
        if simple is None:
            if len(self._simple) >= self.maxFormats:
                self._simple.clear()
            simple = self._simple[text] = _isSimpleFormat(text)
        if not simple:
            return self._slow(event)
        try:
            text = text.format_map(event)
        except Exception:
            # A missing field or one that will not format: Twisted's formatter says which.
            return self._slow(event)
        if not text:
            return None
        system = event.get("log_system")
        if system is None:
            key = (event.get("log_namespace", "-"), event.get("log_level"))
            system = self._systems.get(key)
            if system is None:
                system = self._system(key)
                if system is None:
                    return self._slow(event)
        elif type(system) is not str or "\n" in system:
            return self._slow(event)
        if "\n" in text:
            text = text.replace("\n", "\n\t")
        return f"{self.formatTime(event.get('log_time'))} [{system}] {text}\n"

    def _system(self, key: tuple) -> str | None:
        """
        The C{namespace#level} twistd prints for a logger's events, remembered per logger.
        """
        namespace, level = key
        if type(namespace) is not str or "\n" in namespace or len(self._systems) >= self.maxFormats:
            return None
        try:
            system = f"{namespace}#{'-' if level is None else level.name}"
        except Exception:  # a level that is not a LogLevel: as odd as Twisted prints it
            return None
        self._systems[key] = system
        return system


def textFileObserver(outFile, timeFormat: str | None = timeFormatRFC3339) -> FileLogObserver:
    """
    Like L{twisted.logger.textFileLogObserver}: an observer writing to C{outFile} (a text or
    binary file, or a L{twisted.python.logfile.LogFile}), with L{ClassicTextFormatter}.
    """
    return FileLogObserver(outFile, ClassicTextFormatter(timeFormat))


def _rotateOnSIGUSR1(logFile) -> None:
    """
    What twistd does for its own log file: rotate it on SIGUSR1, unless someone else already
    handles that signal.
    """
    if signal.getsignal(signal.SIGUSR1):
        return

    def rotate(signum, frame):
        from twisted.internet import reactor

        reactor.callFromThread(logFile.rotate)

    signal.signal(signal.SIGUSR1, rotate)


def observerFor(serverOptions) -> ILogObserver:
    """
    The observer twistd would make from C{serverOptions} (C{--logfile}, C{-n}), but with the
    faster formatter: standard output for C{-n} without a file or with C{--logfile=-}, else a
    rotating L{LogFile} (C{twistd.log} by default) that SIGUSR1 rotates.
    """
    name = serverOptions.get("logfile")
    if name == "-" or (not name and serverOptions.get("nodaemon")):
        return textFileObserver(sys.stdout)
    logFile = logfile.LogFile.fromFullPath(name or "twistd.log")
    _rotateOnSIGUSR1(logFile)
    return textFileObserver(logFile)


#: The twistd options L{installAsDefault} saw, for L{twistdObserver}: twistd resolves its
#: C{--logger} option by name, so the factory cannot carry them itself.
_serverOptions: dict | None = None


def twistdObserver() -> ILogObserver:
    """
    twistd's log observer factory for the hub (C{--logger ikehub.logobserver.twistdObserver},
    the default that L{installAsDefault} sets): L{observerFor} the hub's twistd options.
    """
    return observerFor(_serverOptions if _serverOptions is not None else {})


def installAsDefault(serverOptions) -> bool:
    """
    Make L{twistdObserver} twistd's log observer factory, unless the command line already
    decided where the log goes in a way this module does not handle: C{--logger} (the user's
    own factory), C{--syslog}, or a daemon told to log to standard output (twistd refuses that
    with its own message). Returns whether it did.

    Called from the ikehub options' C{postOptions}, which runs before twistd's own: those turn
    the C{logger} option's name into the factory, which twistd calls when it starts logging,
    before the service starts.
    """
    global _serverOptions
    _serverOptions = serverOptions
    if serverOptions.get("logger") or serverOptions.get("syslog"):
        return False
    if serverOptions.get("logfile") == "-" and not serverOptions.get("nodaemon"):
        return False
    serverOptions["logger"] = f"{__name__}.twistdObserver"
    return True
