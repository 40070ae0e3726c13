"""The sensor simulator: scenarios with realistic curves, sent over HTTP or MQTT."""

from node.simulator.scenario import SCENARIOS, Scenario, SimulatedSensor, rain_event
from node.simulator.transports import HttpTransport, MqttTransport, Reading, senml_pack

__all__ = [
    "SCENARIOS",
    "HttpTransport",
    "MqttTransport",
    "Reading",
    "Scenario",
    "SimulatedSensor",
    "rain_event",
    "senml_pack",
]
