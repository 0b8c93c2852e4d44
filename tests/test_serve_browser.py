"""The search page in a real browser: headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driven
by selenium against ``hashkit serve``'s app under uvicorn on 127.0.0.1. Skips only when they are absent."""

from __future__ import annotations

import shutil
import socket
import threading
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")
webdriver = pytest.importorskip("selenium.webdriver")

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                       reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"),
]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1280,1000"]


@pytest.fixture
def server(served):
    """The service of the two demo code files, served by uvicorn in a thread on a free localhost port."""
    import uvicorn

    from hashkit.serve.app import create_app
    from hashkit.serve.service import load_service

    _, photos, files = served
    service = load_service([files[12], files[24]], photos, log=lambda _: None)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    instance = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", service
    instance.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser(tmp_path):
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def test_page_uploads_an_image_and_shows_the_api_results(server, browser, served, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    url, _ = server
    _, photos, _ = served
    query = sorted(photos.rglob("*.png"))[5]
    k = 6
    browser.get(url + "/")
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
    Select(browser.find_element(By.ID, "bits")).select_by_value("24")
    box = browser.find_element(By.ID, "k")
    box.clear()
    box.send_keys(str(k))
    browser.find_element(By.ID, "upload").send_keys(str(query))
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .result")) == k)
    shown = [int(e.get_attribute("data-id")) for e in browser.find_elements(By.CSS_SELECTOR, "#results .result")]
    with httpx.Client(trust_env=False, timeout=60) as http:  # straight to localhost, whatever the proxy settings
        answer = http.post(url + "/api/search/image", files={"image": (query.name, query.read_bytes(), "image/png")},
                           data={"bits": "24", "k": str(k)})
    assert answer.status_code == 200
    assert shown == [r["id"] for r in answer.json()["queries"][0]["results"]]
    # the result pictures were fetched from the image folder and rendered
    assert browser.execute_script(
        "return [...document.querySelectorAll('#results img')].every(i => i.complete && i.naturalWidth > 0)")
    overlays = browser.find_elements(By.CSS_SELECTOR, "#query figcaption")
    assert [o.text for o in overlays] == [query.name, "stage1", "stage2", "stage3"]
    assert "24 bits" in browser.find_element(By.ID, "status").text
    assert browser.save_screenshot(str(tmp_path / "search-page.png"))
    assert (tmp_path / "search-page.png").stat().st_size > 10_000
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
