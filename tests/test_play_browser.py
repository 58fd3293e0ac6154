"""The play page in a real browser: Debian's headless Chromium, driven by Selenium + chromedriver.

Presses keys and checks that the server applies them and frames change; reads the fps and
latency readouts; uploads an image (and a broken one); pauses; downloads the recorded video;
saves a screenshot to .cache/screenshots/play_page.png. `make browser` installs Chromium
(`.ci/run` does it first); without it this test is skipped, except under CI=true, where it fails.

Then each shipped world (`pan`, `doom`) plays for a minute with a key held, both at once in two
browsers on one server, and the last frame shown must not have collapsed against the first
generated one (issue 15's sharpness and colour bars, from `wm_jax.stability`); first | last go
to .cache/screenshots/minute_{pan,doom}.png. That test is slow (`make test-slow`) and, until
worlds that hold together ship, a strict expected failure: today's worlds collapse.
"""

import concurrent.futures
import os
import pathlib
import re
import tempfile
import threading
import time

import numpy as np
import pytest
from PIL import Image

from wm_jax import stability
from wm_jax import bundle
from wm_jax.serve import server

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCREENSHOT = pathlib.Path(__file__).resolve().parent.parent / ".cache" / "screenshots" / "play_page.png"
PLAY_SECONDS = 60.0  # wall time each shipped world plays with its key held
HELD = {"pan": "right", "doom": "left"}  # world -> the key held (a pan; a turn)
MIN_FRAMES = 150  # generated in PLAY_SECONDS, or the minute did not test much (today's worlds collapse by ~50-150)


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
def shipped_play():
    """A server with the shipped worlds (both compiled before it serves; each at its own frame
    rate) and a second browser, started meanwhile, so that the two worlds play at once."""
    _browser_or_skip()
    registry = server.WorldRegistry({name: bundle.SHIPPED_DIR / name for name in HELD})
    with concurrent.futures.ThreadPoolExecutor(len(HELD) + 1) as pool:
        other = pool.submit(_chromium)
        loads = [pool.submit(registry.load, name) for name in HELD]
        other = other.result()
    try:
        for load in loads:
            load.result()
        httpd = server.serve(registry, "127.0.0.1", 0)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        try:
            yield httpd, other
        finally:
            httpd.stop()
    finally:
        other.quit()


@pytest.fixture(scope="module")
def driver():
    browser = _chromium()
    yield browser
    browser.quit()


def _chromium():
    """A headless Chromium under chromedriver (skips, or fails under CI=true, without one)."""
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
    return browser


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


def _collapse_check(first_HW3, last_HW3) -> tuple[dict, list[str]]:
    """The last frame against the first (uint8 RGB): sharpness ratio (variance of the 4-neighbour
    Laplacian, `image_metrics.frame_statistics`) and colour std ratio (frames in [0, 1]), and which of
    issue 15's bars (`stability.SHARPNESS_RATIO`, `stability.STD_RATIO`) they miss."""
    frames = np.stack([first_HW3, last_HW3]).astype(np.float32) / 127.5 - 1.0
    stats = stability.colour_statistics(frames)
    ratios = {"sharpness_ratio": float(stats["sharpness"][1] / stats["sharpness"][0]),
              "std_ratio": float(stats["std"][1] / stats["std"][0])}
    missed = [f"{name} {ratios[name]:.3f} outside [{low}, {high}]"
              for name, (low, high) in (("sharpness_ratio", stability.SHARPNESS_RATIO), ("std_ratio", stability.STD_RATIO))
              if not low <= ratios[name] <= high]
    return ratios, missed


@pytest.mark.slow  # a minute of play: `make test-slow`
def test_shipped_worlds_hold_together_for_a_minute(driver, shipped_play):
    """Each shipped world plays PLAY_SECONDS in the page with its key held (both worlds at once,
    one browser each); the last frame shown must keep the first generated frame's sharpness and
    colour spread (issue 15: worlds that hold together). That frame, generated while the world was
    shown with no key held, is the start picture itself in a world that keeps its pixels. Until
    session 26 this failed (pan 0.23-0.39x the start's sharpness and 0.52-0.59x its colour spread,
    doom 1.45-1.97x its sharpness); the worlds now show what they paint with the start picture's
    contrast and grain and feather the seam (world.json "match_picture"): pan 0.91-0.92x / 0.86-0.93x
    and doom 1.00x / 1.00x in the page (BUILD_NOTES session 26; doom's circle of memory makes its
    last frame depend on the turn's phase: 0.96-1.39x over every phase)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    key_of = {"left": Keys.ARROW_LEFT, "right": Keys.ARROW_RIGHT}
    shipped_server, other = shipped_play
    browsers = dict(zip(HELD, (driver, other)))
    stats = lambda b: b.execute_script("return window.wmPlay && window.wmPlay.stats()")
    for browser in browsers.values():
        browser.get(shipped_server.url)
    for name, browser in browsers.items():
        _wait(lambda: stats(browser) and stats(browser)["world"] and stats(browser)["frames"] > 0, what="the first frames")
        if stats(browser)["world"] != name:
            Select(browser.find_element(By.ID, "world")).select_by_value(name)
        _wait(lambda: stats(browser)["world"] == name and not stats(browser)["loading"], what=f"world {name!r}")
    # Hold the key, then restart the world from its start image: every generated frame has it.
    for name, browser in browsers.items():
        ActionChains(browser).key_down(key_of[HELD[name]]).perform()
        _wait(lambda: stats(browser)["held"] == [HELD[name]], what=f"{HELD[name]!r} held in {name!r}")
    started = {}
    for name, browser in browsers.items():
        browser.find_element(By.ID, "reset").click()
        started[name] = time.time()
    first = {name: _wait(lambda: browser.execute_script("return window.wmPlay.firstPixels()"),
                         what=f"the first generated frame of {name!r}") for name, browser in browsers.items()}
    results, failures = {}, []
    for name, browser in browsers.items():
        time.sleep(max(0.0, started[name] + PLAY_SECONDS - time.time()))
        header, last = browser.execute_script("return [window.wmPlay.stats().header, window.wmPlay.pixels()]")
        ActionChains(browser).key_up(key_of[HELD[name]]).perform()
        assert header["keys"] == [HELD[name]], f"{name}: the key was not held to the end: {header}"
        assert header["n"] >= MIN_FRAMES, f"{name}: only {header['n']} frames in {PLAY_SECONDS:g} s"
        shape = (header["height"], header["width"], 4)
        first_HW3 = np.array(first[name], np.uint8).reshape(shape)[..., :3]
        last_HW3 = np.array(last, np.uint8).reshape(shape)[..., :3]
        ratios, missed = _collapse_check(first_HW3, last_HW3)
        results[name] = {"frames": header["n"], **{k: round(v, 3) for k, v in ratios.items()}}
        failures += [f"{name}: {m}" for m in missed]
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)  # first | last, to look at
        Image.fromarray(np.concatenate([first_HW3, last_HW3], axis=1)).save(SCREENSHOT.parent / f"minute_{name}.png")
    print(f"after {PLAY_SECONDS:g} s with a key held: {results}")
    assert not failures, f"collapsed after {PLAY_SECONDS:g} s with a key held: {'; '.join(failures)}; {results}"
