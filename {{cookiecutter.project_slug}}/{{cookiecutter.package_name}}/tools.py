"""The Python functions the model may call.

A tool is a plain typed function, sync or async, with a docstring, registered with `@tool`. Its
JSON schema comes from its signature (pydantic), so what the model is told and what is checked
before a call are one thing. `TOOLS` picks which registered tools a deployment offers.

Add your own below: the docstring's first paragraph is the description the model reads.
An async tool is cancelled when the answer stops; a sync one runs in a thread, which Python
cannot interrupt, so keep sync tools short (both are bounded by `TOOL_TIMEOUT_S` all the same).
"""

import ast
import asyncio
import datetime
import inspect
import operator
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


def tool(function: Callable) -> Callable:
    """Register `function` as a tool named after it."""
    fields = {}
    for name, parameter in inspect.signature(function).parameters.items():
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[name] = (parameter.annotation, default)
    description = inspect.cleandoc(function.__doc__ or "").split("\n\n")[0].replace("\n", " ")
    arguments = create_model(f"{function.__name__}_arguments", **fields)
    REGISTRY[function.__name__] = Tool(function.__name__, description, function, arguments)
    return function


# Arithmetic only: the operators a calculator has, on numbers; nothing else parses.
_OPERATORS = {
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
MAX_EXPONENT = 1000  # 10**1000 is instant; 9**9**9 would take the process down


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
        case ast.BinOp(left=left, op=op, right=right) if type(op) in _OPERATORS:
            left, right = _evaluate(left), _evaluate(right)
            if isinstance(op, ast.Pow) and abs(right) > MAX_EXPONENT:
                raise ValueError(f"exponents above {MAX_EXPONENT} are not computed")
            return _OPERATORS[type(op)](left, right)
    raise ValueError(f"not allowed in an arithmetic expression: {ast.unparse(node)!r}")


@tool
def current_time(timezone: str = "UTC") -> str:
    """The current date and time in an IANA time zone, e.g. "Europe/Paris" (default UTC)."""
    try:
        zone = zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {timezone!r}; use an IANA name") from None
    return datetime.datetime.now(zone).isoformat(timespec="seconds")
