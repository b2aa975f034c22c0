"""Every use of Reflex's internals, in one module: what the page needs and Reflex 0.10 has no
public API for. `tests/unit/test_reflex_compat.py` fails, naming the installed Reflex, when an
upgrade changes one of them.
"""

import inspect
import logging
import subprocess

import reflex as rx
from reflex.app import EventNamespace
from reflex.components.component import Component
from reflex.event import Event, EventSpec
from reflex.utils import console, processes
from reflex.utils.token_manager import TokenManager
from reflex.vars import FunctionStringVar, FunctionVar, Var, VarData
from reflex_base.registry import RegistrationContext
from reflex_base.utils.exceptions import ReflexRuntimeError

# What Reflex logs for each update to a tab whose websocket has gone.
DISCONNECTED_TAB_WARNING = "Attempting to send delta to disconnected client"


async def tab_is_connected(token: str) -> bool:
    """Whether the tab with this client token still has its websocket, to this process or
    (with Redis) to another one. True when this process serves no app (event handlers run
    directly, as in tests): nobody to ask."""
    try:
        namespace = RegistrationContext.ensure_context().app.event_namespace
    except ReflexRuntimeError:
        return True
    return namespace is None or await namespace._token_manager.is_token_connected(token)


def missing_internals() -> list[str]:
    """What `tab_is_connected` reads, and the warning `quiet_reloaded_tabs` hides, that the
    installed Reflex no longer has (the other uses are checked by what they produce)."""
    missing = []
    if "self._token_manager = " not in inspect.getsource(EventNamespace.__init__):
        missing.append("EventNamespace._token_manager")
    if not inspect.iscoroutinefunction(getattr(TokenManager, "is_token_connected", None)):
        missing.append("TokenManager.is_token_connected")
    if DISCONNECTED_TAB_WARNING not in inspect.getsource(EventNamespace.emit_update):
        missing.append("EventNamespace.emit_update's warning")
    if "show_status(" not in inspect.getsource(processes.run_process_with_fallbacks):
        missing.append("processes.run_process_with_fallbacks's show_status")
    return missing


def quiet_reloaded_tabs() -> None:
    """Keep Reflex from warning of every update meant for a tab that has gone. A tab reloaded
    mid-answer causes them, and nothing is wrong: the answer goes on, and the new tab follows
    it."""
    logging.getLogger(EventNamespace.__module__).addFilter(_not_to_a_gone_tab)


def _not_to_a_gone_tab(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith(DISCONNECTED_TAB_WARNING)


def quiet_package_installs() -> None:
    """Show each of Reflex's npm steps as its name beside a spinner, without npm's own lines.

    Reflex runs npm with `--loglevel silly` and shows every line it prints in the spinner: on a
    first start, hundreds of `npm silly packumentCache …` in 30 s. A step that fails still
    prints its log, as Reflex's `stream_logs` does.
    """
    processes.show_status = _status_without_output


def _status_without_output(
    message: str,
    process: subprocess.Popen,
    suppress_errors: bool = False,
    analytics_enabled: bool = False,
    prior_logs: tuple[tuple[str, ...], ...] = (),
) -> list[str]:
    """`processes.show_status`, minus the line it adds to the spinner's message."""
    with console.status(message):
        lines = processes.stream_logs(
            message,
            process,
            suppress_errors=suppress_errors,
            analytics_enabled=analytics_enabled,
            prior_logs=prior_logs,
        )
        return list(lines)


def labelled_upload(label: str, *children: Component, **props) -> Component:
    """`rx.upload.root` whose hidden file input has a name for screen readers: Reflex renders
    the input (first in the drop zone's div) with none, which axe-core reports."""
    upload = rx.upload.root(*children, **props)
    [zone] = upload.children
    file_input = zone.children[0]
    if getattr(file_input, "tag", None) != "input":
        raise TypeError(f"rx.upload.root has changed: {file_input!r} is not its file input")
    file_input.custom_attrs["aria-label"] = label
    return upload


def client_state_value(name: str) -> str:
    """JavaScript that reads the current value of the `ClientStateVar` called `name`; Reflex
    offers only a setter, and a script the backend sends needs the value it appends to."""
    return f"refs['_client_state_{name}']"


def js_call(function: str, argument: Var) -> Var:
    """`function(argument)` evaluated in the page, keeping what `argument` needs to render (its
    hooks and imports), which a Var made from a plain string would drop."""
    return Var(_js_expr=f"{function}({argument})", _var_data=argument._get_all_var_data())


def imported_function(name: str, library: str) -> FunctionVar:
    """The JavaScript function `name` of `library`, imported where it is used; Reflex imports
    components and their props, but has no public way to pass a plain function as a prop."""
    return FunctionStringVar.create(name, _var_data=VarData(imports={library: name}))


def script_of(spec: EventSpec) -> str:
    """The JavaScript that an event like `ClientStateVar.push(...)` runs in the page."""
    [event] = Event.from_event_type(spec)
    return event.payload["function"]


def script_event(script: str) -> Event:
    """The event that runs `script` in the page, as `rx.call_function` makes it, without its cost
    per call (an `inspect.signature` and a tree of Vars: an eighth of the page's CPU under load,
    when each chat pushes text 20 times a second)."""
    return Event(name="_call_function", payload={"function": script, "callback": None})
