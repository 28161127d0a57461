"""One colour and one marker per backend, the same in every figure (speed, scaling, history),
and a palette of their own for categories that are not backends (the sweep's figures)."""
import hashlib

FIXED = {  # the backends the project knows; any other name gets a fixed fallback below
    "python": ("tab:blue", "o"),
    "numpy": ("tab:orange", "s"),
    "numba": ("tab:green", "^"),
    "torch": ("tab:red", "D"),
    "jax": ("tab:purple", "v"),
    "c": ("tab:brown", "P"),
    "sklearn": ("tab:pink", "X"),
}
FALLBACK_COLOURS = ("tab:olive", "tab:cyan", "tab:gray", "gold", "navy", "teal", "maroon", "indigo")
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


# Anything that is not a backend (a network, a configuration's rank) gets none of the above:
# colours along viridis's dark-to-light ramp (the categories it colours are ordered: grid
# order, best first) and a line style each, and no marker of its own (a figure that marks
# points uses MEAN_MARKER for every category).
CATEGORY_LINES = ("-", "--", "-.", ":")
MEAN_MARKER = "_"  # a bar across an error bar at the mean; no backend's marker


def category_styles(n):
    """n matplotlib keyword sets (color, linestyle) for n ordered categories that are not
    backends; the first is the darkest."""
    from matplotlib import colormaps
    ramp = colormaps["viridis"]
    return [{"color": ramp(0.8 * i / max(n - 1, 1)), "linestyle": CATEGORY_LINES[i % len(CATEGORY_LINES)]}
            for i in range(n)]
