"""One colour and one marker per backend, the same in every figure (speed, scaling, history)."""
import hashlib

FIXED = {  # the backends the project knows; any other name gets a fixed fallback below
    "python": ("tab:blue", "o"),
    "numpy": ("tab:orange", "s"),
    "numba": ("tab:green", "^"),
    "torch": ("tab:red", "D"),
    "jax": ("tab:purple", "v"),
    "c": ("tab:brown", "P"),
}
FALLBACK_COLOURS = ("tab:pink", "tab:olive", "tab:cyan", "tab:gray", "gold", "navy", "teal", "maroon")
FALLBACK_MARKERS = ("X", "<", ">", "h", "*", "p", "d", "8")


def backend_style(name):
    """matplotlib keywords (color, marker) for backend `name`: fixed for the known ones, and
    for any other name derived from its sha256, so it never changes between runs or figures."""
    if name in FIXED:
        colour, marker = FIXED[name]
    else:
        h = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")
        colour = FALLBACK_COLOURS[h % len(FALLBACK_COLOURS)]
        marker = FALLBACK_MARKERS[(h // len(FALLBACK_COLOURS)) % len(FALLBACK_MARKERS)]
    return {"color": colour, "marker": marker}
