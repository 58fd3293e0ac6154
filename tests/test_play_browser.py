"""The play page in a real browser: Debian's headless Chromium, driven by Selenium + chromedriver.

Presses keys and checks that the server applies them and frames change; reads the fps and
latency readouts; uploads an image (and a broken one); pauses; downloads the recorded video;
saves a screenshot to .cache/screenshots/play_page.png. `make browser` installs Chromium
(`.ci/run` does it first); without it this test is skipped, except under CI=true, where it fails.
"""

import os
import pathlib
import re
import tempfile
import threading
import time

import numpy as np
import pytest
from PIL import Image

from wm_jax.serve import server

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCREENSHOT = pathlib.Path(__file__).resolve().parent.parent / ".cache" / "screenshots" / "play_page.png"


def _browser_or_skip():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        reason = f"{' and '.join(missing)} missing: run `make browser` (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(reason)  # CI installs them first; a skip there would hide a broken install
        pytest.skip(reason)
    return pytest.importorskip("selenium.webdriver")


@pytest.fixture(scope="module")
def page_server(demo_world_dir):
    registry = server.WorldRegistry({"demo": demo_world_dir})
    httpd = server.serve(registry, "127.0.0.1", 0, fps=30)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    registry.load("demo")  # compile before the browser's clock starts
    yield httpd
    httpd.stop()


@pytest.fixture(scope="module")
def driver():
    webdriver = _browser_or_skip()
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="wm_chromium_")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1000,760", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(60)
    yield browser
    browser.quit()


def _wait(condition, timeout=30.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_page_plays_in_chromium(driver, page_server, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.get(page_server.url)
    stats = lambda: driver.execute_script("return window.wmPlay && window.wmPlay.stats()")
    text = lambda element_id: driver.find_element(By.ID, element_id).text
    _wait(lambda: stats() and stats()["frames"] > 5 and stats()["world"] == "demo", what="the first frames")
    assert driver.find_element(By.ID, "world").get_attribute("value") == "demo"

    # Held keys reach the model: each frame's header says which keys produced it.
    pixels = []
    for key, name in (("w", "w"), (Keys.ARROW_LEFT, "left")):
        ActionChains(driver).key_down(key).perform()
        _wait(lambda: stats()["header"]["keys"] == [name], what=f"frames made with {name!r} held")
        assert "held" in driver.find_element(By.CSS_SELECTOR, f'#keys li[data-key="{name}"]').get_attribute("class")
        pixels.append(driver.execute_script("return window.wmPlay.pixels()"))
        time.sleep(0.2)
        pixels.append(driver.execute_script("return window.wmPlay.pixels()"))
        ActionChains(driver).key_up(key).perform()
    assert all((np.array(a) != np.array(b)).any() for a, b in zip(pixels, pixels[1:])), "frames must change"
    _wait(lambda: stats()["header"]["keys"] == [], what="keys released")

    # The readouts: frames per second near the target, and a measured input-to-frame latency.
    _wait(lambda: re.fullmatch(r"\d+", text("fps")) and int(text("fps")) >= 5, what="an fps readout")
    assert re.fullmatch(r"\d+ ms", text("latency")), text("latency")
    assert 0 < stats()["latency"] < 5000

    # Upload: a wide red-centred photo becomes the new start frame; a broken file is an error.
    photo = np.zeros((240, 400, 3), np.uint8)
    photo[:, 80:320] = (240, 30, 30)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    upload = driver.find_element(By.ID, "upload")
    upload.send_keys(str(tmp_path / "broken.jpg"))
    _wait(lambda: any("image" in e for e in stats()["errors"]), what="the broken upload's error")
    frames_before = stats()["frames"]
    _wait(lambda: stats()["frames"] > frames_before + 3, what="frames after the error")  # the session goes on
    upload.send_keys(str(tmp_path / "photo.png"))
    _wait(lambda: "your image" in text("log"), what="the world restarting from the upload")

    # Pause stops the frames; resume brings them back.
    driver.find_element(By.ID, "pause").click()
    _wait(lambda: text("fps") == "paused", what="the pause")
    time.sleep(0.3)
    paused_at = stats()["frames"]
    time.sleep(0.5)
    assert stats()["frames"] == paused_at
    driver.find_element(By.ID, "pause").click()
    _wait(lambda: stats()["frames"] > paused_at + 3, what="frames after resuming")

    # The session video: MediaRecorder chunks, saved as a WebM download.
    _wait(lambda: stats()["recordedBytes"] > 0, what="recorded video")
    driver.find_element(By.ID, "download").click()
    video = _wait(lambda: [p for p in downloads.glob("*.webm")], what="the downloaded video")[0]
    _wait(lambda: video.stat().st_size > 1000, what="a non-empty video")
    assert video.read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # the EBML magic of WebM/Matroska

    time.sleep(0.5)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOT))
    severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE" and "favicon" not in entry["message"]]
    assert not severe, severe
    assert not [e for e in stats()["errors"] if "image" not in e]
