"""The report machinery: offline equations, the Markdown subset, the rules every figure
obeys, a runner that survives missing and failing studies, and deterministic output."""

from __future__ import annotations

import base64
import os
import re
import sys
import textwrap
import time

import pytest

matplotlib = pytest.importorskip("matplotlib")

from gradflow import cells  # noqa: E402
from gradflow.errors import InvalidArgumentError  # noqa: E402
from gradflow.report import Figure, Section, Table  # noqa: E402
from gradflow.report.html import markdown_to_html  # noqa: E402
from gradflow.report.mathrender import (  # noqa: E402
    _layout_rows, latex_rows, mathtext_ok, render_display, render_inline, simplify, split_terms)
from gradflow.report.runner import check_section, run_report  # noqa: E402
from gradflow.report.style import new_figure  # noqa: E402


# ---------------------------------------------------------------- equations
def test_latex_rows_split_aligned_blocks():
    tex = "\\begin{aligned}\na &= b \\\\\nc &= d + e\n\\end{aligned}\n\\qquad\n\\begin{aligned}\nx = y\n\\end{aligned}"
    assert latex_rows(tex) == [["a", "= b"], ["c", "= d + e"], ["x = y"]]


def test_split_terms_only_at_top_level():
    assert split_terms(r"a + \left(b + c\right) W - d_{t} + f(x + y)") == [
        "a", r"+ \left(b + c\right) W", "- d_{t}", "+ f(x + y)"]


def test_simplify_maps_unsupported_commands():
    assert not mathtext_ok(r"a \le b")
    assert mathtext_ok(simplify(r"a \le b"))
    assert simplify(r"\operatorname{diag}\left(f\right)") == r"\mathrm{diag}(f)"


@pytest.mark.parametrize("name", cells.names())
def test_every_catalogue_equation_and_jacobian_renders_offline(name):
    """Every row of SymPy's LaTeX for every cell is accepted by mathtext as it is or simplified."""
    spec = cells.get(name)
    for tex in (spec.latex(), spec.jacobian().latex()):
        rows = latex_rows(tex)
        lines, failed, _ = _layout_rows(rows, 12.0)
        assert failed == []
        assert len(lines) >= len(rows)  # long rows are broken, none is dropped


def test_rendered_equation_is_svg_with_glyph_paths_and_no_date():
    r = render_display(cells.get("lstm").jacobian().latex())
    assert r.ok and r.width > 100 and r.height > 50
    svg = r.svg.decode()
    assert svg.lstrip().startswith("<?xml") and "<path" in svg
    assert "<dc:date>" not in svg
    assert render_display(cells.get("lstm").jacobian().latex()).svg == r.svg  # deterministic


def test_unrenderable_math_falls_back_to_source():
    html = markdown_to_html("Before\n\n$$\n\\unknowncommand{x} = 1\n$$\n\nand $\\alsounknown{y}$ inline.")
    assert '<pre class="latex"' in html and "unknowncommand" in html
    assert "<code>\\alsounknown{y}</code>" in html
    inline = render_inline(r"\sigma(a)")
    assert inline.ok and inline.depth > 0


def test_the_note_on_equations_only_where_there_are_some():
    from gradflow.report import StudyConfig
    from gradflow.report.html import to_html

    plain = Section(key="plain", title="Plain", text="No mathematics here.")
    maths = Section(key="maths", title="Maths", text="A norm: $\\|x\\|_2$.")
    assert "Equations rendered" not in to_html([plain], StudyConfig(), {}, title="t", preface="p")
    page = to_html([plain, maths], StudyConfig(), {}, title="t", preface="p")
    assert "mathtext: 1 rendered" in page


def test_markdown_subset():
    html = markdown_to_html(textwrap.dedent("""\
        ### Head `code`

        A **bold** and *italic* [link](data/x.csv) with $x^2$.

        - one
        - two
          continued

        1. first
        """))
    assert "<h4>Head <code>code</code></h4>" in html
    assert "<strong>bold</strong>" in html and "<em>italic</em>" in html
    assert '<a href="data/x.csv">link</a>' in html
    assert re.search(r'<img class="im" alt="x\^2" src="data:image/svg\+xml;base64,', html)
    assert "<ul><li>one</li><li>two continued</li></ul>" in html
    assert "<ol><li>first</li></ol>" in html


