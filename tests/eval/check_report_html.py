#!/usr/bin/env python3
"""report.html renders in a real browser (issue 5, docs/gates.md).

For each sample report (tests/eval/data/report_{moe,dense}.json) this runs
`character report DIR`, opens the written report.html in headless Chromium and
fails on: a console message (a JS exception, a CSP violation from a network load,
anything logged), a page whose script did not run (no data-rendered="1" on
<body>), missing or fewer SVG charts than expected, or the sample's hostile model
answer having become markup (data-injected set, an <img> element in the DOM).

First it proves the detector works on this Chromium: a page that throws must be
reported as failing. `--screenshot DIR` also saves PNGs to look at.
"""
import argparse
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

SOURCE = pathlib.Path(__file__).resolve().parents[2]
SAMPLES = {"report_moe.json": 8, "report_dense.json": 2}  # sample → SVG charts in its page


def chromium_binary():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("check_report_html: no chromium on PATH (scripts/setup.sh installs Debian's `chromium`)")


def run_chromium(page, profile, extra):
    """Loads `page`; returns (stdout, stderr) of a headless Chromium."""
    command = [chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-extensions", "--enable-logging=stderr", "--v=0", f"--user-data-dir={profile}",
               "--virtual-time-budget=5000", *extra, page.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited {done.returncode} on {page}:\n{done.stderr[-3000:]}")
    return done.stdout, done.stderr


def console_lines(stderr):
    """Console messages Chromium logged (`INFO:CONSOLE(12)] "..."` or `:CONSOLE:12] "..."`)."""
    return [line for line in stderr.splitlines() if re.search(r":CONSOLE[(:]", line)]


def problems_of(dom, stderr, charts):
    found = [f"console: {line}" for line in console_lines(stderr)]
    body = re.search(r"<body([^>]*)>", dom)
    attributes = body.group(1) if body else ""
    if 'data-rendered="1"' not in attributes:
        found.append("the page's script did not run (no data-rendered=\"1\" on <body>)")
    if "data-injected" in attributes:
        found.append("a model answer became markup: data-injected is set")
    if re.search(r"<img\b", dom):
        found.append("an <img> element exists: escaped text became markup")
    svgs = len(re.findall(r"<svg\b", dom))
    if charts is not None and svgs != charts:
        found.append(f"{svgs} SVG charts rendered, expected {charts}")
    match = re.search(r'data-charts="(\d+)"', attributes)
    if charts is not None and (not match or int(match.group(1)) != charts):
        found.append(f"the script counted {match.group(1) if match else 'no'} svg.chart elements, expected {charts}")
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--character", required=True, help="the built `character` binary")
    parser.add_argument("--screenshot", help="also save a PNG of each page into this directory")
    args = parser.parse_args()
    failures = []
    with tempfile.TemporaryDirectory(prefix="character-report-html-") as tmp:
        tmp = pathlib.Path(tmp)
        # The detector must catch a throwing script on this Chromium, or this check proves nothing.
        broken = tmp / "broken.html"
        broken.write_text("<!DOCTYPE html><html><body><script>throw new Error('deliberate');</script></body></html>")
        dom, stderr = run_chromium(broken, tmp / "profile-broken", ["--dump-dom"])
        if not any("deliberate" in line for line in console_lines(stderr)):
            sys.exit("check_report_html: Chromium did not log the deliberate exception; cannot detect console "
                     f"errors with this browser.\nstderr:\n{stderr[-2000:]}")
        if not problems_of(dom, stderr, None):
            sys.exit("check_report_html: the deliberately broken page was not reported as failing")

        for sample, charts in SAMPLES.items():
            eval_dir = tmp / sample.removesuffix(".json")
            eval_dir.mkdir()
            shutil.copy(SOURCE / "tests/eval/data" / sample, eval_dir / "report.json")
            done = subprocess.run([args.character, "report", str(eval_dir)], capture_output=True, text=True, timeout=60)
            if done.returncode != 0:
                failures.append(f"{sample}: `character report` exited {done.returncode}: {done.stderr.strip()}")
                continue
            page = eval_dir / "report.html"
            dom, stderr = run_chromium(page, tmp / f"profile-{sample}", ["--dump-dom"])
            for problem in problems_of(dom, stderr, charts):
                failures.append(f"{sample}: {problem}")
            if sample == "report_moe.json" and "&lt;img src=x onerror=" not in dom:
                failures.append(f"{sample}: the hostile answer is not shown as text")
            if args.screenshot:
                out = pathlib.Path(args.screenshot)
                out.mkdir(parents=True, exist_ok=True)
                run_chromium(page, tmp / f"profile-shot-{sample}",
                             [f"--screenshot={out / (eval_dir.name + '.png')}", "--window-size=1200,2600",
                              "--hide-scrollbars"])
            print(f"{sample}: rendered, {charts} charts, no console messages" if not failures else f"{sample}: checked")
    if failures:
        print("\n".join(failures), file=sys.stderr)
        return 1
    print("report.html renders in headless Chromium without console errors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
