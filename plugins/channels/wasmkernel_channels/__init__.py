"""WasmKernel plugin `channels`: named publish/subscribe channels with SSE
and WebSocket fan-out.

Public API: the service key `CHANNELS` (a `Channels`), the `Broker`
protocol (a broker plugin installs one with `Channels.use_broker`), `Event`, `Subscription`, `EventStream`,
`MemoryBroker`, `BrokerUnavailable` (what a publish that cannot be delivered
raises: a 503), `Deliver`, `format_event`, `check_channel` and `event_data`.
"""

from wasmkernel_channels.broker import Broker, BrokerUnavailable, Deliver, Event, MemoryBroker, check_channel
from wasmkernel_channels.hub import Channels, Subscription, event_data
from wasmkernel_channels.plugin import CHANNELS
from wasmkernel_channels.sse import EventStream, format_event

__all__ = [
    "CHANNELS",
    "Broker",
    "BrokerUnavailable",
    "Channels",
    "Deliver",
    "Event",
    "EventStream",
    "MemoryBroker",
    "Subscription",
    "check_channel",
    "event_data",
    "format_event",
]
