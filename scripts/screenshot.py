"""Takes docs/batch-screen.png, the README's picture: ./run.sh with its demo data, and the
batch screen it prints, in headless Chromium.

    .venv/bin/python scripts/screenshot.py [--width 390 --output /tmp/phone.png]

--width takes the screen as a device of that width sees it (the phone layout below 640 px).
"""

from __future__ import annotations

import argparse
import re
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from scripts.browser import VIEWPORT, chromium  # noqa: E402

OUTPUT = REPO_ROOT / "docs/batch-screen.png"
SCREEN_LINK = re.compile(r"^  (http://localhost:\d+/batch-screen\.html#\S+)$")
WAIT_MS = 30_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=VIEWPORT["width"])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    command = [sys.executable, "scripts/dev.py", "--port", str(free_port()),
               "--screen-port", str(free_port())]
    runner = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert runner.stdout is not None
        link = next(m[1] for line in runner.stdout if (m := SCREEN_LINK.match(line.rstrip("\n"))))
        with tempfile.TemporaryDirectory() as profile, chromium(Path(profile)) as browser:
            page = browser.new_page()
            page.set_viewport_size({"width": args.width, "height": VIEWPORT["height"]})
            page.goto(link)
            page.locator("#contacts tr[data-id]").first.wait_for(timeout=WAIT_MS)
            page.locator("#poll-state").get_by_text("Updated").wait_for(timeout=WAIT_MS)
            output: Path = args.output.resolve()
            output.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(output), full_page=True)
    finally:
        runner.send_signal(signal.SIGINT)
        runner.wait(60)
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
