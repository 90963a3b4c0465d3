"""The attention explorer rendered by JupyterLab in headless Chromium.

Deselected by default; run with ``.venv/bin/python -m pytest -m browser tests/browser``.
Needs JupyterLab in the venv (``pip install -e ".[lab]"``), the ``playwright``
Python package and a Chromium binary (Debian: ``apt-get install chromium``;
another binary can be named in ``$SEMICON_CHROMIUM``). Playwright's own
browser downloads are not used.

The test starts JupyterLab on 127.0.0.1 at a free port with a random token
and opens a copy of ``notebooks/attention.ipynb`` pointed at a tiny trained
run. It runs all cells and waits for the explorer to show its overlay
picture. Then it changes the stage drop-down and checks that the picture
changes. It saves a screenshot of the explorer to ``$SEMICON_BROWSER_SCREENSHOT`` or
``<outputs>/browser-check/attention_widget.png``, and one of the whole page
beside it.
"""

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

from semicon_core.paths import outputs_root

pytestmark = pytest.mark.browser

REPOSITORY = Path(__file__).resolve().parents[2]
SCREENSHOT_ENV = "SEMICON_BROWSER_SCREENSHOT"
CHROMIUM_ENV = "SEMICON_CHROMIUM"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_SECONDS = 90
NOTEBOOK_RUN_MS = 240_000
WIDGET_UPDATE_MS = 60_000
LOOPBACK_HOSTS = {"127.0.0.1", "localhost"}


def find_chromium():
    candidates = [os.environ.get(CHROMIUM_ENV), shutil.which("chromium"), shutil.which("chromium-browser")]
    return next((path for path in candidates if path and os.access(path, os.X_OK)), None)


def free_loopback_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def log_tail(path, lines=40):
    text = Path(path).read_text(errors="replace") if Path(path).exists() else ""
    return "\n".join(text.splitlines()[-lines:])


@pytest.fixture
def lab_notebook(tmp_path, tiny_run):
    """A workspace holding the attention notebook with run_dir injected, and a run that links the tiny run's checkpoints."""
    import papermill

    workspace = tmp_path / "workspace"
    run_dir = workspace / "run"
    run_dir.mkdir(parents=True)
    for path in tiny_run.glob("checkpoint_*bits.pt"):
        (run_dir / path.name).symlink_to(path)
    notebook = workspace / "attention.ipynb"
    papermill.execute_notebook(
        str(REPOSITORY / "notebooks" / "attention.ipynb"),
        str(notebook),
        parameters={"run_dir": str(run_dir), "num_images": 3, "progress": "none"},
        prepare_only=True,
    )
    return notebook


@pytest.fixture
def jupyter_lab(tmp_path, lab_notebook):
    """Start JupyterLab on 127.0.0.1 with a token; yield (base URL, token, log path) and stop it."""
    pytest.importorskip("jupyterlab", reason='JupyterLab is not installed; run: pip install -e ".[lab]"')
    port = free_loopback_port()
    token = secrets.token_hex(24)

    # Keep JupyterLab's settings and state in tmp_path, with the news and update checks off.
    settings = tmp_path / "lab-settings"
    notification_settings = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification_settings.parent.mkdir(parents=True)
    notification_settings.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    environment = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces"),
    }

    command = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        f"--ServerApp.token={token}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={lab_notebook.parent}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        "--LabApp.expose_app_in_browser=True",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")

    log_path = tmp_path / "jupyterlab.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment,
                                  cwd=lab_notebook.parent)
    base_url = f"http://127.0.0.1:{port}"

    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with code {server.returncode}:\n{log_tail(log_path)}")
            try:
                with urllib.request.urlopen(f"{base_url}/api/status?token={token}", timeout=5) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer on {base_url} within {SERVER_START_SECONDS} s:\n"
                            f"{log_tail(log_path)}")
            time.sleep(1)
        yield base_url, token, log_path
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def screenshot_path():
    configured = os.environ.get(SCREENSHOT_ENV)
    path = Path(configured) if configured else outputs_root() / "browser-check" / "attention_widget.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_attention_explorer_renders_in_jupyterlab(jupyter_lab, lab_notebook):
    playwright_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is not installed; run: pip install playwright"
    )
    chromium = find_chromium()
    if chromium is None:
        pytest.skip(f"no Chromium binary found; install it (Debian: apt-get install chromium) or set ${CHROMIUM_ENV}")
    base_url, token, log_path = jupyter_lab
    widget_png = screenshot_path()
    page_png = widget_png.with_name(widget_png.stem + "_page.png")
    blocked = []

    def allow_loopback_only(route):
        if urlparse(route.request.url).hostname in LOOPBACK_HOSTS or route.request.url.startswith("data:"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(viewport={"width": 1500, "height": 1100})
            context.route("**/*", allow_loopback_only)
            page = context.new_page()
            page.goto(f"{base_url}/lab/tree/{lab_notebook.name}?token={token}")
            page.wait_for_function(
                "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                " && window.jupyterapp.shell.currentWidget.sessionContext"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel",
                timeout=NOTEBOOK_RUN_MS,
            )
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")

            overlay = page.locator(".jp-OutputArea-output img.widget-image").first
            try:
                overlay.wait_for(state="visible", timeout=NOTEBOOK_RUN_MS)
                page.wait_for_function(
                    "() => { const image = document.querySelector('.jp-OutputArea-output img.widget-image');"
                    " return image && image.complete && image.naturalWidth > 0; }",
                    timeout=WIDGET_UPDATE_MS,
                )
            except playwright_api.TimeoutError:
                page.screenshot(path=str(page_png), full_page=True)
                errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
                pytest.fail(f"the explorer did not render; page screenshot {page_png}; "
                            f"cell errors: {errors.all_inner_texts()[:3]}\nserver log:\n{log_tail(log_path)}")

            explorer = page.locator(".jp-OutputArea-output", has=page.locator("img.widget-image")).last
            explorer.scroll_into_view_if_needed()
            # Each update of an ipywidgets Image gets a new blob URL, so a changed src means a new picture.
            stage = explorer.locator(".widget-dropdown", has=page.locator("label", has_text="stage")).locator("select")
            for choice in ("A2", "all stages"):
                previous_source = overlay.get_attribute("src")
                stage.select_option(choice)
                page.wait_for_function(
                    "previous => document.querySelector('.jp-OutputArea-output img.widget-image').src !== previous",
                    arg=previous_source,
                    timeout=WIDGET_UPDATE_MS,
                )
            status = explorer.locator(".widget-html", has_text="computed").first.inner_text()
            size = page.evaluate(
                "() => { const image = document.querySelector('.jp-OutputArea-output img.widget-image');"
                " return [image.naturalWidth, image.naturalHeight]; }"
            )
            explorer.screenshot(path=str(widget_png))
            page.screenshot(path=str(page_png), full_page=True)
        finally:
            browser.close()

    print(f"explorer screenshot: {widget_png}\npage screenshot: {page_png}\nblocked requests: {blocked}")
    assert widget_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "failed" not in status
    assert "as one batch" in status
    # "all stages" shows six panels side by side, so the picture is far wider than tall.
    assert size[0] > 4 * size[1]
