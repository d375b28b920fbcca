"""The widgets and an inline figure in a real JupyterLab, driven by headless Chromium (opt-in).

Run with ``pytest -m browser tests/test_browser.py``; needs Debian's ``chromium`` and
``chromium-driver`` (``apt-get install chromium chromium-driver``) and ``selenium`` (test extra).
A JupyterLab server is started on a free port over a temporary folder holding a small notebook that
builds the three widgets (trajectory viewer, sparsity explorer, Gantt explorer) and saves a figure;
Chromium opens it, runs all cells, moves the trajectory slider with the keyboard (a round trip
through the kernel) and saves screenshots under ``results/browser/`` (look at them).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from xflow import paths
from xflow.notebooks import ensure_kernel

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

DEMO = [
    '''QUICK = True  # unused: the demo has no profile''',
    '''
from xflow import viz
from xflow.graphs.builders import make_inception_like
from xflow.rewrites import candidates
viz.use_style()
m0 = make_inception_like()
c1 = next(c for c in candidates(m0) if c.rule == "merge_sibling_convs")
c2 = candidates(c1.model)[0]
viz.TrajectoryViewer([m0, c1.model, c2.model], [1.0, 0.9, 0.85], [c1.rule, c2.rule], measured=[1.0, 1.05, 0.97],
                     title="trajectory viewer")
''',
    '''
import pandas as pd
rows = [{"dataset": "cora", "model": "gcn", "seed": s, "delta_a": a, "delta_w": w,
         "test_acc": 0.81 - 0.12 * a - 0.04 * w + 0.01 * s, "edge_sparsity": 0.45 * a, "weight_sparsity": 0.5 * w,
         "macs": 1e7 * (1 - 0.45 * a) * (1 - 0.5 * w)} for s in (0, 1) for a in (0.0, 0.5, 1.0) for w in (0.0, 1.0)]
viz.SparsityExplorer(pd.DataFrame(rows), title="sparsity explorer")
''',
    '''
from dataclasses import dataclass
@dataclass
class Ev:
    worker: int; op: str; start_ms: float; end_ms: float; stage: int
pred = [Ev(0, "Conv", 0, 4, 0), Ev(0, "Relu", 4, 5, 1), Ev(1, "Conv", 4, 6, 1), Ev(0, "Concat", 6, 7, 2)]
meas = [Ev(0, "Conv", 0, 5, 0), Ev(0, "Relu", 5, 6, 1), Ev(1, "Conv", 5, 8, 1), Ev(0, "Concat", 8, 9, 2)]
viz.GanttExplorer({"predicted": pred, "measured": meas}, title="Gantt explorer")
''',
    '''
fig, ax = viz.figure(width="column")
ax.plot([0, 1, 2], [1.0, 0.8, 0.9], marker="o", label="cost")
viz.legend_outside(ax, where="right")
viz.save(fig, "browser_inline_check")
''',
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout: float) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"no answer from {url} within {timeout:.0f} s")


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server over a folder holding the demo notebook; yields (base URL, token, notebook name)."""
    if not (CHROMIUM and DRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    pytest.importorskip("selenium")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src.strip()) for src in DEMO]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "xflow", "display_name": "xflow (.venv)", "language": "python"}
    nbformat.write(nb, tmp_path / "widgets_demo.ipynb")
    ensure_kernel()
    port, token = _free_port(), "xflow-browser-test"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(paths.repo_root()), os.environ.get("PYTHONPATH", "")]),
           "XFLOW_FIGURES": str(tmp_path / "figures"), "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter_config")}
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}", "--allow-root",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        _wait_http(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=120)
        yield f"http://127.0.0.1:{port}", token, "widgets_demo.ipynb", tmp_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_widgets_render_and_respond_in_jupyterlab(lab):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    base, token, name, tmp = lab
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1500,2400"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    out_dir = paths.results_dir("browser")
    try:
        driver.get(f"{base}/lab/tree/{name}?token={token}")
        wait = WebDriverWait(driver, 360)   # a busy machine: the kernel and imports take minutes
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")))
        # the kernel must be up before "Run All Cells" (its status reads Idle in the toolbar)
        wait.until(lambda d: d.execute_script(
            "const s = document.querySelector('.jp-Notebook-ExecutionIndicator');"
            "return s && s.getAttribute('data-status') === 'idle';") or "Idle" in d.find_element(By.TAG_NAME, "body").text)
        menu = wait.until(ec.element_to_be_clickable(
            (By.XPATH, "//li[contains(@class,'lm-MenuBar-item')][.//div[normalize-space()='Run']]")))
        menu.click()
        wait.until(ec.element_to_be_clickable(
            (By.XPATH, "//li[contains(@class,'lm-Menu-item')][.//div[normalize-space()='Run All Cells']]"))).click()
        # every widget view rendered: 4 sliders (trajectory step, δ_a, δ_w, Gantt window), three PNG plots
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".widget-slider, .widget-hslider")) >= 4)
        wait.until(lambda d: "utilisation" in d.page_source or "of window" in d.page_source)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output img")) >= 4)
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "Error displaying widget" not in body and "Error rendering" not in body
        assert "step 2" in body and "test accuracy" in body and "window 0.00–7.00 ms" in body
        svgs = driver.find_elements(By.CSS_SELECTOR, ".widget-html svg")
        if shutil.which("dot"):
            assert svgs, "the trajectory viewer shows the graph (Graphviz SVG)"
        driver.save_screenshot(str(out_dir / "jupyterlab_viewport.png"))
        # a round trip through the kernel: the step slider moves one step left -> the diff shows step 1
        handle = driver.find_elements(By.CSS_SELECTOR, ".widget-slider .noUi-handle, .widget-hslider .noUi-handle")[0]
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", handle)
        handle.click()
        handle.send_keys(Keys.ARROW_LEFT)
        WebDriverWait(driver, 60).until(lambda d: "merge_sibling_convs" in d.find_element(By.TAG_NAME, "body").text
                                        and "step 1" in d.find_element(By.TAG_NAME, "body").text)
        shots = []
        for i, area in enumerate(driver.find_elements(By.CSS_SELECTOR, ".jp-Cell .jp-OutputArea")):
            if area.size["height"] < 20:
                continue
            driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", area)
            path = out_dir / f"jupyterlab_output_{i}.png"
            area.screenshot(str(path))
            shots.append(path)
        assert len(shots) >= 4
        _stack(shots, out_dir / "widgets_jupyterlab.png")
        (out_dir / "browser_check.json").write_text(json.dumps(
            {"chromium": subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip(),
             "screenshots": [str(p) for p in shots], "combined": str(out_dir / "widgets_jupyterlab.png")}, indent=1))
    except Exception:
        # what the browser showed when it failed: look at it before changing the test
        driver.save_screenshot(str(out_dir / "failure.png"))
        (out_dir / "failure.txt").write_text(driver.find_element(By.TAG_NAME, "body").text)
        raise
    finally:
        driver.quit()


def _stack(images: list[Path], out: Path) -> None:
    """One tall PNG of the output screenshots, for looking at."""
    from PIL import Image

    ims = [Image.open(p).convert("RGB") for p in images]
    w = max(i.width for i in ims)
    canvas = Image.new("RGB", (w, sum(i.height for i in ims) + 8 * len(ims)), "white")
    y = 0
    for im in ims:
        canvas.paste(im, (0, y))
        y += im.height + 8
    canvas.save(out)
