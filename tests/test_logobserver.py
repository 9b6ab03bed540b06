"""
The hub's text log observer writes exactly the lines twistd's default observer writes, and
C{twistd ikehub} uses it unless the command line chose another destination or observer.
"""

import io
import signal

import pytest
from twisted.logger import (
    LogLevel,
    formatEventAsClassicLogText,
    formatTime,
    textFileLogObserver,
)
from twisted.python.failure import Failure
from twisted.scripts._twistd_unix import ServerOptions

from ikehub import logobserver
from ikehub.logobserver import ClassicTextFormatter, installAsDefault, observerFor

NOW = 1_765_000_000.25


class Unprintable:
    def __format__(self, spec):
        raise RuntimeError("no")

    def __repr__(self):
        return "<Unprintable>"


class Attributes:
    name = "attr"

    def call(self):
        return "called"


def failureEvent():
    try:
        1 / 0
    except ZeroDivisionError:
        failure = Failure()
    return dict(
        log_format="oops {peer}",
        peer="p",
        log_failure=failure,
        log_time=NOW,
        log_namespace="x",
        log_level=LogLevel.critical,
    )


def event(fmt, **fields):
    base = dict(
        log_format=fmt,
        log_time=NOW,
        log_namespace="ikehub.ike.endpoint.IKEEndpoint",
        log_level=LogLevel.info,
    )
    base.update(fields)
    return base


EVENTS = {
    "plain fields": event(
        "IKE SA with {peer} ({identity}) established",
        peer="192.0.2.1:4500",
        identity="alice@example.com",
        spi_i="00" * 8,
    ),
    "no fields": event("Server Shut Down."),
    "format spec and conversions": event(
        "{n:>6} {x!r} {y!s} {z!a} {f:.2f}", n=42, x="q", y=b"b", z="é", f=1.5
    ),
    "literal braces": event("{{not a field}} {peer}", peer="p"),
    "newline in text": event("first {a}\nsecond", a="line"),
    "newline in a field": event("{a}", a="one\ntwo"),
    "missing field": event("{missing} here"),
    "unformattable field": event("{u}", u=Unprintable()),
    "attribute syntax": event("{o.name}", o=Attributes()),
    "call syntax": event("{o.call()} {f()}", o=Attributes(), f=lambda: "fn"),
    "index syntax": event("{d[k]}", d={"k": "v"}),
    "positional field": event("{} and {0}"),
    "unbalanced brace": event("oops {peer"),
    "nested spec": event("{n:{w}}", n=7, w=5),
    "bytes format": event(b"bytes {peer}", peer="p"),
    "no format": event(None),
    "empty text": event(""),
    "log_system": event("{peer}", peer="p", log_system="UDP (127.0.0.1:500)"),
    "odd log_system": event("{peer}", peer="p", log_system=12),
    "no time": event("{peer}", peer="p", log_time=None),
    "no level or namespace": {"log_format": "bare", "log_time": NOW},
    "odd namespace": event("{peer}", peer="p", log_namespace=7),
    "failure": failureEvent(),
    "flattened": dict(event("{peer!r}", peer="p"), log_flattened={"peer!r:": "'p'", "peer:": "p"}),
}


def twistedText(e):
    return formatEventAsClassicLogText(e, formatTime=lambda when: formatTime(when))


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_sameTextAsTwistdsObserver(name):
    """
    Every kind of event, the hub's own and unusual ones, comes out exactly as twistd's default
    observer would write it.
    """
    formatter = ClassicTextFormatter()
    e = EVENTS[name]
    expected = twistedText(e)
    assert formatter(e) == expected
    assert formatter(e) == expected  # again, from the caches


def test_oddLevelFailsLikeTwisted():
    """
    A level that is not a LogLevel makes Twisted's formatter raise (the log publisher then
    reports the observer's failure); ours raises the same rather than invent a line.
    """
    e = event("{peer}", peer="p", log_level="loud")
    with pytest.raises(AttributeError):
        twistedText(e)
    with pytest.raises(AttributeError):
        ClassicTextFormatter()(e)


def test_timeStampsFollowTheClock():
    """
    The time stamp is cached per second, yet each event shows its own second, including times
    that round up into the next second and times before the epoch.
    """
    formatter = ClassicTextFormatter()
    second = float(int(NOW))
    times = (NOW, NOW + 0.5, NOW + 1, NOW - 3600, 0.0, -1.5)
    # Just below a second: 0.99999952 prints as the next second, 0.99999928 does not.
    nearNext = (second + 0.9999996, second + 0.9999993)
    for when in times + nearNext:
        e = event("x", log_time=when)
        assert formatter(e) == twistedText(e), when


