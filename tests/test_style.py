"""One colour and marker per backend, whatever the figure."""
from ffnbench.report.style import FIXED, backend_style


def test_known_backends_have_distinct_fixed_styles():
    styles = [tuple(backend_style(b).values()) for b in ("python", "numpy", "numba", "torch", "jax", "c")]
    assert len(set(s[0] for s in styles)) == len(styles) and len(set(s[1] for s in styles)) == len(styles)
    assert backend_style("numba") == {"color": FIXED["numba"][0], "marker": FIXED["numba"][1]}


def test_any_other_name_gets_a_stable_style_of_its_own():
    a, b = backend_style("my-cuda-kernel"), backend_style("my-cuda-kernel")
    assert a == b and a["color"] not in {c for c, _ in FIXED.values()}
    assert len({tuple(backend_style(f"b{i}").values()) for i in range(20)}) > 5
