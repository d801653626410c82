"""Critics: measured checks of a generated image (OCR, face identity, artifacts, spec, preservation) and the
optional VLM judge. Each critic module describes itself with a `CriticInfo`; `critics.registry` finds them.

Plugin authors need only this package's surface:

    from critics import Critic, CriticInfo, CheckContext, Verdict
"""

from __future__ import annotations

from agent.models import Plan, UnknownCriticError, Verdict
from critics.base import CheckContext, Critic, CriticInfo, Need, needs_met, threshold_for
from critics.registry import (
    CRITICS,
    applies,
    check_names,
    checks_for,
    critic_info,
    critic_names,
    get_critic,
    is_measured,
    register_critic,
    unregister_critic,
    weight,
)

__all__ = [
    "CRITICS", "CheckContext", "Critic", "CriticInfo", "Need", "Plan", "UnknownCriticError", "Verdict", "applies",
    "check_names", "checks_for", "critic_info", "critic_names", "get_critic", "is_measured", "needs_met",
    "register_critic", "threshold_for", "unregister_critic", "weight",
]
