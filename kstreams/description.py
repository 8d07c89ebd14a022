"""TopologyDescription: what ``Topology.describe()`` returns, printed exactly as Kafka Streams does.

``str(topology.describe())`` is byte-identical to Java's ``TopologyDescription.toString()`` for
the same topology. Java's text depends on two container orders, which are reproduced here:

* topic and store names are printed in ``java.util.HashSet`` iteration order (bucket of the
  spread ``String.hashCode``, then insertion order within a bucket);
* predecessor and successor lists are ``TreeSet``s ordered by "larger sub-tree first, then
  name", filled while sub-tree sizes are still growing, so their order depends on the red-black
  tree shape at each insertion; :class:`_JavaTreeSet` replays those insertions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

__all__ = ["TopologyDescription", "SubtopologyDescription", "NodeDescription"]


# -- Java container orders ------------------------------------------------------------------------

def java_string_hash(s: str) -> int:
    """Java's ``String.hashCode()`` (over UTF-16 code units, 32-bit signed)."""
    data = s.encode("utf-16-be")
    h = 0
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def _bucket(s: str, capacity: int) -> int:
    h = java_string_hash(s) & 0xFFFFFFFF
    return (h ^ (h >> 16)) & (capacity - 1)


def _table_size_for(n: int) -> int:
    cap = 1
    while cap < n:
        cap <<= 1
    return cap


def java_hashset_order(names: Iterable[str], *, copy: bool = False) -> list[str]:
    """Iteration order of a ``java.util.HashSet<String>`` filled with ``names`` in that order.

    ``copy=False``: a ``new HashSet<>()`` growing as elements are added (capacity 16, doubling
    past a 0.75 load). ``copy=True``: ``new HashSet<>(collection)``, sized up front.
    """
    unique: list[str] = []
    seen: set[str] = set()
    for n in names:
        if n not in seen:
            seen.add(n)
            unique.append(n)
    if copy:
        capacity = _table_size_for(max(int(len(unique) / 0.75) + 1, 16))
    else:
        capacity = 16
        while len(unique) > capacity * 0.75:
            capacity <<= 1
    indexed = sorted(range(len(unique)), key=lambda i: (_bucket(unique[i], capacity), i))
    return [unique[i] for i in indexed]


def _java_set_str(names: Sequence[str]) -> str:
    return "[" + ", ".join(names) + "]"


def _java_compare_str(a: str, b: str) -> int:
    ea, eb = a.encode("utf-16-be"), b.encode("utf-16-be")
    return (ea > eb) - (ea < eb)


class _RBNode:
    __slots__ = ("key", "left", "right", "parent", "red")

    def __init__(self, key: NodeDescription, parent: _RBNode | None) -> None:
        self.key = key
        self.left: _RBNode | None = None
        self.right: _RBNode | None = None
        self.parent = parent
        self.red = False


class _JavaTreeSet:
    """A red-black tree with the insertion algorithm of ``java.util.TreeMap``.

    The comparator is evaluated at insertion time, so when the ordering key of elements changes
    later, the in-order sequence is the one Java would print.
    """

    def __init__(self, compare: Callable[[NodeDescription, NodeDescription], int]) -> None:
        self._root: _RBNode | None = None
        self._compare = compare

    def add(self, key: NodeDescription) -> None:
        t = self._root
        if t is None:
            self._root = _RBNode(key, None)
            return
        while True:
            parent = t
            c = self._compare(key, t.key)
            if c < 0:
                t = t.left
            elif c > 0:
                t = t.right
            else:
                return
            if t is None:
                break
        node = _RBNode(key, parent)
        if c < 0:
            parent.left = node
        else:
            parent.right = node
        self._fix_after_insertion(node)

    def __iter__(self) -> Iterator[NodeDescription]:
        stack: list[_RBNode] = []
        t = self._root
        while stack or t is not None:
            while t is not None:
                stack.append(t)
                t = t.left
            t = stack.pop()
            yield t.key
            t = t.right

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @staticmethod
    def _is_red(n: _RBNode | None) -> bool:
        return n is not None and n.red

    def _rotate_left(self, p: _RBNode) -> None:
        r = p.right
        assert r is not None
        p.right = r.left
        if r.left is not None:
            r.left.parent = p
        r.parent = p.parent
        if p.parent is None:
            self._root = r
        elif p.parent.left is p:
            p.parent.left = r
        else:
            p.parent.right = r
        r.left = p
        p.parent = r

    def _rotate_right(self, p: _RBNode) -> None:
        child = p.left
        assert child is not None
        p.left = child.right
        if child.right is not None:
            child.right.parent = p
        child.parent = p.parent
        if p.parent is None:
            self._root = child
        elif p.parent.right is p:
            p.parent.right = child
        else:
            p.parent.left = child
        child.right = p
        p.parent = child

    def _fix_after_insertion(self, x: _RBNode) -> None:
        x.red = True
        while x is not self._root and x.parent is not None and x.parent.red:
            parent = x.parent
            grand = parent.parent
            assert grand is not None
            if parent is grand.left:
                uncle = grand.right
                if self._is_red(uncle):
                    parent.red = False
                    assert uncle is not None
                    uncle.red = False
                    grand.red = True
                    x = grand
                else:
                    if x is parent.right:
                        x = parent
                        self._rotate_left(x)
                    assert x.parent is not None and x.parent.parent is not None
                    x.parent.red = False
                    x.parent.parent.red = True
                    self._rotate_right(x.parent.parent)
            else:
                uncle = grand.left
                if self._is_red(uncle):
                    parent.red = False
                    assert uncle is not None
                    uncle.red = False
                    grand.red = True
                    x = grand
                else:
                    if x is parent.left:
                        x = parent
                        self._rotate_right(x)
                    assert x.parent is not None and x.parent.parent is not None
                    x.parent.red = False
                    x.parent.parent.red = True
                    self._rotate_left(x.parent.parent)
        assert self._root is not None
        self._root.red = False


