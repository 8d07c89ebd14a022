import pytest

from kstreams import Processor, Stores, Topology
from kstreams.description import java_hashset_order, java_string_hash
from kstreams.errors import TopologyError


class Noop(Processor):
    def process(self, record):
        pass


def store(name):
    return Stores.key_value_store_builder(Stores.in_memory_key_value_store(name))


@pytest.mark.parametrize("build,message", [
    (lambda t: t.add_source("s", []), "Invalid topology: topics cannot be empty"),
    (lambda t: t.add_source("s", ["a"]).add_source("s", ["b"]), "Invalid topology: Processor s is already added."),
    (lambda t: t.add_source("s", ["a"]).add_source("s2", ["a"]),
     "Invalid topology: Topic a has already been registered by another source."),
    (lambda t: t.add_source("s", ["a"]).add_sink("k", "out"), "Invalid topology: predecessorNames cannot be empty"),
    (lambda t: t.add_processor("p", Noop), "Invalid topology: predecessorNames cannot be empty"),
    (lambda t: t.add_processor("p", Noop, "p"), "Invalid topology: Parent node p is unknown (self-reference)."),
    (lambda t: t.add_processor("p", Noop, "x"), "Invalid topology: Parent node x is unknown."),
    (lambda t: t.add_sink("k", "out", "x"), "Invalid topology: Parent node x is unknown."),
    (lambda t: t.add_source("s", ["a"]).add_sink("k", "o", "s").add_sink("k2", "o", "k"),
     "Invalid topology: Sink k cannot be used a parent."),
    (lambda t: t.add_source("s", ["a"]).add_state_store(store("st")).add_state_store(store("st")),
     "Invalid topology: A different StateStore has already been added with the name st"),
    (lambda t: t.add_source("s", ["a"]).add_processor("p", Noop, "s").connect_processor_and_state_stores("p", "st"),
     "Invalid topology: StateStore st is not added yet."),
    (lambda t: t.add_state_store(store("st"), "p"), "Invalid topology: Processor p is not added yet."),
    (lambda t: t.add_source("s", ["a"]).add_state_store(store("st"), "s"),
     "Invalid topology: State stores cannot be connect to sources or sinks."),
    (lambda t: t.add_source("s", ["a"]).add_processor("p", Noop, "s").connect_processor_and_state_stores("p"),
     "Invalid topology: Must provide at least one state store name."),
])
def test_validation_messages(build, message):
    with pytest.raises(TopologyError) as info:
        build(Topology())
    assert str(info.value) == message


def test_same_builder_may_be_added_twice():
    b = store("st")
    t = Topology().add_source("s", ["a"]).add_processor("p", Noop, "s").add_state_store(b, "p").add_state_store(b)
    assert list(t.store_builders) == ["st"]


def test_topology_without_sources_is_not_runnable():
    with pytest.raises(TopologyError, match="must subscribe to at least one source topic"):
        Topology().validate_runnable()


def test_subtopologies_union_edges_and_shared_stores_not_topics():
    t = (Topology()
         .add_source("s1", ["a"]).add_processor("p1", Noop, "s1").add_sink("k1", "mid", "p1")
         .add_source("s2", ["mid"]).add_processor("p2", Noop, "s2")
         .add_source("s3", ["c"]).add_processor("p3", Noop, "s3")
         .add_state_store(store("shared"), "p2", "p3"))
    subs = t.subtopologies()
    assert [s.node_names for s in subs] == [["s1", "p1", "k1"], ["s2", "p2", "s3", "p3"]]
    assert subs[1].source_topics == ["mid", "c"]
    assert subs[0].sink_topics == ["mid"]
    assert subs[1].store_names == ["shared"]


def test_describe_matches_kafka_streams_text():
    t = (Topology()
         .add_source("Source", ["input-topic"])
         .add_processor("Process", Noop, "Source")
         .add_state_store(store("Counts"), "Process")
         .add_sink("Sink", "counts-topic", "Process")
         .add_source("Source2", ["counts-topic"])
         .add_processor("Printer", Noop, "Source2"))
    assert str(t.describe()) == (
        "Topologies:\n"
        "   Sub-topology: 0\n"
        "    Source: Source (topics: [input-topic])\n"
        "      --> Process\n"
        "    Processor: Process (stores: [Counts])\n"
        "      --> Sink\n"
        "      <-- Source\n"
        "    Sink: Sink (topic: counts-topic)\n"
        "      <-- Process\n"
        "\n"
        "  Sub-topology: 1\n"
        "    Source: Source2 (topics: [counts-topic])\n"
        "      --> Printer\n"
        "    Processor: Printer (stores: [])\n"
        "      --> none\n"
        "      <-- Source2\n"
        "\n")


def test_describe_orders_by_subtree_size_then_name():
    t = (Topology().add_source("src", ["t"]).add_processor("b", Noop, "src").add_processor("a", Noop, "src")
         .add_processor("c", Noop, "b"))
    text = str(t.describe())
    assert text.index("Processor: b") < text.index("Processor: a") < text.index("Processor: c")
    # Java fills the successor TreeSet while sizes still grow: "a" and "b" were both size 1 when
    # inserted under "src", so they stay in name order even though "b" grows later.
    assert "Source: src (topics: [t])\n      --> a, b\n" in text


def test_java_hash_helpers():
    assert java_string_hash("") == 0
    assert java_string_hash("a") == 97
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("polygenelubricants") == -(2**31)
    # "Aa" and "BB" collide in Java: same bucket, insertion order kept
    assert java_hashset_order(["BB", "Aa"]) == ["BB", "Aa"]
    assert java_hashset_order(["Aa", "BB"]) == ["Aa", "BB"]
    assert java_hashset_order(["b", "a"]) == ["a", "b"]
