"""Conformance suite: the same scenarios run through Java Kafka Streams and kstreams, compared."""
