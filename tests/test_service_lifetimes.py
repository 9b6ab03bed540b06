"""
The service between the datapath's lifetime events and the IKE endpoint: a soft limit starts a
rekey, a hard one deletes the CHILD SA; both are logged with the SA's counters and never raise.
"""

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import Logger

from ikehub.config import loadConfig
from ikehub.esp.espsa import EspSA
from ikehub.service import IKEHubService
from tests import test_esp_datapath
from tests.test_leases import configFile


def serviceWithRecorders(tmp_path):
    config = loadConfig(configFile(tmp_path, hub="dpd_delay = 5\nike_rekey_time = 60"))
    service = IKEHubService(config, MemoryReactorClock())
    events, calls = [], []
    service.log = Logger(observer=events.append)
    service.endpoint.rekeyChildSa = lambda child: calls.append(("rekey", child))
    service.endpoint.deleteChildSa = lambda child: calls.append(("delete", child))
    return service, events, calls


def anEspSa():
    """The hub's ESP SA of the datapath tests' scenario (a real CHILD SA, in memory)."""
    scenario = test_esp_datapath.DatapathScenario("hubEspSa")
    scenario.setUp()
    return scenario.hubEspSa()


def test_softLimitRekeysAndHardLimitDeletes(tmp_path):
    service, events, calls = serviceWithRecorders(tmp_path)
    espSa = anEspSa()
    assert isinstance(espSa, EspSA)
    service._lifetimeReached(espSa, False, "bytes")
    service._lifetimeReached(espSa, True, "seconds")
    assert calls == [("rekey", espSa.child), ("delete", espSa.child)]
    assert [e["what"] for e in events] == ["bytes", "seconds"]
    assert events[1]["spi_in"] == espSa.child.inboundSpi.hex()
    assert "packets_in" in events[1]


def test_lifecycleSettingsReachTheEndpoint(tmp_path):
    service, _, _ = serviceWithRecorders(tmp_path)
    settings = service.endpoint.settings
    assert (settings.dpdDelay, settings.ikeRekeyTime, settings.requirePfs) == (5.0, 60.0, False)
