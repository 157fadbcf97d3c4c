"""Declared paths of a published service and the object tree they form."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from dbus_fast import Variant

from .codec import (
    INVALID,
    TextFormat,
    Value,
    coerce_value,
    format_text,
    wrap_as,
)

__all__ = ["BUSITEM", "PathSpec", "PathTree", "check_path"]

BUSITEM = "com.victronenergy.BusItem"

_SEGMENT = re.compile(r"[A-Za-z0-9_]+")
_DBUS_TYPES = frozenset("dixsbv")


def check_path(path: str) -> str:
    """Return ``path`` if it is a valid absolute D-Bus object path (not ``/``); else ValueError."""
    if not path.startswith("/") or path == "/" or path.endswith("/"):
        raise ValueError(f"invalid D-Bus path {path!r}: must start with '/' and not end with it")
    for seg in path[1:].split("/"):
        if not _SEGMENT.fullmatch(seg):
            raise ValueError(f"invalid D-Bus path {path!r}: bad segment {seg!r}")
    return path


@dataclass(frozen=True, slots=True)
class PathSpec:
    """How one path is published: D-Bus type, text, unit and write rules.

    ``dbus_type`` is ``d`` (float), ``i``/``x`` (int), ``s`` (str), ``b`` (bool) or ``v``
    (type follows the value). ``text`` is a printf format (``'%.0F W'``) or a callable.
    ``min``/``max`` bound written numbers and are answered by GetMin/GetMax;
    ``validator`` returns False to reject a written value.
    """

    dbus_type: str = "v"
    text: TextFormat = None
    unit: str = ""
    writable: bool = False
    validator: Callable[[Any], bool] | None = None
    min: float | None = None
    max: float | None = None
    default: Value = None
    description: str = ""
    max_length: int = 1024

    def __post_init__(self) -> None:
        """Reject unknown type letters and inverted bounds."""
        if self.dbus_type not in _DBUS_TYPES:
            raise ValueError(f"dbus_type must be one of {sorted(_DBUS_TYPES)}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is above max")


class Item:
    """One leaf: its current value plus cached wire forms."""

    __slots__ = ("_text", "_variant", "on_write", "path", "spec", "value")

    def __init__(
        self,
        path: str,
        spec: PathSpec,
        value: Value,
        on_write: Callable[[str, Any], bool] | None,
    ) -> None:
        """Create a leaf holding an already coerced value."""
        self.path = path
        self.spec = spec
        self.value = value
        self.on_write = on_write
        self._variant: Variant | None = None
        self._text: str | None = None

    def set(self, value: Value) -> bool:
        """Store a coerced value; True if it differs from the old one (type included)."""
        old = self.value
        if old == value and type(old) is type(value):
            return False
        self.value = value
        self._variant = None
        self._text = None
        return True

    def restyle(self, spec: PathSpec) -> None:
        """Switch to another spec; the value is re-coerced and the cached wire forms dropped."""
        self.spec = spec
        self.value = coerce_value(spec.dbus_type, self.value)
        self._variant = None
        self._text = None

    @property
    def variant(self) -> Variant:
        """The value as a variant (cached)."""
        v = self._variant
        if v is None:
            v = self._variant = wrap_as(self.spec.dbus_type, self.value)
        return v

    @property
    def text(self) -> str:
        """The value as text (cached)."""
        t = self._text
        if t is None:
            t = self._text = format_text(self.path, self.value, self.spec.text)
        return t


class PathTree:
    """Leaves by path plus the tree nodes (every prefix, and ``/``) they imply."""

    def __init__(self) -> None:
        """Start with only the root node."""
        self.items: dict[str, Item] = {}
        self._children: dict[str, set[str]] = {"/": set()}

    def add(
        self, path: str, spec: PathSpec, value: Any, on_write: Callable[..., bool] | None
    ) -> Item:
        """Add a leaf; raises ValueError for a bad or clashing path, TypeError for a bad value."""
        check_path(path)
        if path in self.items:
            raise ValueError(f"path {path} already exists")
        if path in self._children:
            raise ValueError(f"path {path} is already a tree node")
        parts = path[1:].split("/")
        prefix = ""
        for seg in parts[:-1]:
            prefix += "/" + seg
            if prefix in self.items:
                raise ValueError(f"path {path} would be below the leaf {prefix}")
        item = Item(path, spec, coerce_value(spec.dbus_type, value), on_write)
        self.items[path] = item
        node = "/"
        for seg in parts:
            self._children.setdefault(node, set()).add(seg)
            node = (node if node != "/" else "") + "/" + seg
        return item

    def remove(self, path: str) -> Item:
        """Remove a leaf and the nodes it leaves empty; raises KeyError if absent."""
        item = self.items.pop(path)
        node = path
        while node != "/":
            parent, _, name = node.rpartition("/")
            parent = parent or "/"
            kids = self._children.get(parent)
            if kids is not None:
                kids.discard(name)
                if kids or parent == "/":
                    break
                del self._children[parent]
            node = parent
        return item

    def is_node(self, path: str) -> bool:
        """True for ``/`` and every prefix of a leaf."""
        return path in self._children

    def children(self, path: str) -> list[str]:
        """Sorted child names of a node or leaf (a leaf has none)."""
        return sorted(self._children.get(path, ()))

    def leaves_under(self, node: str) -> Iterator[tuple[str, Item]]:
        """(path relative to ``node`` without leading slash, item) for every leaf below it."""
        prefix = "/" if node == "/" else node + "/"
        n = len(prefix)
        for path, item in self.items.items():
            if path.startswith(prefix):
                yield path[n:], item

    def introspect(self, path: str) -> str:
        """Introspection XML of a leaf, a node or ``/``."""
        leaf = path in self.items
        text_type = "s" if leaf else "v"
        lines = [
            '<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"',
            ' "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">',
            f'<node name="{path}">',
            ' <interface name="org.freedesktop.DBus.Introspectable">',
            '  <method name="Introspect"><arg direction="out" type="s"/></method>',
            " </interface>",
            f' <interface name="{BUSITEM}">',
            '  <method name="GetValue"><arg direction="out" type="v"/></method>',
            f'  <method name="GetText"><arg direction="out" type="{text_type}"/></method>',
        ]
        if leaf:
            lines += [
                '  <method name="SetValue"><arg direction="in" type="v"/>'
                '<arg direction="out" type="i"/></method>',
                '  <method name="GetMin"><arg direction="out" type="v"/></method>',
                '  <method name="GetMax"><arg direction="out" type="v"/></method>',
                '  <method name="GetDefault"><arg direction="out" type="v"/></method>',
                '  <method name="GetDescription"><arg direction="in" type="s"/>'
                '<arg direction="in" type="i"/><arg direction="out" type="s"/></method>',
                '  <signal name="PropertiesChanged"><arg type="a{sv}"/></signal>',
            ]
        if path == "/":
            lines += [
                '  <method name="GetItems"><arg direction="out" type="a{sa{sv}}"/></method>',
                '  <signal name="ItemsChanged"><arg type="a{sa{sv}}"/></signal>',
            ]
        lines.append(" </interface>")
        lines += [f' <node name="{c}"/>' for c in self.children(path)]
        lines.append("</node>")
        return "\n".join(lines) + "\n"


def limit_variant(value: float | None) -> Variant:
    """GetMin/GetMax/GetDefault answer: the bound, or invalid when there is none."""
    if value is None:
        return INVALID
    return wrap_as("v", value)
