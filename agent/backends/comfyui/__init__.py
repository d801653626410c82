"""The ComfyUI backend: queue an API-format graph on a ComfyUI server and fetch what it saved.

Either the built-in graphs (txt2img; img2img from the base image or a reference; inpaint with
SetLatentNoiseMask; JSON files in ``workflows/``) or the user's own API-format workflows, exported
with "Save (API Format)", whose string values carry placeholders:

- ``--backend-option workflow=flow.json`` generates. It may use every placeholder below except the
  edit-only ones ({{base_image}}, {{mask}}, {{instruction}}).
- ``--backend-option edit_workflow=edit.json`` edits: it must use {{base_image}} and usually
  {{mask}}. The backend can edit (``Capabilities.edit``) when an edit workflow is set, or when no
  workflow is set at all (the built-in img2img/inpaint graphs); it applies masks
  (``Capabilities.mask``) when that graph takes {{mask}}. A generation workflow alone cannot edit:
  its checkpoint and nodes are unknown, so the built-in edit graphs are not assumed to fit it.

A workflow whose placeholders its requests cannot fill (an unknown name, an edit-only placeholder in
``workflow``, an ``edit_workflow`` without {{base_image}}) is a BackendOptionError when the backend is
built, so ``pixloop run`` exits 2 before any request.

=====================  ======  =========================================================
placeholder            type    value
=====================  ======  =========================================================
``{{prompt}}``         str     the full text prompt (the edit instruction first, if any)
``{{negative}}``       str     the plan's negative prompt, comma-separated
``{{instruction}}``    str     the edit instruction (edits only)
``{{seed}}``           int     the request's seed
``{{width}}``          int     the plan's width, rounded to a multiple of 8, long side <= max_side
``{{height}}``         int     likewise
``{{steps}}``          int     options["steps"] (20)
``{{cfg}}``            float   options["cfg"] (7.0)
``{{denoise}}``        float   options["denoise"] (0.6; 0.85 = options["reference_denoise"] from a reference)
``{{sampler}}``        str     options["sampler"] ("euler")
``{{scheduler}}``      str     options["scheduler"] ("normal")
``{{checkpoint}}``     str     options["checkpoint"] or --model (sd_xl_base_1.0.safetensors)
``{{reference_N}}``    str     the uploaded name of reference image N (1-based), for LoadImage
``{{base_image}}``     str     the uploaded image being edited, for LoadImage (edits only)
``{{mask}}``           str     the uploaded masked image (edits only): read the mask with LoadImage's
                               MASK output or LoadImageMask channel "alpha" (1 = repaint)
=====================  ======  =========================================================

A value that is exactly one placeholder becomes that type (``"{{seed}}"`` -> ``42``); a
placeholder inside longer text is replaced by its text (``"photo of {{prompt}}, 35mm"``).

Images go up through ``POST /upload/image`` first and the graph uses the name the server
returns. The mask goes up as ComfyUI's mask editor sends it: ``POST /upload/mask`` with an RGBA
PNG whose alpha is 0 where the image may change and ``original_ref`` naming the uploaded base
image; the server stores the base image's pixels with that alpha, so LoadImage's MASK output
(1 - alpha) is pixloop's mask (white = may change). An edit without a mask through a graph that
takes one sends a mask that lets everything change. Completion is read from the ``/ws``
websocket (``executing`` with ``node: null``), falling back to polling ``GET /history/{id}``
when the socket cannot connect or drops; the image comes from ``GET /view``.

Other options: reference_mode (img2img: the built-in graphs start from reference 1 when there
is no base image; ignore), max_side (2048), timeout (600 s for the whole wait), poll_interval
(1 s), websocket (true; false = poll only), plus the HttpSettings fields (read_timeout,
max_attempts, backoff_initial, ...); `ComfyUIOptions` lists them all.

Modules: ``workflow`` (graphs and placeholders), ``protocol`` (errors, progress events),
``backend`` (options and the backend class); ``agent.backends.sd`` holds what A1111 shares.
"""

from agent.backends.comfyui.backend import DEFAULT_BASE_URL, DEFAULT_CHECKPOINT, ComfyUIBackend, ComfyUIOptions
from agent.backends.comfyui.protocol import Progress, comfyui_classifier, execution_error_message, explain_prompt_error
from agent.backends.comfyui.workflow import (
    EDIT_ONLY,
    PLACEHOLDER_TYPES,
    WorkflowError,
    builtin_workflow,
    check_role,
    check_workflow,
    comfy_mask,
    load_workflow,
    pick_output,
    placeholders,
    reference_slots,
    substitute,
)
from agent.backends.sd import sd_inputs, sd_size

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_CHECKPOINT", "EDIT_ONLY", "PLACEHOLDER_TYPES", "ComfyUIBackend",
           "ComfyUIOptions", "Progress", "WorkflowError", "builtin_workflow", "check_role", "check_workflow",
           "comfy_mask", "comfyui_classifier",
           "execution_error_message", "explain_prompt_error", "load_workflow", "pick_output", "placeholders",
           "reference_slots", "sd_inputs", "sd_size", "substitute"]
