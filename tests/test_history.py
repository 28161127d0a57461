"""`ffnbench history`: reading asv result files (commit order, values, skips, failures) and
one clear line for every unusable results directory."""
import json
import math
import shutil
import subprocess

import pytest

from ffnbench import cli
from ffnbench.commands import history as history_command
from ffnbench.core.errors import UserError
from ffnbench.report import history as history_report
from ffnbench.studies import history

COLUMNS = ["result", "params", "version", "started_at", "duration", "stats_ci_99_a",
           "stats_ci_99_b", "stats_q_25", "stats_q_75", "stats_number", "stats_repeat",
           "samples", "profile"]
BACKENDS = ["'python'", "'numpy'", "'numba'", "'torch'"]
ARCHS = ["'10'", "'50-30-20-10-5'"]


def result_file(commit, date_s, scale, env="virtualenv-py3.11-numpy2.4.6"):
    """An asv (format 2) result file; values grow with `scale` so commits are told apart."""
    nan = math.nan
    epoch = [scale * v for v in (0.04, 0.14, nan, nan, 0.03, 0.08, 0.08, 0.17,
                                 0.0005, 0.0014, 0.004, 0.012, 0.3, 0.9, 0.46, 1.4)]
    epoch[8] = None  # numba, 10, red failed in this run
    mse = [0.42 * scale, nan, 0.42 * scale, 0.45 * scale, 0.42 * scale, 0.45 * scale,
           0.42 * scale, 0.45 * scale]
    return {
        "commit_hash": commit, "env_name": env, "date": int(date_s * 1000),
        "params": {"machine": "m1"}, "python": "3.11", "requirements": {}, "env_vars": {},
        "result_columns": COLUMNS,
        "results": {
            history.TIME_EPOCH: [epoch, [BACKENDS, ARCHS, ["'red'", "'white'"]], "v1", 0, 1.0],
            history.TEST_MSE: [mse, [BACKENDS, ARCHS], "v2", 0, 1.0],
            history.EPOCHS_TO_TARGET: [[8, nan, 8, 15, 8, 15, 8, 15], [BACKENDS, ARCHS], "v3"],
            "bench_other.track_scalar": [[3.5], [], "v4"],
        },
        "durations": {}, "version": 2,
    }


def write(results, machine, name, data):
    d = results / machine
    d.mkdir(parents=True, exist_ok=True)
    (d / "machine.json").write_text(json.dumps({"machine": machine, "version": 1}))
    # asv writes NaN as a bare NaN token, which json.dumps does too
    (d / name).write_text(json.dumps(data))


@pytest.fixture
def results(tmp_path):
    r = tmp_path / "asv"
    # written out of order: the reader must order by commit, not by file name
    write(r, "m1", "cccccccc-env.json", result_file("c" * 40, 1_700_000_300, 3.0))
    write(r, "m1", "aaaaaaaa-env.json", result_file("a" * 40, 1_700_000_100, 1.0))
    write(r, "m1", "bbbbbbbb-env.json", result_file("b" * 40, 1_700_000_200, 2.0))
    return r


def test_runs_come_in_commit_order_with_their_values(results):
    machine, runs = history.load_runs(results)
    assert machine == "m1"
    assert [r.commit[0] for r in runs] == ["a", "b", "c"]
    assert runs[0].label.startswith("aaaaaaaa  2023-11-14")
    assert history.series(runs, history.TIME_EPOCH, ("numpy", "10", "red")) == pytest.approx([0.03, 0.06, 0.09])
    assert history.series(runs, history.TEST_MSE, ("torch", "50-30-20-10-5")) == pytest.approx([0.45, 0.9, 1.35])
    assert history.series(runs, history.EPOCHS_TO_TARGET, ("numba", "10")) == [8, 8, 8]
    assert runs[0].results["bench_other.track_scalar"] == {(): 3.5}


def test_skips_failures_and_unknown_params_are_nan(results):
    _, runs = history.load_runs(results)
    for params in (("python", "50-30-20-10-5", "red"),  # skipped: NaN in the file
                   ("numba", "10", "red"),  # failed: null in the file
                   ("numpy", "10", "rose")):  # never measured
        assert all(math.isnan(v) for v in history.series(runs, history.TIME_EPOCH, params))


