"""The dashboard in a real browser: Playwright driving Debian's chromium against a server this test starts.

Skips, saying why, only where no browser can be had (`make test` installs chromium when it runs as root).
A screenshot is saved under tests/_artifacts/ for a reviewer.
"""
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from serve import dashboard, free_port

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


@pytest.fixture(scope="module")
def server():
    port = free_port()
    with dashboard(port=port, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as url:
        yield url, port


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


def open_tab(page, name: str, label: str) -> None:
    """Click a tab as a user does; it is open once the address bar says so and its chart is drawn."""
    page.get_by_role("tab", name=label, exact=True).click()
    page.wait_for_function(f"() => new URLSearchParams(window.location.search).get('panel') === '{name}'",
                           timeout=60_000)
    settle(page)


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
    from gradlab import panels
    shown = panels.shown({"rnn": 1, "lstm": 1}, trained=False)
    tabs = [(p.name, p.tab, p.title) for p in shown] + [("sweep", "Sweeps", "Trainability map")]
    assert page.get_by_role("tab").all_text_contents() == [label for _, label, _ in tabs]
    for name, label, title in tabs[1:] + tabs[:1]:  # every tab, clicked, draws its panel alone; back to the first
        open_tab(page, name, label)
        assert page.locator(".js-plotly-plot").count() == 1
        page.wait_for_function(f"() => document.querySelector('.js-plotly-plot .gtitle')?.textContent"
                               f".startsWith({title!r})", timeout=60_000)
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


# ---- the projector: every panel fits the window, nothing overlaps ---------------------------------------------

PROJECTORS = [(1280, 720), (1366, 768), (1920, 1080)]

# For one chart: its box, and inside it the title, legends, axis titles and plot areas, in page coordinates.
MEASURE = """(box) => {
  const r = e => { const b = e.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; };
  const all = (sel) => [...box.querySelectorAll(sel)].filter(e => e.getBoundingClientRect().width > 0).map(r);
  return {box: r(box), title: all('.gtitle'), legends: all('g.legend'), xtitles: all('.xtitle'),
          ytitles: all('.ytitle'), plots: all('.nsewdrag'), subtitles: all('.annotation-text-g')};
}"""


def overlap(a, b, slack=1.0) -> bool:
    return a[0] < b[2] - slack and b[0] < a[2] - slack and a[1] < b[3] - slack and b[1] < a[3] - slack


def inside(a, outer, slack=1.0) -> bool:
    return a[0] >= outer[0] - slack and a[1] >= outer[1] - slack and a[2] <= outer[2] + slack and a[3] <= outer[3] + slack


# dark at the smallest projector only: its layout is the light theme's, only the colours differ; three cells side by
# side at the smallest projector too, where their columns are narrowest
@pytest.mark.parametrize("size,theme,cells", [(p, "light", "rnn,lstm") for p in PROJECTORS]
                         + [(PROJECTORS[0], "dark", "rnn,lstm"), (PROJECTORS[0], "light", "rnn,lstm,gru")],
                         ids=lambda v: f"{v[0]}x{v[1]}" if isinstance(v, tuple) else v)
def test_lecture_mode_fits_every_panel_on_the_projector(server, browser, size, theme, cells):
    """Scrolled to each panel, its figure (title, plots, axis titles, legends) lies inside the window, below the
    page's header, and no legend covers a plot, an axis title or another legend. Screenshots for a reviewer."""
    url, _ = server
    w, h = size
    page = browser.new_page(viewport={"width": w, "height": h})
    page.goto(url + f"/?lecture=true&theme={theme}&cells={cells}")
    settle(page)
    out = ARTIFACTS / "projector" / f"{w}x{h}_{theme}_{cells.replace(',', '-')}"
    out.mkdir(parents=True, exist_ok=True)
    header = page.locator('[data-testid="stHeader"]').bounding_box()["height"]
    from gradlab import panels
    shown = panels.shown(dict.fromkeys(cells.split(","), 1), trained=False)
    problems = []
    for name, label in [(p.name, p.tab) for p in shown] + [("sweep", "Sweeps")]:
        open_tab(page, name, label)
        box = page.locator(f'.st-key-fig_{name}')
        # its top just below the header, as a lecturer scrolls to it
        box.evaluate(f"b => {{ b.scrollIntoView({{block: 'start'}}); "
                     f"document.querySelector('[data-testid=stMain]').scrollBy(0, -{header + 4}); }}")
        page.wait_for_timeout(150)
        m = box.evaluate(MEASURE)
        page.screenshot(path=str(out / f"{name}.png"))
        fig = m["box"]
        if not (fig[1] >= header - 1 and fig[3] <= h + 1 and fig[0] >= 0 and fig[2] <= w + 1):
            problems.append(f"{name}: figure {fig} outside the window below the header ({w}x{h}, header {header})")
        for kind in ("title", "legends", "xtitles", "ytitles", "plots"):
            for part in m[kind]:
                if not inside(part, fig):
                    problems.append(f"{name}: a {kind[:-1]} {part} sticks out of the figure {fig}")
        for j, leg in enumerate(m["legends"]):
            for kind in ("plots", "xtitles", "title"):
                if any(overlap(leg, part) for part in m[kind]):
                    problems.append(f"{name}: a legend {leg} covers a {kind[:-1]}")
            if any(overlap(leg, other) for other in m["legends"][j + 1:]):
                problems.append(f"{name}: two legends overlap")
        for j, text in enumerate(m["subtitles"]):  # subplot titles and labels: side by side, never on each other
            if any(overlap(text, other) for other in m["subtitles"][j + 1:]):
                problems.append(f"{name}: two titles or labels overlap")
    page.close()
    assert not problems, "\n".join(problems)


def test_the_page_title_is_the_largest_text(server, browser):
    url, _ = server
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.goto(url + "/?lecture=true")
    settle(page)
    sizes = page.evaluate("""() => {
      const px = e => parseFloat(getComputedStyle(e).fontSize);
      const h1 = document.querySelector('[data-testid="stMain"] h1');
      const others = [...document.querySelectorAll('h2, h3, p, label, .gtitle, .g-gtitle text')].map(px);
      return [px(h1), Math.max(...others)];
    }""")
    page.close()
    assert sizes[0] > sizes[1], sizes


def open_page(browser, url: str, query: str, size=(1280, 720)):
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    page.goto(url + "/?" + query)
    settle(page)
    return page


def scene_in_url(page) -> str:
    from urllib.parse import parse_qs, urlsplit
    return parse_qs(urlsplit(page.url).query).get("scene", [""])[0]


def test_a_clicker_steps_through_the_whole_tour(server, browser):
    """PageDown (what a clicker sends) from a fresh page opens the first scene and then each next one; the arrow
    keys and N do the same; PageUp goes back."""
    from gradlab.scenes import SCENES
    page = open_page(browser, server[0], "lecture=true")
    page.locator('[data-testid="stMain"] h1').first.click()  # focus on the page, as a lecturer's first click would
    names = [s.name for s in SCENES]
    keys = ["PageDown", "ArrowRight", "n", "Space"]
    for i, name in enumerate(names):
        page.keyboard.press(keys[i % len(keys)])
        page.wait_for_function(f"() => window.location.search.includes('scene={name}')", timeout=120_000)
        settle(page)
        assert scene_in_url(page) == name
        page.locator('[data-testid="stAlert"]', has_text=SCENES[i].title).first.wait_for(timeout=120_000)
    page.keyboard.press("PageUp")
    page.wait_for_function(f"() => window.location.search.includes('scene={names[-2]}')", timeout=120_000)
    page.close()


def test_present_view_shows_one_scene_and_steps_with_the_keys(server, browser):
    from gradlab.scenes import SCENES
    page = open_page(browser, server[0], "view=present")
    assert scene_in_url(page) == SCENES[0].name  # presenting starts at the first scene
    assert page.locator('[data-testid="stMain"] h1').first.text_content() == SCENES[0].title
    assert page.locator('[class*="st-key-fig_"]').count() == 1  # its key panel, alone
    fig = page.locator('[class*="st-key-fig_"]').bounding_box()
    assert fig["y"] + fig["height"] <= 720 + 1
    page.locator('[data-testid="stMain"] h1').first.click()
    page.keyboard.press("PageDown")
    page.wait_for_function(f"() => window.location.search.includes('scene={SCENES[1].name}')", timeout=120_000)
    settle(page)
    assert page.locator('[data-testid="stMain"] h1').first.text_content() == SCENES[1].title
    page.close()
    # a training scene's slide holds its Train and Stop buttons too, and its long title; its figure still fits
    page = open_page(browser, server[0], "view=present&scene=truncation")
    fig = page.locator('[class*="st-key-fig_"]').bounding_box()
    title = page.locator('[data-testid="stMain"] h1').first.bounding_box()
    header = page.locator('[data-testid="stHeader"]').bounding_box()["height"]
    assert title["y"] >= header - 1 and fig["y"] + fig["height"] <= 720 + 1, (title, fig)
    page.close()


def test_a_reload_keeps_the_view(server, browser):
    """Change a control, reload: the same view (the address bar holds every setting, defaults included)."""
    page = open_page(browser, server[0], "scene=forget-bias", (1440, 900))
    bias = page.locator('[data-testid="stSlider"]', has_text="forget-gate bias").locator('input[type="range"]')
    bias.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")  # 0.0 -> 1.0, the default of the sidebar
    page.wait_for_function("() => window.location.search.includes('forget_bias=1.0')", timeout=60_000)
    settle(page)
    before = page.url
    assert "seq_len=1000" in before and "scene=forget-bias" in before
    story = page.locator('[data-testid="stAlert"]', has_text="You changed Forget-gate bias")
    story.first.wait_for(timeout=60_000)  # the scene knows its setting was changed
    text = story.first.text_content()
    page.reload()
    settle(page)
    assert page.url == before
    story.first.wait_for(timeout=60_000)
    assert story.first.text_content() == text  # the same view, not the scene's own settings
    page.close()
