"""The ComfyUI backend: queue an API-format graph on a ComfyUI server and fetch what it saved.

Either a built-in graph (txt2img, img2img from the base image or a reference, inpaint with
SetLatentNoiseMask; JSON files in ``workflows/``) or the user's own API-format workflow
(``--backend-option workflow=flow.json``, exported with "Save (API Format)") whose string
values carry placeholders:

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
``{{base_image}}``     str     the uploaded image being edited, for LoadImage
``{{mask}}``           str     the uploaded edit mask (white = repaint; read it with channel "red")
=====================  ======  =========================================================

A value that is exactly one placeholder becomes that type (``"{{seed}}"`` -> ``42``); a
placeholder inside longer text is replaced by its text (``"photo of {{prompt}}, 35mm"``).

Images go up through ``POST /upload/image`` first and the graph uses the name the server
returns. Completion is read from the ``/ws`` websocket (``executing`` with ``node: null``),
falling back to polling ``GET /history/{id}`` when the socket cannot connect or drops; the
image comes from ``GET /view``.

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
    PLACEHOLDER_TYPES,
    WorkflowError,
    builtin_workflow,
    check_workflow,
    load_workflow,
    pick_output,
    placeholders,
    reference_slots,
    substitute,
)
from agent.backends.sd import sd_inputs, sd_size

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_CHECKPOINT", "PLACEHOLDER_TYPES", "ComfyUIBackend", "ComfyUIOptions",
           "Progress", "WorkflowError", "builtin_workflow", "check_workflow", "comfyui_classifier",
           "execution_error_message", "explain_prompt_error", "load_workflow", "pick_output", "placeholders",
           "reference_slots", "sd_inputs", "sd_size", "substitute"]
