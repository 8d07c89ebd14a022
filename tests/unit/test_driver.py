"""Processor API semantics through the TopologyTestDriver (the compiled loop, no broker)."""

import logging

import pytest

from kstreams import HandlerResponse, Processor, PunctuationType, Record, Stores, Topology, serdes
from kstreams.errors import ConfigError, DeserializationError, ProcessingError, StateStoreError, TimestampError
from kstreams.testing import NoSuchElementError, TopologyTestDriver
from kstreams.timestamps import LogAndSkipOnInvalidTimestamp, UsePartitionTimeOnInvalidTimestamp

S = {"key_serde": serdes.STRING, "value_serde": serdes.STRING}


class Forward(Processor):
    def init(self, context):
        self.context = context

    def process(self, record):
        self.context.forward(record)


class Tag(Processor):
    """Appends its name to the value and records the global call order."""

    calls: list = []

    def __init__(self, name):
        self.name = name

    def init(self, context):
        self.context = context

    def process(self, record):
        Tag.calls.append(self.name)
        self.context.forward(record.with_value(record.value + self.name))


def test_depth_first_forward_in_child_insertion_order():
    Tag.calls = []
    t = (Topology().add_source("src", ["in"], **S)
         .add_processor("A", lambda: Tag("A"), "src")
         .add_processor("B", lambda: Tag("B"), "src")
         .add_processor("A1", lambda: Tag("1"), "A")
         .add_sink("outA", "out", "A1", **S)
         .add_sink("outB", "out", "B", **S))
    with TopologyTestDriver(t) as d:
        d.create_input_topic("in", **S).pipe_input("k", "v", timestamp=7)
        out = d.create_output_topic("out", **S).read_records_to_list()
    assert Tag.calls == ["A", "1", "B"]
    assert [(r.key, r.value, r.timestamp) for r in out] == [("k", "vA1", 7), ("k", "vB", 7)]


class Router(Processor):
    def init(self, context):
        self.context = context

    def process(self, record):
        self.context.forward(record, record.value)


def router_topology():
    return (Topology().add_source("src", ["in"], **S).add_processor("router", Router, "src")
            .add_sink("left", "left", "router", **S).add_sink("right", "right", "router", **S))


def test_forward_to_named_child():
    with TopologyTestDriver(router_topology()) as d:
        inp = d.create_input_topic("in", **S)
        inp.pipe_input("a", "left", 1)
        inp.pipe_input("b", "right", 2)
        assert d.create_output_topic("left", **S).read_key_values_to_list() == [("a", "left")]
        assert d.create_output_topic("right", **S).read_key_values_to_list() == [("b", "right")]


def test_forward_to_unknown_child_fails_naming_it():
    with TopologyTestDriver(router_topology()) as d:
        with pytest.raises(ProcessingError, match="Unknown downstream node: nowhere") as info:
            d.create_input_topic("in", **S).pipe_input("a", "nowhere", 1)
    assert info.value.node == "router" and info.value.topic == "in" and info.value.offset == 0


class Boom(Processor):
    def init(self, context):
        self.context = context

    def process(self, record):
        if record.value == "bad":
            raise RuntimeError("boom")
        self.context.forward(record)


def fanout_with_failing_branch():
    return (Topology().add_source("src", ["in"], **S).add_processor("fwd", Forward, "src")
            .add_processor("boom", Boom, "fwd").add_sink("k1", "out1", "boom", **S)
            .add_sink("k2", "out2", "fwd", **S))


def test_processing_error_fails_with_location_by_default():
    with TopologyTestDriver(fanout_with_failing_branch()) as d:
        inp = d.create_input_topic("in", **S)
        inp.pipe_input("a", "ok", 1)
        with pytest.raises(ProcessingError) as info:
            inp.pipe_input("b", "bad", 2)
    e = info.value
    assert (e.node, e.task_id, e.topic, e.partition, e.offset) == ("boom", "0_0", "in", 0, 1)
    assert "processor 'boom'" in str(e) and "offset 1" in str(e)
    assert isinstance(e.__cause__, RuntimeError)