# ---------------------------------------------------------------- figure rules
def _figure(name="f", x=(0, 1, 2), y=(1.0, 2.0, 3.0), xlabel="lag (steps)", ylabel="norm (1)"):
    fig, ax = new_figure()
    ax.plot(x, y)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return Figure(name=name, figure=fig, caption="What to see.", data={"x": list(x), "y": list(y)})


def test_check_section_accepts_a_good_figure():
    assert check_section(Section("k", "t", figures=[_figure()])) == []


@pytest.mark.parametrize("broken, message", [
    (dict(y=(1.0, float("nan"), 3.0)), "NaN"),
    (dict(xlabel=""), "label"),
    (dict(y=(1.0, 2.0)), "unequal"),
])
def test_check_section_rejects_broken_figures(broken, message):
    fig = _figure(**{k: v for k, v in broken.items() if k != "y"})
    if "y" in broken:
        fig.data["y"] = list(broken["y"])
    problems = check_section(Section("k", "t", figures=[fig]))
    assert any(message in p for p in problems), problems


def test_check_section_rejects_an_empty_axes():
    fig, ax = new_figure()
    ax.set_xlabel("a (1)")
    ax.set_ylabel("b (1)")
    problems = check_section(Section("k", "t", figures=[
        Figure("e", fig, "caption", {"x": [1.0]})]))
    assert any("empty" in p for p in problems)


# ---------------------------------------------------------------- runner
_GOOD = '''
import numpy as np
from gradflow.report import Figure, Section, Table
from gradflow.report.style import new_figure
TITLE = "A good study"
def run(config):
    rng = np.random.default_rng(config.seed)
    y = rng.standard_normal(5).cumsum()
    fig, ax = new_figure()
    ax.plot(np.arange(5), y)
    ax.set_xlabel("lag (steps)")
    ax.set_ylabel("value (1)")
    return Section(key="good", title=TITLE, text="Text with $\\\\sigma(a)$.\\n\\n$$\\na &= b\\n$$",
                   figures=[Figure("curve", fig, "A curve.", {"lag": np.arange(5), "y": y})],
                   tables=[Table("t", ["a", "b"], [[1, 2.5]], "A table.")], data={"y": y})
'''
_BAD = '''
TITLE = "A failing study"
def run(config):
    raise RuntimeError("boom")
'''


@pytest.fixture
def studies(tmp_path):
    folder = tmp_path / f"studies_{tmp_path.name.replace('-', '_')}"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "good.py").write_text(_GOOD)
    (folder / "bad.py").write_text(_BAD)
    yield folder
    for mod in [m for m in sys.modules if m.startswith(folder.name)]:
        del sys.modules[mod]


def test_runner_survives_missing_and_failing_studies(studies, tmp_path):
    out = tmp_path / "out"
    result = run_report(out, folder=studies, progress=False)
    assert list(result.failed) == ["bad"] and "boom" in result.failed["bad"]
    assert result.skipped == []  # a folder's report is about its own studies only
    assert result.problems == []
    md = (out / "index.md").read_text()
    assert "A good study" in md and "This study failed to run" in md
    assert (out / "figures" / "good-curve.svg").exists()
    rows = (out / "data" / "good-curve.csv").read_text().splitlines()
    assert rows[0] == "lag,y" and len(rows) == 6
    assert (out / "data" / "good-t.csv").read_text().splitlines() == ["a,b", "1,2.5"]


def test_runner_rejects_unknown_study_and_format(studies, tmp_path):
    with pytest.raises(InvalidArgumentError, match="unknown studies"):
        run_report(tmp_path / "o", folder=studies, only=["nope"], progress=False)
    with pytest.raises(InvalidArgumentError, match="formats"):
        run_report(tmp_path / "o", folder=studies, formats=["pdf"], progress=False)


def test_same_seed_same_bytes_and_seed_matters(studies, tmp_path):
    def files(out):
        return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    a = files(run_report(tmp_path / "a", folder=studies, only=["good"], progress=False).out)
    b = files(run_report(tmp_path / "b", folder=studies, only=["good"], progress=False).out)
    c = files(run_report(tmp_path / "c", folder=studies, only=["good"], seed=1, progress=False).out)
    assert a == b
    assert a["data/good-curve.csv"] != c["data/good-curve.csv"]


