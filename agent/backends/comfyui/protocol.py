"""ComfyUI's answers: readable /prompt validation and execution errors, the error classifier, and what the
progress websocket reports about one prompt."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from agent.backends.errors import BadRequest
from agent.runtime.http import default_classifier, error_detail


def explain_prompt_error(body: Any) -> str:
    """A readable account of a 400 from /prompt: the error and each node's failed inputs."""
    if not isinstance(body, dict):
        return f"ComfyUI rejected the workflow: {str(body)[:300]}"
    err = body.get("error")
    if isinstance(err, dict):
        head = f"{err.get('type', 'error')}: {err.get('message', '')}".strip()
        if err.get("details"):
            head += f" ({str(err['details'])[:200]})"
    else:
        head = str(err or "invalid prompt")
    parts = []
    for node_id, info in (body.get("node_errors") or {}).items():
        if not isinstance(info, dict):
            continue
        for e in info.get("errors") or []:
            if not isinstance(e, dict):
                continue
            extra = e.get("extra_info")
            if not isinstance(extra, dict):
                extra = {}
            line = f"node {node_id} ({info.get('class_type', '?')})"
            if extra.get("input_name"):
                line += f" input {extra['input_name']!r}"
            line += f": {e.get('type', 'error')}: {e.get('message', '')}"
            if e.get("details"):
                line += f" ({str(e['details'])[:200]})"
            if e.get("type") == "value_not_in_list" and extra.get("input_name") == "ckpt_name":
                line += " [choose an installed checkpoint with --backend-option checkpoint=NAME]"
            parts.append(line)
    return "ComfyUI rejected the workflow: " + head + ("; " + "; ".join(parts) if parts else "")


def comfyui_classifier(resp: httpx.Response) -> Any:
    """Readable /prompt validation errors and /view misses; the rest as usual (5xx and 429 retried)."""
    path = resp.request.url.path if resp.request is not None else ""
    if resp.status_code == 400 and path.endswith("/prompt"):
        try:
            body = resp.json()
        except ValueError:
            body = error_detail(resp)
        return BadRequest(explain_prompt_error(body))
    if resp.status_code == 404 and path.endswith("/view"):
        params = resp.request.url.params
        return BadRequest(f"output image {params.get('filename')!r} (type {params.get('type')}) is not on the "
                          "server (404 from /view)")
    return default_classifier(resp)


def execution_error_message(data: dict[str, Any]) -> str:
    """'node 3 (KSampler) failed: torch.OutOfMemoryError: ...' from an execution_error payload."""
    node = data.get("node_id") or data.get("node") or "?"
    kind = data.get("exception_type") or "error"
    message = str(data.get("exception_message") or "").strip()[:500]
    text = f"ComfyUI node {node} ({data.get('node_type', '?')}) failed: {kind}: {message}"
    if "OutOfMemory" in kind or "out of memory" in message.lower():
        text += " [out of GPU memory: lower --backend-option max_side or free the GPU]"
    return text


@dataclass
class Progress:
    """What the websocket told us about one prompt."""

    outputs: dict[str, Any] = field(default_factory=dict)
    previews: int = 0
    steps: tuple[int, int] | None = None
    finished: bool = False


async def close_quietly(ws: Any) -> None:
    """Close a websocket that may already be gone."""
    try:
        await ws.close()
    except Exception:  # the socket may already be gone; nothing to report
        pass


__all__ = ["Progress", "close_quietly", "comfyui_classifier", "execution_error_message", "explain_prompt_error"]