def test_customTimeFormat():
    """
    A format with fractions of a second is never served from the per-second cache.
    """
    formatter = ClassicTextFormatter("%H:%M:%S.%f")
    for when in (NOW, NOW + 0.125):
        assert formatter(event("x", log_time=when)).startswith(
            formatTime(when, "%H:%M:%S.%f") + " "
        )
    assert ClassicTextFormatter(None)(event("x")).startswith("- [")


def test_writesLikeTextFileLogObserver():
    """
    Through a file, the observer writes the same bytes as L{textFileLogObserver}.
    """
    ours, theirs = io.StringIO(), io.StringIO()
    observer, reference = logobserver.textFileObserver(ours), textFileLogObserver(theirs)
    for name in sorted(EVENTS):
        if name != "failure":  # the traceback differs in the frames that format it
            observer(EVENTS[name])
            reference(EVENTS[name])
    assert ours.getvalue() == theirs.getvalue()


def twistdOptions(*args):
    """
    twistd's own options parsed for C{twistd <args> ikehub}, as twistd does it.
    """
    options = ServerOptions()
    options.parseOptions(list(args) + ["ikehub"])
    return options


@pytest.fixture
def savedSignal():
    previous = signal.getsignal(signal.SIGUSR1)
    yield
    signal.signal(signal.SIGUSR1, previous)
    logobserver._serverOptions = None


def test_twistdIkehubLogsToItsLogfile(tmp_path, savedSignal):
    """
    C{twistd -n --logfile F ikehub}: twistd's observer factory is now the hub's, and its
    observer writes to F the lines twistd would.
    """
    path = tmp_path / "hub.log"
    options = twistdOptions("-n", "--logfile", str(path))
    assert options["logger"] is logobserver.twistdObserver
    observer = options["logger"]()
    e = EVENTS["plain fields"]
    observer(e)
    assert path.read_text() == twistedText(e)
    # twistd rotates its log file on SIGUSR1; so does this one.
    assert signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, signal.SIG_IGN, None)


def test_defaultLogfileIsTwistdLog(tmp_path, savedSignal, monkeypatch):
    """
    A daemon without C{--logfile} logs to C{twistd.log}, as twistd does.
    """
    monkeypatch.chdir(tmp_path)
    observer = observerFor({"logfile": None, "nodaemon": False})
    observer(EVENTS["no fields"])
    assert (tmp_path / "twistd.log").read_text() == twistedText(EVENTS["no fields"])


@pytest.mark.parametrize("args", [["-n"], ["-n", "--logfile", "-"]], ids=["-n", "-n --logfile=-"])
def test_foregroundWithoutFileLogsToStdout(savedSignal, capsys, args):
    """
    In the foreground without a file, or with C{--logfile=-}, the log goes to standard output.
    """
    options = twistdOptions(*args)
    options["logger"]()(EVENTS["no fields"])
    assert capsys.readouterr().out == twistedText(EVENTS["no fields"])


@pytest.mark.parametrize(
    "args",
    [
        ["--logger", "twisted.logger.textFileLogObserver"],
        ["--syslog"],
        ["--logfile", "-"],
    ],
    ids=["--logger", "--syslog", "daemon to stdout"],
)
def test_leavesOtherChoicesToTwistd(savedSignal, args):
    """
    C{--logger} and C{--syslog} keep their meaning, and a daemon told to log to standard
    output still gets twistd's own refusal.
    """
    options = twistdOptions(*args)
    if "--logger" in args:
        from twisted.logger import textFileLogObserver as chosen

        assert options["logger"] is chosen
    else:
        assert options["logger"] is None


def test_installAsDefaultOnlyWithoutAChoice():
    """
    The default is set by name, which twistd resolves after the hub's options are parsed.
    """
    options = {"logger": None, "syslog": False, "logfile": "x.log", "nodaemon": False}
    assert installAsDefault(options)
    assert options["logger"] == "ikehub.logobserver.twistdObserver"
    logobserver._serverOptions = None


def test_hubOptionsAloneInstallNothing():
    """
    Outside twistd (tests, C{twist}) the ikehub options parse without touching any logging.
    """
    from ikehub.tap import Options

    before = logobserver._serverOptions
    Options().parseOptions([])
    assert logobserver._serverOptions is before
