"""Safe expressions from the config (``simpleeval``, never ``eval``): checked when loaded.

An :class:`Expression` is one line of arithmetic (``+ - * / // % **``), comparisons and
``and``/``or``/``not``/``if else`` over a fixed set of names (``soc``, ``grid_w``...), number
constants and a few functions (``min``, ``max``, ``abs``, ``round``). Parsing rejects anything
else — unknown names, attributes, strings, lambdas, comprehensions, shifts and bit operations,
constants above 1e15, text longer than :data:`MAX_CHARS` — with ValueError, so
``check-config`` reports a bad expression before the daemon runs it. Evaluation time is bounded:
the language has no loops, ``**`` takes a base up to 1e9 and an exponent up to 16, and the text
is short, so no number can grow large. Any failure (division by zero, a missing value) raises
ValueError with the reason instead of yielding a number.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Mapping
from typing import Any

from simpleeval import SimpleEval

__all__ = ["MAX_CHARS", "Expression", "reservation_expression"]

MAX_CHARS = 300
"""Longest expression accepted (an es-ESS reservation formula is about 40 characters)."""

MAX_BASE = 1e9
MAX_EXPONENT = 16.0
"""``a ** b`` only for ``|a| <= MAX_BASE`` and ``|b| <= MAX_EXPONENT``: no huge numbers (time)."""


def _power(a: float, b: float) -> float:
    if abs(a) > MAX_BASE or abs(b) > MAX_EXPONENT:
        raise ValueError(f"{a:g} ** {b:g} is too large (base <= 1e9, exponent <= 16)")
    return float(float(a) ** b)


def _check_constant(value: object) -> None:
    if not isinstance(value, int | float | bool):
        raise ValueError("only numbers are allowed as constants")  # noqa: TRY004
    if abs(value) > 1e15:
        raise ValueError(f"the constant {value:g} is too large")


def _round(x: float, digits: int = 0) -> float:
    return float(round(x, max(-20, min(int(digits), 20))))


_FUNCTIONS: dict[str, Any] = {"min": min, "max": max, "abs": abs, "round": _round}
_OPERATORS: dict[type, Any] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _power,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Not: operator.not_,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Gt: operator.gt,
    ast.Lt: operator.lt,
    ast.GtE: operator.ge,
    ast.LtE: operator.le,
}
_ALLOWED = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.IfExp,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.And,
    ast.Or,
    *_OPERATORS,
)


class Expression:
    """A checked expression over ``names``; :meth:`evaluate` gives a float (or bool as 0/1)."""

    def __init__(self, text: str, names: frozenset[str]) -> None:
        """Parse and check ``text`` (ValueError saying what is wrong)."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("expected an expression")
        if len(text) > MAX_CHARS:
            raise ValueError(f"expression longer than {MAX_CHARS} characters")
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as err:
            raise ValueError(f"not a valid expression: {err.msg}") from None
        for node in ast.walk(tree):
            if not isinstance(node, _ALLOWED):
                raise ValueError(f"{type(node).__name__} is not allowed in an expression")  # noqa: TRY004
            if isinstance(node, ast.Call) and not (
                isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
            ):
                raise ValueError(f"only {', '.join(sorted(_FUNCTIONS))} may be called")
            if isinstance(node, ast.Call) and node.keywords:
                raise ValueError("keyword arguments are not allowed")
            if (
                isinstance(node, ast.Name)
                and node.id not in names
                and node.id not in _FUNCTIONS
                and node.id not in ("True", "False")
            ):
                known = ", ".join(sorted(names))
                raise ValueError(f"unknown name {node.id!r} (known: {known})")
            if isinstance(node, ast.Constant):
                _check_constant(node.value)
        self.text = text.strip()
        self.names = names
        body = tree.body
        self.is_condition = isinstance(body, ast.Compare | ast.BoolOp) or (
            isinstance(body, ast.UnaryOp) and isinstance(body.op, ast.Not)
        )
        """True when the expression is a truth value (``soc > 50``), not an amount."""
        self.used = frozenset(
            n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in names
        )
        self._evaluator = SimpleEval(
            operators=dict(_OPERATORS), functions=dict(_FUNCTIONS), names={}
        )
        self._parsed = self._evaluator.parse(self.text)

    def evaluate(self, values: Mapping[str, float | None]) -> float:
        """The value for ``values`` (every name must be a number); ValueError when it fails."""
        missing = sorted(n for n in self.used if values.get(n) is None)
        if missing:
            raise ValueError(f"{', '.join(missing)} unknown now")
        self._evaluator.names = {k: v for k, v in values.items() if v is not None}
        try:
            result = self._evaluator.eval(self.text, previously_parsed=self._parsed)
        except Exception as err:  # noqa: BLE001 - any failure of a user expression is reported
            why = str(err)
            why = why if len(why) <= 80 else why[:80] + "..."
            raise ValueError(f"{self.text!r} failed: {type(err).__name__}: {why}") from None
        try:
            value = float(result)  # bool, int or float; a huge int overflows
        except (TypeError, ValueError, OverflowError):
            value = math.nan
        if not math.isfinite(value):
            raise ValueError(f"{self.text!r} gave {str(result)[:40]}, not a finite number")
        return value

    def __repr__(self) -> str:
        """The text."""
        return f"Expression({self.text!r})"


def reservation_expression(text: str) -> Expression:
    """An es-ESS ``MinBatteryCharge`` style formula over ``SOC`` (or ``soc``), W."""
    return Expression(text, frozenset({"SOC", "soc"}))