def test_git_order_wins_over_equal_dates(tmp_path):
    """Two commits within one second: git's topological order decides."""
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {"GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"}
    git = lambda *a: subprocess.run(["git", "-C", str(repo), *a], env=env, check=True,
                                    capture_output=True, text=True).stdout.strip()
    git("init", "-q")
    commits = []
    for i in range(3):
        git("commit", "-q", "--allow-empty", "-m", f"c{i}")
        commits.append(git("rev-parse", "HEAD"))
    results = repo / "results" / "asv"
    # the newest commit gets the smallest hash-sorted file name and all share one date
    for i, c in enumerate(commits):
        write(results, "m1", f"{9 - i}-env.json", result_file(c, 1_767_225_600, i + 1.0))
    _, runs = history.load_runs(results)
    assert [r.commit for r in runs] == commits


def test_the_environment_with_most_commits_is_drawn(results):
    write(results, "m1", "dddddddd-existing.json",
          result_file("d" * 40, 1_700_000_400, 9.0, env="existing-py_usr_bin_python"))
    _, runs = history.load_runs(results)
    assert [r.commit[0] for r in runs] == ["a", "b", "c"]


def test_draw_writes_the_figures(results, tmp_path):
    out = tmp_path / "figs"
    machines, written = history_command.draw(results, out)
    assert list(machines) == ["m1"]
    names = sorted(p.name for p in written)
    assert names == ["history_seconds_per_epoch.png", "history_test_mse.png"]  # no mini-batch data
    for p in written:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporaries


