"""Safe expressions from the config (``simpleeval``, never ``eval``): checked when loaded.

An :class:`Expression` is one line of arithmetic and comparisons over a fixed set of names
(``soc``, ``grid_w``...) and a few functions (``min``, ``max``, ``abs``, ``round``). Parsing
rejects anything else — unknown names, attribute access, lambdas, comprehensions, text longer
than :data:`MAX_CHARS` — with ValueError, so ``check-config`` reports a bad expression before
the daemon runs it. Evaluation is bounded: no loops exist in the language, powers and strings
are capped by simpleeval, and any failure (division by zero, a missing value) raises
ValueError with the reason instead of yielding a number.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from typing import Any

from simpleeval import SimpleEval

__all__ = ["MAX_CHARS", "Expression", "reservation_expression"]

MAX_CHARS = 300
"""Longest expression accepted (an es-ESS reservation formula is about 40 characters)."""

_FUNCTIONS: dict[str, Any] = {"min": min, "max": max, "abs": abs, "round": round}
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
    ast.operator,
    ast.unaryop,
    ast.boolop,
    ast.cmpop,
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
            if isinstance(node, ast.Constant) and not isinstance(node.value, int | float | bool):
                raise ValueError("only numbers are allowed as constants")  # noqa: TRY004
        self.text = text.strip()
        self.names = names
        self.used = frozenset(
            n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in names
        )
        self._evaluator = SimpleEval(functions=dict(_FUNCTIONS), names={})
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
        if isinstance(result, bool):
            return float(result)
        if not isinstance(result, int | float) or not math.isfinite(result):
            raise ValueError(f"{self.text!r} gave {result!r}, not a finite number")
        return float(result)

    def __repr__(self) -> str:
        """The text."""
        return f"Expression({self.text!r})"


def reservation_expression(text: str) -> Expression:
    """An es-ESS ``MinBatteryCharge`` style formula over ``SOC`` (or ``soc``), W."""
    return Expression(text, frozenset({"SOC", "soc"}))