def test_processing_error_continue_drops_only_the_failing_subtree():
    with TopologyTestDriver(fanout_with_failing_branch(), {"processing.exception.handler": "continue"}) as d:
        inp = d.create_input_topic("in", **S)
        inp.pipe_input("a", "bad", 1)
        inp.pipe_input("b", "ok", 2)
        assert d.create_output_topic("out1", **S).read_values_to_list() == ["ok"]
        assert d.create_output_topic("out2", **S).read_values_to_list() == ["bad", "ok"]


def test_custom_processing_handler_sees_context():
    seen = []

    def handler(ctx, record, exc):
        seen.append((ctx.processor_node_id, ctx.topic, ctx.offset, record.value, str(exc)))
        return HandlerResponse.CONTINUE

    with TopologyTestDriver(fanout_with_failing_branch(), {"processing.exception.handler": handler}) as d:
        d.create_input_topic("in", **S).pipe_input("a", "bad", 1)
    assert seen == [("boom", "in", 0, "bad", "boom")]


def int_topology():
    return (Topology().add_source("src", ["in"], key_serde=serdes.STRING, value_serde=serdes.INT64)
            .add_processor("fwd", Forward, "src").add_sink("sink", "out", "fwd", key_serde=serdes.STRING,
                                                             value_serde=serdes.INT64))


def test_deserialization_error_fails_naming_topic_and_value():
    with TopologyTestDriver(int_topology()) as d:
        bad = d.create_input_topic("in", key_serde=serdes.STRING, value_serde=serdes.STRING)
        with pytest.raises(DeserializationError) as info:
            bad.pipe_input("k", "not-8-bytes", 1)
    e = info.value
    assert (e.topic, e.partition, e.offset, e.is_key) == ("in", 0, 0, False)
    assert "value" in str(e) and "'in'" in str(e)


def test_deserialization_log_and_continue_with_dead_letter_topic(caplog):
    config = {"deserialization.exception.handler": "log_and_continue",
              "errors.dead.letter.queue.topic.name": "dlq"}
    with TopologyTestDriver(int_topology(), config) as d:
        raw = d.create_input_topic("in", key_serde=serdes.STRING, value_serde=serdes.BYTES)
        with caplog.at_level(logging.WARNING, logger="kstreams.task"):
            raw.pipe_input("bad", b"xyz", 1)
            raw.pipe_input("good", serdes.INT64.serialize(5), 2)
        assert d.create_output_topic("out", key_serde=serdes.STRING, value_serde=serdes.INT64) \
            .read_key_values_to_list() == [("good", 5)]
        dead = d.create_output_topic("dlq", key_serde=serdes.STRING, value_serde=serdes.BYTES).read_records_to_list()
    assert len(dead) == 1 and dead[0].key == "bad" and dead[0].value == b"xyz"
    headers = dict(dead[0].headers)
    assert headers["__streams.errors.topic"] == b"in" and headers["__streams.errors.offset"] == b"0"
    assert "deserialization error" in caplog.text


def passthrough(**source_kwargs):
    return (Topology().add_source("src", ["in"], **S, **source_kwargs).add_processor("fwd", Forward, "src")
            .add_sink("sink", "out", "fwd", **S))


def test_negative_timestamp_fails_by_default():
    with TopologyTestDriver(passthrough()) as d:
        inp = d.create_input_topic("in", **S)
        with pytest.raises(ValueError):
            inp.pipe_input("k", "v", -5)
        # as in Kafka Streams, the head record is timestamped when it is buffered
        with pytest.raises(TimestampError, match="offset 0 has invalid \\(negative\\) timestamp -5"):
            d._enqueue("in", b"k", b"v", -5, (), None)


