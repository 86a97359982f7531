"""Headless Chromium (Debian's ``chromium``) for tests, driven by Playwright: pages, clicks and screenshots.

Playwright launches the system browser (``executable_path``), so nothing is downloaded. The flags keep it
off the network (this machine's is closed: background services would retry for ever). CI installs the
browser (.ci/run); where it is missing, tests needing it are skipped and say so.
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
"""The browser, or None where it is not installed."""

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


WEBGL_FLAGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"]
"""WebGL on the CPU (SwiftShader), for pages that draw with it (the viewer)."""


@contextmanager
def browser_page(width: int = 1600, height: int = 1100, webgl: bool = False):
    """A fresh Playwright page in headless Chromium, closed afterwards; ``webgl`` turns on software WebGL."""
    from playwright.sync_api import sync_playwright

    flags = [flag for flag in FLAGS if flag != "--disable-gpu"] + WEBGL_FLAGS if webgl else FLAGS
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=flags)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


def open_report_entry(page, report: str | Path, category: str, subcategory: str | None, row_text: str):
    """In a Snakemake report: Results -> ``category`` -> ``subcategory`` (None for a category without
    subcategories, which the report opens directly), then show the entry whose row holds ``row_text``; returns
    the frame the entry is shown in (an HTML result is shown in an iframe)."""
    page.goto(Path(report).resolve().as_uri())
    page.get_by_text("Results", exact=True).click()
    page.get_by_text(category, exact=True).click()
    if subcategory is not None:
        page.get_by_text(subcategory, exact=True).click()
    page.locator("tr", has_text=row_text).locator("a[iconname=eye]").click()
    page.wait_for_selector("iframe")
    frame = page.frame_locator("iframe")
    return frame
