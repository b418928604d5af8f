"""The dashboard in a real browser: Playwright driving Debian's chromium against a server this test starts.

Skips, saying why, only where no browser can be had (`make test` installs chromium when it runs as root).
A screenshot is saved under tests/_artifacts/ for a reviewer.
"""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "_artifacts"
CHROMIUM = os.environ.get("BROWSER_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.slow  # a real server and browser: `make test` runs it, `make test-fast` does not
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (make test installs it)")
if not CHROMIUM:
    pytest.skip("no chromium on this machine: install it with `apt-get install chromium` (make test does, as root)",
                allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard.py"),
                             "--server.headless", "true", "--server.port", str(port)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail("the dashboard server did not become healthy in 60 s")
        yield url, port
    finally:
        proc.terminate()  # stopped by its own PID
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def settle(page):
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=60_000)
    page.wait_for_timeout(300)


def test_server_listens_on_loopback_only(server):
    _, port = server
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout \
        if shutil.which("ss") else ""
    if not out:
        pytest.skip("`ss` is not available to read the bound address")
    assert all("127.0.0.1:" in line for line in out.strip().splitlines()), out


def test_every_panel_renders_and_the_slider_drives_url_and_plot(server, browser, tmp_path):
    url, _ = server
    ctx = browser.new_context(viewport={"width": 1500, "height": 7000}, accept_downloads=True)
    page = ctx.new_page()
    page.goto(url + "/?seq_len=100")
    settle(page)
    plots = page.locator(".js-plotly-plot")
    from gradlab import panels
    shown = panels.shown({"rnn": 1, "lstm": 1}, trained=False)
    assert plots.count() == len(shown) + 1  # every probe panel of the registry and the trainability map
    titles = " ".join(page.locator(".js-plotly-plot .gtitle").all_text_contents())
    for t in [p.title for p in shown] + ["Trainability map"]:
        assert t in titles
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"))

    def xmax():  # the gradient plot's last x tick label
        return page.locator(".js-plotly-plot").first.locator(".xtick text").last.text_content()

    before = xmax()
    thumb = page.locator('[data-testid="stSlider"]', has_text="Sequence length").get_by_role("slider")
    thumb.focus()
    for _ in range(20):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("() => window.location.search.includes('seq_len=200')", timeout=30_000)
    settle(page)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot')[0].querySelectorAll('.xtick text')]"
        ".some(t => t.textContent === '200')", timeout=30_000)
    assert "seq_len=200" in page.url and xmax() != before

    chart = page.locator(".js-plotly-plot").first
    chart.hover()
    with page.expect_download(timeout=60_000) as dl:
        chart.locator('.modebar-btn[data-title="Download plot as a svg"], .modebar-btn[data-title*="Download"]').first.click()
    path = tmp_path / dl.value.suggested_filename
    dl.value.save_as(path)
    assert path.suffix == ".svg" and path.name.startswith("grad_vs_time_adding_T200_")
    assert path.read_text().lstrip().startswith("<svg") and "Gradient reaching each time step" in path.read_text()
    assert not page.locator('.modebar-btn[data-title*="Share"]').count()

    # the server-rendered downloads: one panel's PDF, and the whole ZIP
    with page.expect_download(timeout=120_000) as dl:
        page.locator('[data-testid="stDownloadButton"] button', has_text="PDF").first.click()
    pdf = tmp_path / dl.value.suggested_filename
    dl.value.save_as(pdf)
    assert pdf.name == "grad_vs_time_adding_T200_pytorch.pdf" and pdf.read_bytes().startswith(b"%PDF-")
    with page.expect_download(timeout=180_000) as dl:
        page.locator('[data-testid="stDownloadButton"] button', has_text="Export all").click()
    zpath = tmp_path / dl.value.suggested_filename
    dl.value.save_as(zpath)
    import zipfile
    names = zipfile.ZipFile(zpath).namelist()
    assert "config.json" in names and "grad_vs_time_adding_T200_pytorch.svg" in names
    assert "seq_len=200" in zipfile.ZipFile(zpath).read("url.txt").decode()
    ctx.close()