def _node_compare(a: NodeDescription, b: NodeDescription) -> int:
    if a is b:
        return 0
    if a.size != b.size:
        return b.size - a.size
    return _java_compare_str(a.name, b.name)


# -- the description ------------------------------------------------------------------------------

@dataclass(eq=False)
class NodeDescription:
    """One node: ``kind`` is ``"source"``, ``"processor"`` or ``"sink"``.

    ``topics`` (sources, in printed order), ``stores`` (processors, in printed order), ``topic``
    (sinks with a static topic) or ``extractor`` (sinks with a topic-name extractor).
    """

    name: str
    kind: str
    topics: list[str] = field(default_factory=list)
    stores: list[str] = field(default_factory=list)
    topic: str | None = None
    extractor: object = None
    size: int = 1

    def __post_init__(self) -> None:
        self._predecessors = _JavaTreeSet(_node_compare)
        self._successors = _JavaTreeSet(_node_compare)

    @property
    def predecessors(self) -> list[NodeDescription]:
        """Parents, in printed order."""
        return list(self._predecessors)

    @property
    def successors(self) -> list[NodeDescription]:
        """Children, in printed order."""
        return list(self._successors)

    def __str__(self) -> str:
        succ = _names(self._successors)
        pred = _names(self._predecessors)
        if self.kind == "source":
            return f"Source: {self.name} (topics: {_java_set_str(self.topics)})\n      --> {succ}"
        if self.kind == "processor":
            return (f"Processor: {self.name} (stores: {_java_set_str(self.stores)})\n      --> {succ}\n"
                    f"      <-- {pred}")
        if self.topic is not None:
            return f"Sink: {self.name} (topic: {self.topic})\n      <-- {pred}"
        return f"Sink: {self.name} (extractor class: {self.extractor!r})\n      <-- {pred}"

    def __repr__(self) -> str:
        return f"NodeDescription({self.kind} {self.name!r})"


def _names(nodes: Iterable[NodeDescription]) -> str:
    names = [n.name for n in nodes]
    return ", ".join(names) if names else "none"


def _update_size(node: NodeDescription, delta: int) -> None:
    node.size += delta
    for parent in node._predecessors:
        _update_size(parent, delta)


@dataclass
class SubtopologyDescription:
    """A sub-topology: its id and nodes (printed larger sub-tree first, then by name)."""

    id: int
    nodes: list[NodeDescription]

    def __str__(self) -> str:
        return f"Sub-topology: {self.id}\n" + "".join(f"    {n}\n" for n in self.nodes) + "\n"


@dataclass
class TopologyDescription:
    """The sub-topologies of a topology; ``str()`` gives Kafka Streams' text."""

    subtopologies: list[SubtopologyDescription]

    def __str__(self) -> str:
        return "Topologies:\n " + "".join(f"  {s}" for s in self.subtopologies)


def describe_subtopology(
    sub_id: int,
    node_names: Sequence[str],
    make_node: Callable[[str], NodeDescription],
    parents_of: Callable[[str], Sequence[str]],
) -> SubtopologyDescription:
    """Build one sub-topology's description, connecting nodes in the order Java does.

    ``node_names`` are the sub-topology's nodes in topology insertion order.
    """
    group_order = java_hashset_order(node_names)
    map_order = java_hashset_order(group_order)
    by_name = {name: make_node(name) for name in map_order}
    for name in map_order:
        node = by_name[name]
        for parent_name in parents_of(name):
            parent = by_name[parent_name]
            node._predecessors.add(parent)
            parent._successors.add(node)
            _update_size(parent, node.size)
    ordered = sorted(by_name.values(), key=lambda n: (-n.size, n.name.encode("utf-16-be")))
    return SubtopologyDescription(sub_id, ordered)
