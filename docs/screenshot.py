"""Retake docs/serve.png, the README's picture of the search page, with the browser test's set-up:
the demo sample harvested by `ernte harvest`, served by `ernte serve`, shot in Debian's headless
Chromium (same flags as tests/test_serve_browser.py).

    .venv/bin/python docs/screenshot.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402

from tests.test_serve_browser import CHROMIUM_FLAGS  # noqa: E402
from tests.web_server import ernte_serve, harvest_sample  # noqa: E402

TARGET = ROOT / "docs" / "serve.png"
PAGE = "/?q=Stadtteile&filter=subject%3ASoziale+Stadt"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="ernte-shot-") as work:
        data_dir = Path(work) / "data"
        harvest_sample(data_dir)
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={work}/profile", "--window-size=1100,760"):
            options.add_argument(flag)
        with ernte_serve(data_dir, Path(work) / "serve.log") as server:
            driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
            try:
                driver.get(server.url + PAGE)  # the first search opens the index: warm up
                driver.get(server.url + PAGE)
                shot = Path(work) / "shot.png"
                driver.save_screenshot(str(shot))
            finally:
                driver.quit()
        try:  # a palette PNG is a third of the size and looks the same for this flat page
            from PIL import Image

            Image.open(shot).convert("RGB").quantize(colors=128).save(TARGET, optimize=True)
        except ImportError:
            TARGET.write_bytes(shot.read_bytes())
    print(f"wrote {TARGET} ({TARGET.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
