"""The OpenAPI document FastAPI publishes says what the API really does: schemathesis generates
requests from it, valid and not, and checks every answer against it."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from .conftest import running_api
from .support import fuzz_examples


@pytest.fixture(scope="module")
def openapi(upstream, tmp_path_factory):
    """The document of a server whose allowed models all answer (a model of the fake upstream
    that fails on purpose would be a 5xx, which schemathesis reports as a bug), and whose body
    limit is beyond what it generates (a schema cannot state a size in bytes)."""
    cwd = tmp_path_factory.mktemp("openapi")
    limits = {"llm_models": "anthropic/fake-think", "max_request_bytes": "10000000"}
    with running_api(upstream, cwd, **limits) as server:
        yield schemathesis.openapi.from_url(f"{server.url}/api/openapi.json")


# schemathesis' pytest plugin does not run on pytest 9 yet: hypothesis drives each operation.
OPERATIONS = [
    ("/api/chat", "POST"),
    ("/api/chat/{chat_id}/stream", "GET"),
    ("/api/chat/{chat_id}/stream", "DELETE"),
    ("/api/health", "GET"),
    ("/api/models", "GET"),
]


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_every_answer_is_what_the_document_says(openapi, path, method):

    @given(case=openapi[path][method].as_strategy())
    @settings(
        max_examples=fuzz_examples(40), deadline=None, suppress_health_check=list(HealthCheck)
    )
    def answer_matches_the_document(case):
        # A well-formed conversation may still be one the provider refuses (only an empty
        # system message, say): a documented 400, not a flaw in the document.
        case.call_and_validate(timeout=30, excluded_checks=[checks.positive_data_acceptance])

    answer_matches_the_document()
