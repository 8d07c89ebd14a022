"""The compiled record loop of kstreams (Cython, pure-Python mode).

Each module here is plain Python that Cython compiles with the declarations of its ``.pxd``.
``COMPILED`` tells whether the compiled extension modules are in use. Setting the environment
variable ``KSTREAMS_PURE_PYTHON=1`` before the first import loads the same sources as plain
Python instead; the benchmarks use it to measure what compilation buys. It is not a fallback:
the package requires the compiled build, and its tests fail without it.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path

_MODULES = ("record", "punctuation", "partition_group", "collector", "nodes", "task", "kvstore", "codecs")


def _load_pure_python() -> None:
    here = Path(__file__).parent
    for name in _MODULES:
        full = f"{__name__}.{name}"
        spec = importlib.util.spec_from_file_location(full, here / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        spec.loader.exec_module(module)
        setattr(sys.modules[__name__], name, module)


if os.environ.get("KSTREAMS_PURE_PYTHON") == "1":
    _load_pure_python()

_loaded = [importlib.import_module(f"{__name__}.{name}") for name in _MODULES]

COMPILED: bool = all(isinstance(m.__loader__, importlib.machinery.ExtensionFileLoader) for m in _loaded)
"""True when every module of the record loop is a compiled extension."""

from kstreams._core.collector import RecordCollector, murmur2, murmur2_partition  # noqa: E402
from kstreams._core.nodes import ProcessorContextImpl, ProcessorNode, RecordContext, SinkNode, SourceNode  # noqa: E402
from kstreams._core.partition_group import ConsumerRecord, PartitionGroup, RecordQueue, group_messages  # noqa: E402
from kstreams._core.punctuation import PunctuationQueue, PunctuationSchedule, PunctuationType  # noqa: E402
from kstreams._core.record import Record, RecordMetadata, make_record, normalize_headers  # noqa: E402
from kstreams._core.task import StreamTask  # noqa: E402

__all__ = [
    "COMPILED",
    "ConsumerRecord",
    "PartitionGroup",
    "ProcessorContextImpl",
    "ProcessorNode",
    "PunctuationQueue",
    "PunctuationSchedule",
    "PunctuationType",
    "Record",
    "RecordCollector",
    "RecordContext",
    "RecordMetadata",
    "RecordQueue",
    "SinkNode",
    "SourceNode",
    "StreamTask",
    "group_messages",
    "make_record",
    "murmur2",
    "murmur2_partition",
    "normalize_headers",
]
