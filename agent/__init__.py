"""pixloop: self-checking image generation (plan -> generate -> check -> correct).

    from agent import generate
    result = generate('poster that says "GRAND OPENING"', out="out/poster")
    print(result.status, result.final_image)
"""

from agent.api import BriefError, RunResult, agenerate, aresume, generate, make_brief, resume
from agent.config import PixloopConfig
from agent.state import Brief, Budget, Plan

__all__ = ["Brief", "BriefError", "Budget", "Plan", "PixloopConfig", "RunResult", "agenerate", "aresume",
           "generate", "make_brief", "resume"]
__version__ = "0.1.0"