def test_html_is_self_contained(studies, tmp_path):
    out = run_report(tmp_path / "h", folder=studies, only=["good"], progress=False).out
    html = (out / "index.html").read_text()
    assert not re.search(r'<(script|link|iframe)\b', html)
    srcs = re.findall(r'src="([^"]+)"', html)
    assert srcs and all(s.startswith("data:image/svg+xml;base64,") for s in srcs)
    assert all(base64.b64decode(s.split(",", 1)[1]).lstrip().startswith(b"<?xml") for s in srcs)
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html


def test_cli_returns_nonzero_when_a_study_fails(studies, tmp_path, monkeypatch, capsys):
    from gradflow.cli import main

    code = main(["report", "--out", str(tmp_path / "cli"), "--no-progress", "--jobs", "1",
                 "--studies", str(studies)])
    assert code == 1
    assert "study 'bad' failed" in capsys.readouterr().err
    code = main(["report", "--out", str(tmp_path / "cli2"), "--only", "good", "--format", "md",
                 "--no-progress", "--studies", str(studies)])
    assert code == 0
    assert (tmp_path / "cli2" / "index.md").exists() and not (tmp_path / "cli2" / "index.html").exists()


def test_check_section_rejects_names_whose_data_files_collide():
    section = Section("k", "t", figures=[_figure(name="same")],
                      tables=[Table("same", ["a"], [[1]], "caption")])
    assert any("share this name" in p for p in check_section(section))


def test_studies_come_from_the_package_entry_points_or_a_folder(studies, tmp_path, monkeypatch):
    from gradflow.report import studies as discovery

    # gradflow's own: the installed package, not whatever 'analysis' folder is around
    stray = tmp_path / "analysis"
    stray.mkdir()
    (stray / "stray.py").write_text("raise SystemExit('a stray analysis folder was imported')")
    monkeypatch.chdir(tmp_path)
    own = discovery.collect()
    assert own[0].package == "gradflow.studies" and "stray" not in own[0].keys
    assert own[0].keys[:3] == ["vanishing", "cell_state", "forget_bias"]
    # another package's studies, declared in the entry-point group
    site = tmp_path / "site"
    (site / "other_studies").mkdir(parents=True)
    (site / "other_studies" / "__init__.py").write_text("")
    (site / "other_studies" / "extra.py").write_text(_GOOD.replace('key="good"', 'key="extra"'))
    info = site / "other_studies-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: other-studies\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[gradflow.studies]\nother = other_studies\n")
    monkeypatch.syspath_prepend(str(site))
    keys = [k for source in discovery.collect() for k in source.keys]
    assert "extra" in keys and keys.index("extra") > keys.index("claims")
    (site / "other_studies" / "vanishing.py").write_text(_GOOD)
    with pytest.raises(InvalidArgumentError, match="'vanishing' is offered by"):
        discovery.collect()
    # a folder of one's own: only its studies
    assert [s.keys for s in discovery.collect(studies)] == [["bad", "good"]]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidArgumentError, match="no study modules"):
        run_report(tmp_path / "o", folder=empty, progress=False)
    with pytest.raises(InvalidArgumentError, match="not a folder"):
        run_report(tmp_path / "o", folder=tmp_path / "missing", progress=False)
    assert "gradflow_user_studies" not in " ".join(p for p in sys.path)


