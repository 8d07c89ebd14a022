"""kstreams: Kafka stream processing with the semantics of Kafka Streams' Processor API.

Wire sources, processors, state stores and sinks with :class:`Topology`; run them with
:class:`~kstreams.testing.TopologyTestDriver` in-process, or on Kafka with ``KafkaStreams``.
"""

from kstreams import serdes
from kstreams._core import COMPILED
from kstreams.config import StreamsConfig
from kstreams.errors import HandlerResponse, StreamThreadExceptionResponse
from kstreams.processor import Cancellable, Processor, ProcessorContext, PunctuationType, Record, RecordMetadata
from kstreams.runtime import KafkaStreams, State
from kstreams.state import KeyValueStore, Stores
from kstreams.topology import Topology

__version__ = "0.1.0"

__all__ = [
    "COMPILED",
    "Cancellable",
    "HandlerResponse",
    "KafkaStreams",
    "KeyValueStore",
    "Processor",
    "ProcessorContext",
    "PunctuationType",
    "Record",
    "RecordMetadata",
    "Stores",
    "State",
    "StreamThreadExceptionResponse",
    "StreamsConfig",
    "Topology",
    "serdes",
]
