"""The Kafka runtime: ``KafkaStreams`` runs a topology on a Kafka cluster with stream threads."""

from kstreams.runtime.kafka_streams import KafkaStreams, State

__all__ = ["KafkaStreams", "State"]
