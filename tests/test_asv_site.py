"""asv's web page works offline (`ffnbench history --site`, report/asv_site.py): the committed
results published into a temporary directory, served on 127.0.0.1 and opened in a real headless
Chromium that can reach nothing else; no script fails, the benchmark list names every benchmark
of results/asv/benchmarks.json for every machine, and a graph of each machine draws a point
for every commit recorded. Skipped only where no Chromium is installed (.ci/run installs it)."""
import functools
import hashlib
import http.server
import json
import math
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from ffnbench.core.errors import UserError
from ffnbench.report import asv_site

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "asv"
MACHINES = sorted(p.name for p in RESULTS.iterdir() if (p / "machine.json").is_file())
BENCHMARKS = {name: b for name, b in json.loads((RESULTS / "benchmarks.json").read_text()).items()
              if name != "version"}
GRAPH = "bench_epoch.TimeEpoch.time_epoch"  # every commit of every machine measured it
CHROMIUM = next((c for c in (shutil.which("chromium"), shutil.which("chromium-browser"),
                             "/usr/bin/chromium") if c and Path(c).is_file()), None)
# the flags known to work as root in a container; the resolver rule makes every host but
# 127.0.0.1 unresolvable, so even a request the page's routing missed could not leave
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]


def test_the_vendored_files_are_the_manifests_and_mit():
    manifest = asv_site.manifest()
    for entry in manifest["files"]:
        data = (asv_site.ASSETS / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]
        assert entry["licence"] == "MIT"
    for package, info in manifest["packages"].items():
        assert info["licence"] == "MIT", package
        if info["licence_file"]:
            assert "Permission is hereby granted, free of charge" in (
                asv_site.ASSETS / info["licence_file"]).read_text(), package
    listed = {e["file"] for e in manifest["files"]} | {
        i["licence_file"] for i in manifest["packages"].values() if i["licence_file"]}
    assert {p.name for p in asv_site.ASSETS.iterdir()} == listed | {"SOURCES.json"}


def test_every_cdn_address_of_asvs_template_has_a_copy():
    import asv
    template = (Path(asv.__file__).parent / "www" / "index.html").read_text()
    page = asv_site.localised(template)
    assert not re.search(r"<(?:script|link)\b[^>]*\b(?:src|href)=\"(?:https?:)?//", page)
    assert page.count('src="vendor/') + page.count('href="vendor/') == len(
        asv_site.manifest()["files"])


def test_an_unknown_cdn_address_is_one_line_and_leaves_the_site_alone(tmp_path):
    page = ('<html><head><script src="https://code.jquery.com/jquery-3.3.1.min.js"></script>\n'
            '<script src="https://cdn.example.org/new.js"></script></head></html>')
    (tmp_path / "index.html").write_text(page)
    with pytest.raises(UserError, match=r"loads https://cdn\.example\.org/new\.js, which") as e:
        asv_site.localise(tmp_path)
    assert "\n" not in str(e.value)
    assert (tmp_path / "index.html").read_text() == page
    assert [p.name for p in tmp_path.iterdir()] == ["index.html"]


def test_publish_refuses_a_directory_asv_would_empty(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty and not an asv site"):
        asv_site.publish(tmp_path, RESULTS, ROOT / "asv.conf.json")
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The committed results published and localised; its base URL on 127.0.0.1."""
    html = tmp_path_factory.mktemp("asv") / "html"
    asv_site.publish(html, RESULTS, ROOT / "asv.conf.json")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Quiet, directory=str(html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield html, f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no chromium binary (apt-get install chromium): asv's page not opened")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


class Watched:
    """A page that records every script error, console error, failed or refused request:
    anything not for 127.0.0.1 is refused (the page must work offline)."""

    def __init__(self, browser):
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.errors, self.outside, self.failed, self.graphs = [], [], [], []
        self.context.route("**/*", self._route)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(
            f"console: {m.text}"))
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.url}: {r.failure}"))
        self.page.on("response", self._response)

    def _route(self, route):
        url = urlsplit(route.request.url)
        if url.scheme in ("http", "https") and url.hostname != "127.0.0.1":
            self.outside.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    def _response(self, response):
        if response.status >= 400:
            self.failed.append(f"{response.url}: HTTP {response.status}")
        elif "/graphs/" in response.url:
            self.graphs.append(unquote(urlsplit(response.url).path))

    def wait(self, condition, arg=None):
        """Wait for the JS `condition`; if it never holds, say what went wrong on the page."""
        from playwright.sync_api import Error
        try:
            self.page.wait_for_function(condition, arg=arg, timeout=10_000)
        except Error as e:
            raise AssertionError(f"{self.page.url}: {condition} never held; script errors "
                                 f"{self.errors}, refused {self.outside}, failed {self.failed}"
                                 f" ({str(e).splitlines()[0]})") from None

    def check(self):
        self.page.wait_for_load_state("networkidle")
        assert not urlsplit(self.page.url).path.endswith("error.html"), "a script did not load"
        assert self.errors == [] and self.outside == [] and self.failed == []

    def close(self):
        self.context.close()


@pytest.fixture
def watched(browser):
    page = Watched(browser)
    yield page
    page.close()


def _combinations(benchmark):
    return math.prod(len(values) for values in benchmark["params"]) or 1


def test_the_benchmark_list_shows_every_benchmark_of_every_machine(site, watched):
    _, base = site
    page = watched.page
    page.goto(base + "index.html#summarylist")
    rows = "$('#summarylist-body table:visible tbody tr')"  # asv keeps each machine's table, hidden
    watched.wait(f"{rows}.length > 0")
    for machine in MACHINES:
        page.locator("#summarylist-navigation a.btn", has_text=machine).click()
        watched.wait("m => $('#summarylist-navigation a.btn.active').filter((i, e) => "
                     f"e.innerText.trim() === m).length === 1 && {rows}.length > 0", machine)
        watched.check()
        cells = page.evaluate(f"{rows}.map((i, r) => [[r.cells[0].innerText, "
                              "r.cells[1].innerText]]).get()")
        names = {label.split(" (")[0] for label, _ in cells}
        assert names == set(BENCHMARKS), machine
        assert len(cells) == sum(_combinations(b) for b in BENCHMARKS.values()), machine
        # every benchmark has a value on the machine (a backend it never measured, such as
        # sklearn on the reference machine, leaves its own rows empty)
        valued = {label.split(" (")[0] for label, value in cells if value.strip()}
        assert valued == set(BENCHMARKS), (machine, set(BENCHMARKS) - valued)


@pytest.mark.parametrize("machine", MACHINES)
def test_a_graph_of_each_machine_draws_every_commit(site, watched, machine):
    _, base = site
    page = watched.page
    page.goto(base + f"index.html#{GRAPH}?machine={machine}")
    watched.wait("() => { const p = $('#main-graph').data('plot');"
                 " return p && p.getData().length > 0; }")
    watched.check()
    assert watched.graphs and all(f"/machine-{machine}/" in g for g in watched.graphs)
    finite = page.evaluate("$('#main-graph').data('plot').getData().map(s => s.data.filter("
                           "d => d[1] !== null && isFinite(d[1])).length)")
    commits = len([p for p in (RESULTS / machine).glob("*.json") if p.name != "machine.json"])
    assert max(finite) == commits, (machine, finite)