def test_log_and_skip_and_partition_time_extractors():
    with TopologyTestDriver(passthrough(timestamp_extractor=LogAndSkipOnInvalidTimestamp)) as d:
        d._enqueue("in", b"k", b"dropped", -1, (), None)
        d._enqueue("in", b"k", b"kept", 3, (), None)
        d._complete_all_processable_work()
        assert d.create_output_topic("out", **S).read_values_to_list() == ["kept"]
    with TopologyTestDriver(passthrough(timestamp_extractor=UsePartitionTimeOnInvalidTimestamp())) as d:
        d.create_input_topic("in", **S).pipe_input("k", "first", 40)
        d._enqueue("in", b"k", b"second", -1, (), None)
        d._complete_all_processable_work()
        out = d.create_output_topic("out", **S).read_records_to_list()
        assert [(r.value, r.timestamp) for r in out] == [("first", 40), ("second", 40)]


def test_custom_extractor_reads_value():
    class FromValue:
        def extract(self, record, partition_time):
            return int(record.value.split("@")[1])

    with TopologyTestDriver(passthrough(timestamp_extractor=FromValue())) as d:
        d.create_input_topic("in", **S).pipe_input("k", "x@123", 1)
        assert d.create_output_topic("out", **S).read_record().timestamp == 123


class Meta(Processor):
    def init(self, context):
        self.context = context

    def process(self, record):
        m = self.context.record_metadata()
        self.context.forward(record.with_value(
            f"{m.topic}/{m.partition}/{m.offset}/{self.context.current_stream_time_ms()}/{self.context.task_id}"))


def test_record_metadata_stream_time_and_task_id():
    t = Topology().add_source("src", ["in"], **S).add_processor("m", Meta, "src").add_sink("k", "out", "m", **S)
    with TopologyTestDriver(t) as d:
        inp = d.create_input_topic("in", **S)
        inp.pipe_input("a", "", 10)
        inp.pipe_input("a", "", 5)
        assert d.create_output_topic("out", **S).read_values_to_list() == ["in/0/0/10/0_0", "in/0/1/10/0_0"]


class Snoop(Processor):
    def init(self, context):
        self.context = context

    def process(self, record):
        self.context.get_state_store("private")


def test_store_access_only_when_connected():
    t = (Topology().add_source("src", ["in"], **S).add_processor("owner", Forward, "src")
         .add_processor("snoop", Snoop, "src")
         .add_state_store(Stores.key_value_store_builder(Stores.in_memory_key_value_store("private")), "owner"))
    with TopologyTestDriver(t) as d:
        with pytest.raises(ProcessingError) as info:
            d.create_input_topic("in", **S).pipe_input("a", "b", 1)
    assert isinstance(info.value.__cause__, StateStoreError)
    assert "Processor snoop has no access to StateStore private" in str(info.value.__cause__)


def test_two_sources_merged_by_timestamp_and_idling():
    t = (Topology().add_source("s1", ["a"], **S).add_source("s2", ["b"], **S)
         .add_processor("fwd", Forward, "s1", "s2").add_sink("k", "out", "fwd", **S))
    with TopologyTestDriver(t, {"max.task.idle.ms": 100}, initial_wall_clock_time_ms=0) as d:
        a, b = d.create_input_topic("a", **S), d.create_input_topic("b", **S)
        out = d.create_output_topic("out", **S)
        a.pipe_input("k", "a30", 30)
        a.pipe_input("k", "a40", 40)
        assert out.is_empty()  # waiting for topic b
        b.pipe_input("k", "b10", 10)
        assert out.read_values_to_list() == ["b10"]  # the smallest head first; then b is empty again
        d.advance_wall_clock_time(99)
        assert out.is_empty()
        d.advance_wall_clock_time(1)  # max.task.idle.ms passed: enforced processing
        assert out.read_values_to_list() == ["a30", "a40"]


