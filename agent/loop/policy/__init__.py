"""The content policy: text rules (`rules`), an optional moderation endpoint (`moderation`) and the image
screen (`images`). The loop calls `load_policy()` once, `Policy.check_text` on the prompt and required text
before planning and on the OCR-read text of each candidate, and `ImageScreen.check` on each candidate.

Every check returns a `PolicyDecision`: `allowed` False names the rule that refused; `verified` False means
the check could not be made (an endpoint that did not answer, a detector that is not installed) and must be
reported as "policy unverified", never as passed."""

from agent.loop.policy.rules import Policy, PolicyDecision, Rule, load_policy, normalise

__all__ = ["Policy", "PolicyDecision", "Rule", "load_policy", "normalise"]