def test_a_folder_of_studies_runs_on_worker_processes(tmp_path):
    """A user's folder is not importable by name in joblib's workers: its functions are
    sent by value, and its helper module (a relative import) goes with them."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "_helpers.py").write_text("def square(v):\n    return v * v\n")
    (folder / "grid.py").write_text(_GOOD.replace(
        "    rng = np.random.default_rng(config.seed)\n",
        "    from gradflow._processes import parallel\n"
        "    from joblib import delayed\n"
        "    from ._helpers import square\n"
        "    got = parallel(2)(delayed(square)(v) for v in range(4))\n"
        "    assert got == [0, 1, 4, 9], got\n"
        "    rng = np.random.default_rng(config.seed)\n").replace('key="good"', 'key="grid"'))
    result = run_report(tmp_path / "out", folder=folder, n_jobs=2, progress=False)
    assert result.ok and [s.key for s in result.sections] == ["grid"]


# ---------------------------------------------------------------- the output folder
def _signature(out):
    """(seed of index.md, seed of index.html, sorted file list) of a report folder."""
    md = (out / "index.md").read_text()
    html = (out / "index.html").read_text()
    seed = re.compile(r"seed (\d+)")
    return seed.search(md).group(1), seed.search(html).group(1), sorted(
        p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())


def test_out_is_checked_before_any_study_runs(studies, tmp_path):
    (studies / "marker.py").write_text(
        "TITLE = 'marks that it ran'\n"
        "def run(config):\n"
        f"    open({str(tmp_path / 'RAN')!r}, 'w').close()\n"
        "    raise RuntimeError('should not run')\n")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious")
    with pytest.raises(InvalidArgumentError, match="notes.txt"):
        run_report(mine, folder=studies, progress=False)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InvalidArgumentError, match="cannot be written"):
        run_report(blocker / "sub" / "out", folder=studies, progress=False)
    with pytest.raises(InvalidArgumentError, match="not a folder"):
        run_report(blocker, folder=studies, progress=False)
    assert not (tmp_path / "RAN").exists()
    assert (mine / "notes.txt").read_text() == "precious"


def test_an_unwritable_out_is_refused_before_any_study(studies, tmp_path):
    from .subproc import run_python

    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        proc = run_python(f"""
            import os, sys, time
            from gradflow.cli import main
            t = time.perf_counter()
            code = main(["report", "--out", {str(parent / "out")!r}, "--no-progress",
                         "--studies", {str(studies)!r}])
            print(code, time.perf_counter() - t)
        """, drop_dac=True, check=False, cwd=tmp_path)
    finally:
        parent.chmod(0o755)
    code, seconds = proc.stdout.split()
    assert code == "2", proc.stderr
    assert "cannot be written" in proc.stderr and "Permission denied" in proc.stderr
    assert not (parent / "out").exists()


def test_only_into_an_existing_report_replaces_it_whole(studies, tmp_path):
    (studies / "bad.py").unlink()
    (studies / "other.py").write_text(_GOOD.replace('key="good"', 'key="other"'))
    out = tmp_path / "out"
    run_report(out, folder=studies, progress=False)
    assert (out / "figures" / "other-curve.svg").exists()
    run_report(out, folder=studies, only=["good"], seed=1, progress=False)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert not any("other" in f for f in files), files
    assert _signature(out)[:2] == ("1", "1")
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    assert leftovers == []


def test_a_failure_while_writing_leaves_the_old_report(studies, tmp_path, monkeypatch):
    from gradflow.report import writer

    out = tmp_path / "out"
    run_report(out, folder=studies, only=["good"], progress=False)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(writer, "to_html", broken)
    with pytest.raises(OSError, match="disk full"):
        run_report(out, folder=studies, only=["good"], seed=1, progress=False)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")] == []


_MANY_FIGURES = '''
import numpy as np
from gradflow.report import Figure, Section
from gradflow.report.style import new_figure
TITLE = "Many figures"
def run(config):
    figures = []
    for k in range(30):
        fig, ax = new_figure()
        y = np.random.default_rng([config.seed, k]).standard_normal(400).cumsum()
        ax.plot(np.arange(400), y)
        ax.set_xlabel("lag (steps)")
        ax.set_ylabel("value (1)")
        figures.append(Figure(f"f{k}", fig, "A curve.", {"lag": np.arange(400), "y": y}))
    return Section(key="many", title=TITLE, text="Text.", figures=figures)
'''


def test_a_kill_at_any_moment_leaves_the_old_report_or_the_new(studies, tmp_path):
    import signal

    from .subproc import start_python

    (studies / "bad.py").unlink()
    (studies / "good.py").unlink()
    (studies / "many.py").write_text(_MANY_FIGURES)
    out = tmp_path / "out"

    def script(seed):
        return f"""
            from pathlib import Path
            from gradflow.report.runner import run_report
            run_report({str(out)!r}, folder=Path({str(studies)!r}), seed={seed}, progress=False)
        """

    from .subproc import run_python

    run_python(script(0), cwd=tmp_path)
    old = _signature(out)
    assert old[:2] == ("0", "0")
    outcomes = set()
    for delay in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0):
        proc = start_python(script(1), cwd=tmp_path)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        sig = _signature(out)
        if sig[:2] == ("1", "1"):
            outcomes.add("new")
            assert sig[2] == old[2]  # the new report is complete: the same files
            run_python(script(0), cwd=tmp_path)
        else:
            assert sig == old, f"a mix after a kill at {delay} s"
            outcomes.add("old")
    assert "old" in outcomes


def test_worker_processes_end_with_a_killed_report(studies, tmp_path):
    import signal

    from .subproc import start_python

    (studies / "bad.py").unlink()
    (studies / "sleepy.py").write_text(
        "TITLE = 'sleeps in two workers'\n"
        "def run(config):\n"
        "    import time\n"
        "    from joblib import delayed\n"
        "    from gradflow._processes import parallel\n"
        "    parallel(2)(delayed(time.sleep)(120) for _ in range(2))\n")
    proc = start_python(f"""
        from pathlib import Path
        from gradflow.report.runner import run_report
        run_report({str(tmp_path / 'out')!r}, folder=Path({str(studies)!r}), only=["sleepy"],
                   n_jobs=2, progress=False)
    """, cwd=tmp_path)

    def descendants(pid):
        kids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as fh:
                        ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
                except OSError:
                    continue
                if ppid == pid:
                    kids += [int(entry)] + descendants(int(entry))
        return kids

    deadline = time.time() + 60
    workers = []
    while time.time() < deadline and len(workers) < 2:
        time.sleep(0.5)
        workers = descendants(proc.pid)
    assert len(workers) >= 2, "the study's workers did not start"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    def running(pid):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    deadline = time.time() + 15
    alive = workers
    while alive and time.time() < deadline:
        time.sleep(0.5)
        alive = [w for w in workers if running(w)]
    assert alive == [], f"worker processes {alive} outlived the killed report"


def test_layout_rules_find_cut_off_and_overlapping_text():
    from gradflow.plot import new_figure
    from gradflow.report.style import layout_problems

    fig, ax = new_figure(width=3.0, height=1.2)
    ax.plot([0, 1], [0, 1])
    ax.set_ylabel("a label far too long for so short a figure (units)")
    ax.set_xlabel("x (1)")
    assert any("cut off" in p for p in layout_problems(fig))
    fig, axes = new_figure(ncols=3, width=4.0, height=2.0)
    for a in axes:
        a.plot([0, 1], [0, 1])
        a.set_xlabel("a long x label under every narrow panel")
        a.set_ylabel("y (1)")
    assert any("overlaps" in p for p in layout_problems(fig))
    fig, axes = new_figure(ncols=2, width=6.0, height=3.0)
    for a in axes:
        a.plot([0, 1], [0, 1])
    fig.supxlabel("a shared x label (1)")
    fig.supylabel("y (1)")
    assert layout_problems(fig) == []


def test_without_matplotlib_the_report_says_what_to_install_and_writes_nothing(tmp_path):
    from .subproc import run_python

    proc = run_python(f"""
        import sys
        sys.modules["matplotlib"] = None  # import matplotlib raises ImportError
        from gradflow.cli import main
        raise SystemExit(main(["report", "--quick", "--out", {str(tmp_path / "out")!r}]))
    """, check=False, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert 'pip install "gradflow-rnn[report]"' in proc.stderr
    assert proc.stderr.count("matplotlib") == 1  # one message, not one per study
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_command_line_says_when_kernels_compile(tmp_path):
    from .subproc import run_python

    proc = run_python("""
        from gradflow.cli import main
        raise SystemExit(main(["train", "adding", "--cell", "rnn", "--length", "20",
                               "--max-sequences", "32", "--test-size", "32", "--quiet"]))
    """, env={"GRADFLOW_CACHE_DIR": str(tmp_path / "cache")}, check=False, cwd=tmp_path)
    assert "gradflow: compiling kernels for 'rnn' (float64), its first use" in proc.stderr