def test_repartition_through_topic_and_multi_partition_tasks():
    class Rekey(Processor):
        def init(self, context):
            self.context = context

        def process(self, record):
            self.context.forward(record.with_key(record.value))

    class Count(Processor):
        def init(self, context):
            self.context = context
            self.store = context.get_state_store("counts")

        def process(self, record):
            n = (self.store.get(record.key) or 0) + 1
            self.store.put(record.key, n)
            self.context.forward(record.with_value(f"{n}@{self.context.task_id}"))

    t = (Topology().add_source("src", ["in"], **S).add_processor("rekey", Rekey, "src")
         .add_sink("to-mid", "mid", "rekey", **S)
         .add_source("mid-src", ["mid"], **S).add_processor("count", Count, "mid-src")
         .add_state_store(Stores.key_value_store_builder(Stores.in_memory_key_value_store("counts"), serdes.STRING,
                                                         serdes.INT64), "count")
         .add_sink("out", "out", "count", **S))
    with TopologyTestDriver(t, {"application.id": "app"}) as d:
        inp = d.create_input_topic("in", **S, partitions=2)
        d.create_input_topic("mid", **S, partitions=3)
        assert sorted(d.tasks()) == ["0_0", "0_1", "1_0", "1_1", "1_2"]
        for i, word in enumerate(["x", "y", "x", "z", "x"]):
            inp.pipe_input(f"k{i}", word, i)
        result = d.create_output_topic("out", **S).read_key_values_to_list()
        assert [k for k, _ in result] == ["x", "y", "x", "z", "x"]
        assert [v.split("@")[0] for _, v in result] == ["1", "1", "2", "1", "3"]
        # each key is counted by exactly one task, chosen by murmur2 of the key bytes
        from kstreams._core import murmur2_partition
        for key, value in result:
            assert value.split("@")[1] == f"1_{murmur2_partition(key.encode(), 3)}"
        assert "app-counts-changelog" in d.produced_topic_names()
        stores = [d.get_key_value_store("counts", partition=p) for p in range(3)]
        assert sum(s.get("x") or 0 for s in stores) == 3


def test_unknown_topic_and_empty_output():
    with TopologyTestDriver(passthrough()) as d:
        with pytest.raises(ValueError, match="Unknown topic: nope"):
            d.create_input_topic("nope")
        out = d.create_output_topic("out", **S)
        with pytest.raises(NoSuchElementError, match="Uninitialized topic: out"):
            out.read_value()
        d.create_input_topic("in", **S).pipe_input("k", "v", 1)
        assert out.get_queue_size() == 1 and out.read_key_value() == ("k", "v")
        with pytest.raises(NoSuchElementError, match="Empty topic: out"):
            out.read_value()


def test_config_mistakes_fail_at_construction():
    with pytest.raises(ConfigError, match="'num.stream.threads'"):
        TopologyTestDriver(passthrough(), {"num.stream.threads": "two"})
    with pytest.raises(ConfigError, match="'no.such.key'"):
        TopologyTestDriver(passthrough(), {"no.such.key": 1})
    with pytest.raises(ConfigError, match="'processing.guarantee'"):
        TopologyTestDriver(passthrough(), {"processing.guarantee": "exactly_once"})


def test_shared_processor_instance_is_rejected():
    shared = Forward()
    t = Topology().add_source("src", ["in"], **S).add_processor("a", lambda: shared, "src") \
        .add_processor("b", lambda: shared, "src")
    with pytest.raises(Exception, match="shared"):
        TopologyTestDriver(t)


def test_headers_pass_through_to_sink():
    with TopologyTestDriver(passthrough()) as d:
        d.create_input_topic("in", **S).pipe_input("k", "v", 1, headers=[("h", b"1"), ("h", b"2")])
        assert d.create_output_topic("out", **S).read_record().headers == (("h", b"1"), ("h", b"2"))


def test_punctuation_record_metadata_and_forward():
    class Tick(Processor):
        def init(self, context):
            self.context = context
            context.schedule(10, PunctuationType.WALL_CLOCK_TIME, self.tick)

        def tick(self, ts):
            m = self.context.record_metadata()
            self.context.forward(Record("tick", f"{m.topic}/{m.partition}/{m.offset}", ts))

        def process(self, record):
            pass

    t = Topology().add_source("src", ["in"], **S).add_processor("tick", Tick, "src").add_sink("k", "out", "tick", **S)
    with TopologyTestDriver(t, initial_wall_clock_time_ms=1000) as d:
        d.advance_wall_clock_time(10)
        r = d.create_output_topic("out", **S).read_record()
    assert (r.key, r.value, r.timestamp) == ("tick", "None/-1/-1", 1010)
