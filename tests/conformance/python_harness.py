"""Run a scenario through kstreams' ``TopologyTestDriver`` and observe it like the Java harness.

:func:`run_scenario` returns a document of the same shape as the Java harness prints (see
``java/src/main/java/kstreams/conformance/ScenarioRunner.java``): ``name``, ``describe``,
``reads``, ``outputs`` and ``error``, so the two can be compared field by field. Only ``error``
differs in content: its ``chain`` lists Python exception classes and messages (plus ``mro``).
"""

from __future__ import annotations

from typing import Any

from kstreams import Stores, Topology, serdes
from kstreams.testing import TopologyTestDriver

from .scenarios import JsonDict, Scenario
from .vocabulary import supplier

STRING = serdes.STRING


def apply_op(topology: Topology, op: JsonDict) -> None:
    """Apply one scenario ``topology`` operation (insertion order matters for describe())."""
    kind = op["op"]
    if kind == "source":
        topology.add_source(op["name"], op["topics"], key_serde=STRING, value_serde=STRING)
    elif kind == "processor":
        topology.add_processor(op["name"], supplier(op["name"], op["kind"], op.get("params", {})), *op["parents"])
    elif kind == "sink":
        topology.add_sink(op["name"], op["topic"], *op["parents"], key_serde=STRING, value_serde=STRING)
    elif kind == "store":
        builder = Stores.key_value_store_builder(Stores.in_memory_key_value_store(op["name"]), STRING, STRING)
        topology.add_state_store(builder, *op["processors"])
    elif kind == "connect":
        topology.connect_processor_and_state_stores(op["processor"], *op["stores"])
    else:
        raise ValueError(f"unknown topology op: {kind}")


def _header_pairs(headers: Any) -> list[list[str | None]]:
    return [[name, None if value is None else bytes(value).decode("utf-8")] for name, value in headers or ()]


def _records(topic: Any, with_headers: bool) -> list[list[Any]]:
    out = []
    for r in topic.read_records_to_list():
        row: list[Any] = [r.key, r.value, r.timestamp]
        if with_headers:
            row.append(_header_pairs(r.headers))
        out.append(row)
    return out


def error_document(phase: str, index: int, error: BaseException) -> JsonDict:
    """The ``error`` field: ``phase``, ``index``, ``chain`` of ``[qualified class, message]`` of
    ``error`` and its causes/contexts (as Java prints it), and ``mro``: the class names of each link's
    class hierarchy, to check the kind of a kstreams error.
    """
    chain: list[list[str]] = []
    mro: list[list[str]] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        cls = type(current)
        chain.append([f"{cls.__module__}.{cls.__qualname__}", str(current)])
        mro.append([c.__qualname__ for c in cls.__mro__])
        current = current.__cause__ or current.__context__
    return {"phase": phase, "index": index, "chain": chain, "mro": mro}


def run_scenario(scenario: Scenario) -> JsonDict:
    """Build the topology, run the steps through kstreams and return the observations."""
    data = scenario.data
    with_headers = bool(data.get("record_headers", False))
    result: JsonDict = {"name": scenario.name, "describe": None, "reads": [], "outputs": {}, "error": None}
    topology = Topology()
    for index, op in enumerate(data["topology"]):
        try:
            apply_op(topology, op)
        except Exception as exc:  # a failing operation is an observation
            result["error"] = error_document("topology", index, exc)
            return result
    result["describe"] = str(topology.describe())
    steps: list[JsonDict] = data.get("steps", [])
    outputs: list[str] = data.get("outputs", [])
    if not steps and not outputs and "expect_error" not in data:
        return result  # describe-only scenario
    config: dict[str, Any] = {"application.id": "conf", **data.get("config", {})}
    try:
        driver = TopologyTestDriver(topology, config, initial_wall_clock_time_ms=data.get("initial_wall_clock_ms", 0))
    except Exception as exc:  # e.g. a processor's init() failed
        result["error"] = error_document("driver", 0, exc)
        return result
    try:
        inputs: dict[str, Any] = {}
        outs: dict[str, Any] = {}

        def output(topic: str) -> Any:
            if topic not in outs:
                outs[topic] = driver.create_output_topic(topic, key_serde=STRING, value_serde=STRING)
            return outs[topic]

        for index, step in enumerate(steps):
            try:
                op = step["op"]
                if op == "pipe":
                    topic = step["topic"]
                    if topic not in inputs:
                        inputs[topic] = driver.create_input_topic(topic, key_serde=STRING, value_serde=STRING)
                    headers = [
                        (name, None if value is None else value.encode("utf-8"))
                        for name, value in step.get("headers", [])
                    ]
                    inputs[topic].pipe_input(
                        step.get("key"), step.get("value"), timestamp=step["timestamp"], headers=headers or None
                    )
                elif op == "advance":
                    driver.advance_wall_clock_time(step["ms"])
                elif op == "read":
                    records = _records(output(step["topic"]), with_headers)
                    result["reads"].append({"step": index, "topic": step["topic"], "records": records})
                else:
                    raise ValueError(f"unknown step op: {op}")
            except Exception as exc:  # any failure of a step is an observation
                result["error"] = error_document("steps", index, exc)
                break
        for topic in outputs:
            result["outputs"][topic] = _records(output(topic), with_headers)
    finally:
        try:
            driver.close()
        except Exception:  # closing after a failed step may fail again
            pass
    return result
