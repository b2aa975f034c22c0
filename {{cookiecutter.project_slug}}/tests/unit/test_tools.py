"""The tools: a schema from each signature, arguments checked against it, and a calculator that
computes arithmetic and nothing else."""

import re
import threading

import pytest

from {{ cookiecutter.package_name }} import tools
from {{ cookiecutter.package_name }}.tools import REGISTRY, BadArguments, calculate, current_time


def test_the_schema_comes_from_the_signature_and_the_docstring():
    definition = REGISTRY["current_time"].definition()
    function = definition["function"]
    assert definition["type"] == "function"
    assert function["name"] == "current_time"
    assert function["description"].startswith("The current date and time")
    assert function["parameters"]["properties"]["timezone"]["type"] == "string"
    assert function["parameters"]["properties"]["timezone"]["default"] == "UTC"
    assert REGISTRY["calculate"].definition()["function"]["parameters"]["required"] == [
        "expression"
    ]


async def test_arguments_are_checked_before_the_function_runs():
    with pytest.raises(BadArguments, match="expression: Field required"):
        await REGISTRY["calculate"].call({"expr": "1+1"})
    with pytest.raises(BadArguments, match="expression: Input should be a valid string"):
        await REGISTRY["calculate"].call({"expression": ["1+1"]})
    assert await REGISTRY["calculate"].call({"expression": "6*7"}) == 42


@pytest.mark.parametrize(
    ("expression", "value"),
    [("6*7", 42), ("(2**10 - 1) / 3", 341.0), ("-7 // 2", -4), ("7 % 3", 1), ("+1.5e3", 1500.0)],
)
def test_calculate_computes_arithmetic(expression, value):
    assert calculate(expression) == value


@pytest.mark.parametrize(
    ("expression", "refusal"),
    [
        ("__import__('os').system('true')", "not allowed"),
        ("x + 1", "not allowed"),
        ("[1, 2]", "not allowed"),
        ("True + 1", "only numbers"),
        ("9**9**9", "too large to compute"),
        ("((9**999)**999)**999", "too large to compute"),
        ("(10**1000)*(10**1000)", "too large to compute"),
        ("1e308*10", "not a finite real number"),
        ("(-8)**0.5", "not a finite real number"),
        ("10.0**400", "too large for a float"),
        ("1/0", "division by zero"),
        ("1 +", "not an arithmetic expression"),
        ("1+" * 200 + "1", "over 200 characters"),
    ],
)
def test_calculate_refuses_anything_else_without_running_it(expression, refusal):
    with pytest.raises(ValueError, match=re.escape(refusal)):
        calculate(expression)


def test_current_time_is_in_the_zone_asked_for():
    assert current_time("UTC").endswith("+00:00")
    assert current_time("Asia/Kolkata").endswith("+05:30")
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        current_time("Mars/Olympus")


async def test_a_tool_needs_a_type_for_each_parameter_and_a_name_of_its_own(monkeypatch):
    monkeypatch.setattr(tools, "REGISTRY", {})

    def untyped(city) -> str: ...

    with pytest.raises(TypeError, match="parameter city needs a type annotation"):
        tools.tool(untyped)

    def typed(city: str) -> str: ...

    tools.tool(typed)
    with pytest.raises(ValueError, match="a tool named typed is registered already"):
        tools.tool(typed)


async def test_a_sync_tool_runs_in_a_thread_so_the_event_loop_keeps_serving(monkeypatch):
    monkeypatch.setattr(tools, "REGISTRY", {})

    @tools.tool
    def where() -> str:
        """The thread it runs in."""
        return threading.current_thread().name

    assert await tools.REGISTRY["where"].call({}) != threading.current_thread().name
