import importlib.machinery

import kstreams
import kstreams._core as core


def test_core_is_compiled():
    assert kstreams.COMPILED is True
    for name in ("record", "punctuation", "partition_group", "collector", "nodes", "task"):
        module = getattr(core, name)
        assert isinstance(module.__loader__, importlib.machinery.ExtensionFileLoader), name
