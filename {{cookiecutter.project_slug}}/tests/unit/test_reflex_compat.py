"""The internals of Reflex the page relies on (`reflex_compat`) still work as it expects. After a
Reflex upgrade, a failure here names what changed, before the page breaks in a browser."""

import logging
import sys
from importlib.metadata import version

import pytest
from reflex.event import Event
from reflex.experimental.client_state import ClientStateVar
from reflex.utils import processes

from {{ cookiecutter.package_name }}_ui import reflex_compat

REFLEX = f"Reflex {version('reflex')}"


async def test_a_tab_counts_as_connected_where_no_app_is_served():
    connected = await reflex_compat.tab_is_connected("any-token")
    assert connected, f"{REFLEX}: RegistrationContext changed"


def test_the_event_namespace_still_asks_its_token_manager_about_websockets():
    assert reflex_compat.missing_internals() == [], REFLEX


def test_a_client_state_var_is_read_where_reflex_keeps_it():
    """Where Reflex's own `retrieve()` (a round trip through the backend) reads the value."""
    arguments = [str(value) for _, value in ClientStateVar.create("probe").retrieve().args]
    read = f"(() => {reflex_compat.client_state_value('probe')})"
    assert read in arguments, f"{REFLEX} reads it with {arguments}"


def test_a_js_call_renders_as_a_call_of_its_argument():
    # That it keeps the argument's hooks shows in the browser suite: the live answer renders.
    argument = ClientStateVar.create("probe", default="").value
    expected = "shown(" + str(argument) + ")"  # not an f-string: Vars format with markers
    assert str(reflex_compat.js_call("shown", argument)) == expected, REFLEX


def test_a_script_event_is_the_event_reflex_makes_for_the_same_script():
    spec = ClientStateVar.create("probe", default="").push("pushed")
    [made_by_reflex] = Event.from_event_type(spec)
    assert reflex_compat.script_event(reflex_compat.script_of(spec)) == made_by_reflex, REFLEX


def test_an_imported_function_renders_as_its_name_and_brings_its_import():
    function = reflex_compat.imported_function("keepSafeUrl", "$/public/policy.jsx")
    imports = function._get_all_var_data().imports  # what the page's module imports for it
    assert str(function) == "keepSafeUrl", REFLEX
    assert [(library, [i.tag for i in tags]) for library, tags in imports] == [
        ("$/public/policy.jsx", ["keepSafeUrl"])
    ], REFLEX


def test_only_the_warning_of_an_update_to_a_gone_tab_is_hidden(caplog):
    reflex_compat.quiet_reloaded_tabs()
    reflex_log = logging.getLogger("reflex.app")
    reflex_log.warning(f"{reflex_compat.DISCONNECTED_TAB_WARNING} 'token-1'")
    reflex_log.warning("Something else went wrong")
    assert [record.getMessage() for record in caplog.records] == ["Something else went wrong"]


def test_an_upload_s_file_input_gets_its_name():
    upload = reflex_compat.labelled_upload("Files to attach", id="probe_files")
    file_input = upload.render()["children"][0]["children"][0]
    assert file_input["name"] == '"input"', REFLEX
    assert '"aria-label":"Files to attach"' in file_input["props"], REFLEX


def test_a_package_step_that_fails_still_prints_its_output(caplog, monkeypatch):
    monkeypatch.setattr(processes, "show_status", processes.show_status)  # restored after
    reflex_compat.quiet_package_installs()
    failing_npm = [sys.executable, "-c", "print('npm error 404 left-pad'); raise SystemExit(1)"]
    with pytest.raises(SystemExit):
        processes.run_process_with_fallbacks(failing_npm, show_status_message="Installing")
    assert "npm error 404 left-pad\n" in caplog.messages, REFLEX