@pytest.mark.parametrize("setup, message", [
    (lambda r: None, "no such directory"),
    (lambda r: r.mkdir(), "holds no asv results"),
    (lambda r: write(r, "m1", "machine.json", {"machine": "m1"}), "holds no asv results"),
    (lambda r: write(r, "m1", "x-env.json", {"commit_hash": "x"}), "not an asv result file"),
])
def test_unusable_results_are_one_line_errors(tmp_path, capsys, setup, message):
    r = tmp_path / "asv"
    setup(r)
    with pytest.raises(UserError, match=message):
        history.load_runs(r)
    code = cli.main(["history", "--results", str(r), "--out", str(tmp_path / "f")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("ffnbench: error:") and message in err
    assert err.count("\n") == 1


def test_several_machines_need_a_choice(results):
    write(results, "m2", "aaaaaaaa-env.json", result_file("a" * 40, 1_700_000_100, 1.0))
    with pytest.raises(UserError, match="several machines .*m1, m2.*--machine"):
        history.load_runs(results)
    assert history.load_runs(results, "m2")[0] == "m2"
    with pytest.raises(UserError, match="no results for machine 'm3'"):
        history.load_runs(results, "m3")


def test_results_without_the_plotted_benchmarks_are_an_error(tmp_path):
    data = result_file("a" * 40, 1_700_000_100, 1.0)
    data["results"] = {"bench_other.track_scalar": [[3.5], [], "v4"]}
    write(tmp_path / "asv", "m1", "a-env.json", data)
    with pytest.raises(UserError, match="no results of bench_epoch.TimeEpoch.time_epoch"):
        history_command.draw(tmp_path / "asv", tmp_path / "f")


def test_cli_prints_what_it_wrote(results, tmp_path, capsys):
    assert cli.main(["history", "--results", str(results), "--out", str(tmp_path / "f")]) == 0
    out = capsys.readouterr().out
    assert "3 commits of machine 'm1' (aaaaaaaa .. cccccccc)" in out
    assert "history_test_mse.png" in out


def test_an_out_that_is_a_file_is_one_line(results, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code = cli.main(["history", "--results", str(results), "--out", str(tmp_path / "file")])
    err = capsys.readouterr().err
    assert code == 2 and "--out" in err and "cannot create the directory" in err
    assert err.count("\n") == 1


def test_several_machines_side_by_side(results, tmp_path, capsys):
    write(results, "m2", "aaaaaaaa-env.json", result_file("a" * 40, 1_700_000_100, 5.0))
    machines, written = history_command.draw(results, tmp_path / "f", "m1,m2")
    assert {m: len(r) for m, r in machines.items()} == {"m1": 3, "m2": 1}
    assert len(written) == 2
    assert cli.main(["history", "--results", str(results), "--out", str(tmp_path / "g"),
                     "--machine", "m1,m3"]) == 2
    assert "no results for machine 'm3'" in capsys.readouterr().err


def test_the_hint_fits_where_the_command_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not a clone: no Makefile to run
    with pytest.raises(UserError, match="clone of the ffnbench repository") as e:
        history.load_runs(tmp_path / "asv")
    assert "make history" not in str(e.value)
    (tmp_path / "Makefile").write_text("")
    (tmp_path / "asv.conf.json").write_text("{}")
    with pytest.raises(UserError, match="make history"):
        history.load_runs(tmp_path / "asv")


def test_identical_series_share_one_line_and_every_backend_keeps_its_style():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ffnbench.report.style import backend_style
    runs = [history.Run(c * 40, None, "env", {"b": {("numpy",): v, ("numba",): v, ("torch",): v + 1}})
            for c, v in (("a", 1.0), ("b", 2.0))]
    fig, ax = plt.subplots()
    history_report._plot_backends(ax, runs, "b", ())
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"several backends, identical values", "torch"}
    assert lines["torch"].get_color() == backend_style("torch")["color"]
    assert [t.get_text() for t in ax.texts] == ["numpy = numba"]
    plt.close(fig)


def test_without_a_choice_every_machine_is_drawn_side_by_side(results, tmp_path):
    write(results, "m2", "aaaaaaaa-env.json", result_file("a" * 40, 1_700_000_100, 1.0))
    machines, written = history_command.draw(results, tmp_path / "f")
    assert list(machines) == ["m1", "m2"] and written


def test_a_backend_added_later_joins_the_identical_line():
    """jax appears only from the second commit, equal to numpy there: one line, one label
    (two would be written over each other), drawn over every commit either has."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    runs = [history.Run(c * 40, None, "env", {"b": {("numpy",): v, **({("jax",): v} if c != "a" else {})}})
            for c, v in (("a", 1.0), ("b", 2.0), ("c", 3.0))]
    fig, ax = plt.subplots()
    history_report._plot_backends(ax, runs, "b", ())
    assert [t.get_text() for t in ax.texts] == ["numpy = jax"]
    assert [list(line.get_ydata()) for line in ax.get_lines()] == [[1.0, 2.0, 3.0]]
    assert not history_report._same([math.nan, math.nan], [1.0, 1.0])  # nothing in common: not same
    plt.close(fig)


def test_commit_labels_say_every_kth_in_english():
    assert [history_report._ordinal(k) for k in (2, 3, 4, 11, 12, 13, 21, 22, 103)] == \
        ["2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "103rd"]


def _drawn(monkeypatch, plot, machines):
    """The figure `plot` draws, kept open instead of saved."""
    figures = []
    monkeypatch.setattr(history_report, "save_figure", lambda fig, path: figures.append(fig) or path)
    plot(machines, "unused.png")
    return figures[0]


def _rows(fig):
    """{row index: [y-limits of each panel in that row, every machine's block]}"""
    rows = {}
    for sub in fig.subfigs:
        for ax in sub.axes:
            rows.setdefault(ax.get_subplotspec().rowspan.start, []).append(ax.get_ylim())
    return rows


@pytest.mark.parametrize("plot, benchmark, first_row", [
    (history_report.plot_seconds_per_epoch, history.TIME_EPOCH, ("red",)),
    (history_report.plot_test_mse, history.TEST_MSE, ())])
def test_a_row_shares_its_y_limits_across_nets_and_machines(results, monkeypatch, plot,
                                                            benchmark, first_row):
    import matplotlib.pyplot as plt
    write(results, "m2", "aaaaaaaa-env.json", result_file("a" * 40, 1_700_000_100, 5.0))
    machines = {m: history.load_runs(results, m)[1] for m in ("m1", "m2")}
    fig = _drawn(monkeypatch, plot, machines)
    assert len(fig.subfigs) == 2  # one block per machine, stacked
    rows = _rows(fig)
    assert len(rows) == 2 and all(len(limits) == 2 * len(ARCHS) for limits in rows.values())
    for limits in rows.values():
        assert len(set(limits)) == 1, limits
    # and they hold every value of the row, m2's (5 times m1's first commit) too
    lo, hi = rows[0][0]
    values = [v for runs in machines.values() for backend in BACKENDS for arch in ARCHS
              for v in history.series(runs, benchmark, (backend.strip("'"), arch.strip("'"), *first_row))
              if not math.isnan(v)]
    assert lo <= min(values) and max(values) <= hi
    plt.close(fig)


def test_figures_stay_legible_at_readme_width(results, monkeypatch):
    """Scaled to 900 px wide (the README's width on GitHub) the smallest text is still 10 px
    high, and at most MAX_COMMIT_LABELS hashes sit under a panel."""
    import matplotlib.pyplot as plt
    from matplotlib.text import Text
    many = [history.Run(f"{i:040x}", None, "env", {history.TIME_EPOCH: {("numpy", "10", "red"): 1.0 + i}})
            for i in range(40)]
    fig = _drawn(monkeypatch, history_report.plot_seconds_per_epoch, {"m1": many})
    fig.canvas.draw()
    texts = [t for t in fig.findobj(Text) if t.get_text().strip() and t.get_visible()]
    smallest_pt = min(t.get_fontsize() for t in texts)
    assert smallest_pt / 72 * 900 / fig.get_size_inches()[0] >= 10
    labels = [t.get_text() for t in fig.subfigs[0].axes[0].get_xticklabels() if t.get_text()]
    assert 2 <= len(labels) <= history_report.MAX_COMMIT_LABELS
    assert labels[-1] == many[-1].commit[:7]  # the newest commit is always named
    assert "every 7th labelled" in fig.subfigs[0].get_supxlabel()
    plt.close(fig)


def test_round_off_in_a_row_is_not_zoomed_and_names_keep_clear_of_the_title(monkeypatch):
    import matplotlib.pyplot as plt
    runs = [history.Run(c * 40, None, "env", {
        history.TEST_MSE: {("numpy", "10"): 0.42 + d, ("numpy", "20"): 0.42 + 2 * d},
        history.EPOCHS_TO_TARGET: {("numpy", "10"): 8, ("numba", "10"): 8, ("numpy", "20"): 9,
                                   ("numba", "20"): 9}})
        for c, d in (("a", 0.0), ("b", 1e-9))]
    fig = _drawn(monkeypatch, history_report.plot_test_mse, {"m1": runs})
    mse, epochs = _rows(fig)[0], _rows(fig)[1]
    assert mse[0] == mse[1] == pytest.approx((0.42 * 0.95, 0.42 * 1.05))
    assert epochs[0] == epochs[1] == (6.5, 10.5)
    places = []  # the epochs row: 8 in the lower half of 6.5..10.5, 9 in the upper
    for ax in fig.subfigs[0].axes:
        for note in ax.texts:
            above = (ax.transData + ax.transAxes.inverted()).transform(note.xy)[1] > 0.5
            assert (note.get_va() == "top") == above and (note.xyann[1] < 0) == above
            places.append(above)
    assert sorted(places) == [False, True]
    plt.close(fig)


def test_long_names_of_an_identical_line_wrap():
    assert history_report._joined(["numpy", "numba"]) == "numpy = numba"
    text = history_report._joined(["python", "numpy", "numba", "torch", "jax", "c"])
    assert text == "python = numpy = numba = torch =\njax = c"


def test_a_machine_without_results_does_not_stretch_the_row(monkeypatch):
    """m2 has no mini-batch results ('no results' panels): m1's rows keep their own limits."""
    import matplotlib.pyplot as plt
    m1 = [history.Run(c * 40, None, "env", {history.TIME_MINIBATCH: {
        ("numpy", "10", "white", "32"): v, ("numba", "10", "white", "32"): v / 10}})
        for c, v in (("a", 0.01), ("b", 0.02))]
    m2 = [history.Run("d" * 40, None, "env", {history.TIME_EPOCH: {("numpy", "10", "red"): 1.0}})]
    fig = _drawn(monkeypatch, history_report.plot_minibatch, {"m1": m1, "m2": m2})
    (lo, hi), = set(_rows(fig)[0])
    assert 0.0005 < lo <= 0.001 and 0.02 <= hi < 0.04
    assert [t.get_text() for t in fig.subfigs[1].axes[0].texts] == ["no results"]
    plt.close(fig)
