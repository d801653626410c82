"""One exception tree: every error pixloop raises on purpose is a PixloopError that knows its exit code."""

from __future__ import annotations

import pytest

from agent.backends import errors as backend_errors
from agent.llm import errors as llm_errors
from agent.models import errors as E
from agent.runtime.http import HttpClient


@pytest.mark.parametrize(("cls", "code"), [
    (E.BriefError, 2), (E.ImageInputError, 2), (E.ConfigError, 2), (E.UnknownCriticError, 2),
    (E.UnknownBackendError, 2), (E.BackendOptionError, 2), (E.UnknownPlannerError, 2),
    (E.PlanningError, 4), (E.BackendError, 4), (E.LLMError, 4), (E.RateLimited, 4), (E.CriticUnavailable, 1),
])
def test_each_error_class_carries_its_cli_exit_code(cls: type[E.PixloopError], code: int) -> None:
    assert issubclass(cls, E.PixloopError) and cls.exit_code == code
    assert E.exit_code_for(cls("x")) == code


def test_bad_input_errors_are_value_errors_too_so_callers_that_catch_value_error_keep_working() -> None:
    assert issubclass(E.InputError, ValueError) and issubclass(E.BriefError, ValueError)
    assert E.exit_code_for(RuntimeError("boom")) == 1


def test_an_llm_failure_is_not_a_backend_failure() -> None:
    assert not issubclass(E.LLMError, E.BackendError) and not issubclass(E.BackendError, E.LLMError)
    assert issubclass(llm_errors.LLMBlocked, E.SafetyBlocked) and not issubclass(llm_errors.LLMBlocked, E.BackendError)


@pytest.mark.parametrize("kind", E.HTTP_KINDS)
def test_every_http_kind_has_a_backend_and_an_llm_variant(kind: type[E.HttpFailure]) -> None:
    backend, llm = backend_errors.VARIANTS[kind], llm_errors.VARIANTS[kind]
    assert issubclass(backend, kind) and issubclass(backend, E.BackendError) and not issubclass(backend, E.LLMError)
    assert issubclass(llm, kind) and issubclass(llm, E.LLMError) and not issubclass(llm, E.BackendError)


def test_as_service_turns_a_kind_into_the_family_variant_keeping_message_and_fields() -> None:
    blocked = E.SafetyBlocked("prompt blocked", reason="PROHIBITED_CONTENT")
    as_backend = E.as_service(blocked, backend_errors.VARIANTS)
    assert isinstance(as_backend, backend_errors.SafetyBlocked) and isinstance(as_backend, E.BackendError)
    assert str(as_backend) == "prompt blocked" and as_backend.reason == "PROHIBITED_CONTENT"
    assert E.as_service(as_backend, backend_errors.VARIANTS) is as_backend


def test_the_http_client_raises_the_variant_of_the_family_it_serves() -> None:
    import asyncio

    import httpx

    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"message": "bad key"}})

    for family, service in ((backend_errors.VARIANTS, E.BackendError), (llm_errors.VARIANTS, E.LLMError)):
        client = HttpClient("t", "http://127.0.0.1:9", transport=httpx.MockTransport(reply), family=family)
        with pytest.raises(E.AuthError) as info:
            asyncio.run(client.request("GET", "/x"))
        assert isinstance(info.value, service) and "bad key" in str(info.value)
