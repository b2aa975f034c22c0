"""The Python functions the model may call.

A tool is a plain typed function, sync or async, with a docstring, registered with `@tool`. Its
JSON schema comes from its signature (pydantic), so what the model is told and what is checked
before a call are one thing. `TOOLS` picks which registered tools a deployment offers.

Add your own below: the docstring's first paragraph is the description the model reads. Raise
`ValueError` with a message the model can act on; any other exception reaches it only as "the
tool failed" (its text might hold a URL with a key), and is logged. An async tool is cancelled
when the answer stops; a sync one runs in a thread, which Python cannot interrupt, so keep sync
tools short (both are bounded by `TOOL_TIMEOUT_S` all the same).

A tool that writes, sends or spends should run only once the user says yes:
`@tool(needs_approval=True)` makes the answer stop at its call and ask (see `approvals`).
"""

import ast
import asyncio
import datetime
import inspect
import math
import operator
import typing
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError, create_model


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    function: Callable
    arguments: type[BaseModel]  # built from the signature
    needs_approval: bool = False

    def definition(self) -> dict:
        """The tool as LiteLLM takes it (OpenAI's shape); LiteLLM translates it per provider."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.arguments.model_json_schema(),
            },
        }

    async def call(self, arguments: object) -> object:
        """Check `arguments` against the signature, then run the function (a sync one in a
        thread). Raises `BadArguments` for arguments that do not fit."""
        try:
            checked = self.arguments.model_validate(arguments)
        except ValidationError as exc:
            raise BadArguments(_describe(exc)) from None
        values = {name: getattr(checked, name) for name in type(checked).model_fields}
        if inspect.iscoroutinefunction(self.function):
            return await self.function(**values)
        return await asyncio.to_thread(self.function, **values)


class BadArguments(ValueError):
    """The model's arguments do not fit the tool's signature."""


def _describe(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, item['loc'])) or 'arguments'}: {item['msg']}"
        for item in error.errors()
    )


REGISTRY: dict[str, Tool] = {}


@typing.overload
def tool(function: Callable, *, needs_approval: bool = False) -> Callable: ...
@typing.overload
def tool(*, needs_approval: bool = False) -> Callable[[Callable], Callable]: ...


def tool(function: Callable | None = None, *, needs_approval: bool = False):
    """Register `function` as a tool named after it; every parameter needs a type. As
    `@tool(needs_approval=True)`, each call waits for the user's approval."""
    if function is None:
        return lambda function: tool(function, needs_approval=needs_approval)
    name, hints = function.__name__, typing.get_type_hints(function)
    if name in REGISTRY:
        raise ValueError(f"a tool named {name} is registered already")
    if name.startswith("mcp__"):  # mcp_tools.PREFIX
        raise ValueError(f"tool {name}: names beginning mcp__ are the MCP servers' tools")
    fields: dict[str, typing.Any] = {}
    for parameter in inspect.signature(function).parameters.values():
        if parameter.name not in hints:
            raise TypeError(f"tool {name}: parameter {parameter.name} needs a type annotation")
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[parameter.name] = (hints[parameter.name], default)
    description = inspect.cleandoc(function.__doc__ or "").split("\n\n")[0].replace("\n", " ")
    arguments = create_model(f"{name}_arguments", **fields)
    REGISTRY[name] = Tool(name, description, function, arguments, needs_approval)
    return function


# Arithmetic only: the operators a calculator has, on numbers; nothing else parses.
_OPERATORS: dict[type, Callable[..., typing.Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
MAX_EXPRESSION_CHARS = 200
# About 1200 digits. Refused before it is computed, a larger result could hold the process (and
# the GIL) for minutes: `((9**999)**999)**999` is 20 characters.
MAX_RESULT_BITS = 4000


@tool
def calculate(expression: str) -> int | float:
    """Evaluate an arithmetic expression exactly, e.g. "6*7" or "(2**10 - 1) / 3". Supports
    + - * / // % ** and parentheses on numbers."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ValueError(f"the expression is over {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise ValueError(f"not an arithmetic expression: {expression!r}") from None
    return _evaluate(tree.body)


def _evaluate(node: ast.AST) -> int | float:
    match node:
        case ast.Constant(value=bool()):
            raise ValueError("only numbers are allowed")
        case ast.Constant(value=int() | float() as number):
            return number
        case ast.UnaryOp(op=op, operand=operand) if type(op) in _OPERATORS:
            return _OPERATORS[type(op)](_evaluate(operand))
        case ast.BinOp(left=left_node, op=op, right=right_node) if type(op) in _OPERATORS:
            left, right = _evaluate(left_node), _evaluate(right_node)
            if _result_bits(op, left, right) > MAX_RESULT_BITS:
                raise ValueError("the result would be too large to compute")
            try:
                return _real(_OPERATORS[type(op)](left, right))
            except ZeroDivisionError:
                raise ValueError("division by zero") from None
            except OverflowError:
                raise ValueError("the result is too large for a float") from None
    raise ValueError(f"not allowed in an arithmetic expression: {ast.unparse(node)!r}")


def _result_bits(op: ast.operator, left: float, right: float) -> float:
    """An upper bound of the integer result's size; 0 where Python's floats bound it."""
    if not (isinstance(left, int) and isinstance(right, int)):
        return 0
    if isinstance(op, ast.Pow) and right > 0:
        return abs(left).bit_length() * right
    if isinstance(op, ast.Mult):
        return abs(left).bit_length() + abs(right).bit_length()
    return 0


def _real(value: object) -> int | float:
    """A finite real number: JSON has no infinity, and `(-8) ** 0.5` is complex."""
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    raise ValueError("the result is not a finite real number")


@tool
def current_time(timezone: str = "UTC") -> str:
    """The current date and time in an IANA time zone, e.g. "Europe/Paris" (default UTC)."""
    try:
        zone = zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {timezone!r}; use an IANA name") from None
    return datetime.datetime.now(zone).isoformat(timespec="seconds")
