"""How long does `bifrost-gitops report --base` take, and how fast does its page load?

    python benchmarks/bench_report.py            # 500 x 20 against one compile; 3,000 x 20 in chromium
    python benchmarks/bench_report.py --quick    # 50 x 5; 300 x 5 in chromium

Timed, in process, best of 3, each after gc.collect():
  report   htmlreport.build(base, head) (head loaded, matrix resolved, diffrun.run of both
           revisions) and the page rendered, on bench_diff.py's two revisions
  compile  the head as `compile --secrets redact` does it (bench_diff.run_compile)
Then the page of a 3,000-organization work tree (benchmarks/generate.py) is loaded in headless
Chromium (Debian's package): the page's own mark (performance.now() from its script's start to
the first rows drawn, and since navigation) is read back from the DOM (--dump-dom).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "src"))

from bench_diff import best_of, build, run_compile  # noqa: E402
from bifrost_gitops import htmlreport  # noqa: E402
from generate import generate  # noqa: E402
from installed import keep_bytecode  # noqa: E402


def page_load(orgs: int, integrations: int) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        print("page load: skipped (no chromium; apt-get install chromium)")
        return
    root = os.path.join(HERE, ".work", f"report-{orgs}x{integrations}")
    generate(root, orgs, integrations, 0, 0.5)
    with tempfile.TemporaryDirectory(dir=os.path.join(HERE, ".work")) as tmp:
        page = os.path.join(tmp, "report.html")
        t0 = time.perf_counter()
        m = htmlreport.write(root, page, None, None)
        t_write = time.perf_counter() - t0
        size = os.path.getsize(page)
        marks = []
        for _ in range(3):
            t0 = time.perf_counter()
            dom = subprocess.run(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp}/p"]
                + ["--virtual-time-budget=5000", "--dump-dom", "file://" + page],
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            ).stdout
            wall = time.perf_counter() - t0
            found = re.search(r'data-ms="([\d.]+)" data-total="([\d.]+)"', dom)
            assert found, "the page did not finish its script"
            drawn = len(re.findall(r'<div class="row">', dom))
            marks.append((float(found.group(1)), float(found.group(2)), wall, drawn))
    best = min(marks)
    print(f"page of {len(m.orgs)} x {len(m.integrations)}: written in {t_write:.2f} s, {size / 1e6:.2f} MB")
    print(f"| page script: parse data + first rows ({best[3]} rows drawn) | {best[0]:.0f} ms |")
    print(f"| page ready since navigation start | {best[1]:.0f} ms |")
    print(f"| chromium --dump-dom, whole process (start-up included) | {min(x[2] for x in marks):.2f} s |")


def main(argv: list[str] | None = None) -> int:
    keep_bytecode()
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    os.environ.setdefault("BIFROST_GITOPS_NO_CACHE", "1")  # cold runs; bench_cache.py measures the cache
    orgs, integs, big = (50, 5, 300) if a.quick else (500, 20, 3000)
    root = os.path.join(build(orgs, integs, 0), "repo")

    def report() -> tuple[htmlreport.Matrix, str]:
        m = htmlreport.build(root, "base", "head")
        return m, htmlreport.render(m)

    t_report, (m, page) = best_of(report)
    with tempfile.TemporaryDirectory(dir=os.path.join(HERE, ".work")) as tmp:
        t_compile, _ = best_of(lambda: run_compile(root, os.path.join(tmp, "bundle")))
    print(f"report: {m.changed_cells} changed cells, page {len(page) / 1e6:.2f} MB")
    print(f"| report --base base --head head ({orgs} x {integs}) | {t_report:.3f} s |")
    print(f"| compile --secrets redact (load head + write) | {t_compile:.3f} s |")
    print(f"report / compile = {t_report / t_compile:.2f}x")
    page_load(big, integs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
