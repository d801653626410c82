"""The public surface: what `import agent` and `import critics` promise, pinned so a change to it is deliberate."""

from __future__ import annotations

import agent
import critics

AGENT_API = [
    "Action", "BackendError", "Brief", "BriefError", "Budget", "Candidate", "CheckResult", "ConfigError",
    "CriticError", "EditSpec", "HttpFailure", "ImageInputError", "InputError", "LLMError", "PixloopConfig", "PixloopError",
    "Plan", "PlanningError", "RunResult", "ServiceError", "UnknownNameError", "Verdict", "__version__",
    "aedit", "agenerate", "aresume", "check_image", "edit", "generate", "make_brief", "register_backend", "register_critic",
    "register_planner", "resume",
    # illustrated documents
    "DocumentBrief", "DocumentEvent", "StoryResult", "aresume_story", "astory", "astream_story", "read_event", "story",
    # one run as an async iterator of typed events
    "RunEvent", "astream_run",
]

PLUGIN_AUTHOR_API = ["CheckContext", "Critic", "CriticInfo", "Plan", "Verdict"]


def test_agent_exports_exactly_the_pinned_names_and_each_resolves() -> None:
    assert sorted(agent.__all__) == sorted(AGENT_API)
    for name in AGENT_API:
        assert getattr(agent, name) is not None, name


def test_importing_agent_loads_neither_the_graph_nor_the_registries() -> None:
    import subprocess
    import sys

    code = "import sys, agent; print(sorted(m for m in sys.modules if m.startswith(('graphs', 'critics', 'agent.'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_plugin_authors_get_everything_from_critics() -> None:
    from critics import CheckContext, Critic, CriticInfo, Verdict  # noqa: F401 - the documented import

    assert set(PLUGIN_AUTHOR_API) <= set(critics.__all__)


def test_a_minimal_plugin_object_satisfies_the_critic_protocol() -> None:
    from critics import Critic, CriticInfo

    class Minimal:
        name = "minimal"
        info = CriticInfo(threshold=0.5, threshold_source="test")

        def check(self, image, plan, context):  # pragma: no cover - protocol shape only
            raise NotImplementedError

    assert isinstance(Minimal(), Critic)
