#!/usr/bin/python3
"""Photographs a page with headless Chromium after letting it render for a while.

Chromium's own --screenshot either fires before a single-page app has drawn or, with
--virtual-time-budget, never fires while the page keeps polling (as the Temporal UI does for a
running workflow). This drives Chromium over the DevTools protocol instead.

usage: cdp-screenshot.py URL OUT.png [WAIT_SECONDS]   (needs chromium and python3-websocket)
"""
import base64
import json
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket

url, out = sys.argv[1], sys.argv[2]
wait = float(sys.argv[3]) if len(sys.argv) > 3 else 8
port = 9333
profile = tempfile.mkdtemp()
chrome = subprocess.Popen(
    ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
     "--disable-background-networking", "--disable-component-update", "--disable-sync",
     f"--remote-debugging-port={port}", f"--user-data-dir={profile}", "--window-size=1500,1100",
     "about:blank"],
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            tabs = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json"))
            page = next(t for t in tabs if t["type"] == "page")
            break
        except Exception:
            time.sleep(0.2)
    ws = websocket.create_connection(page["webSocketDebuggerUrl"], suppress_origin=True)
    ids = iter(range(1, 1000))

    def call(method, **params):
        n = next(ids)
        ws.send(json.dumps({"id": n, "method": method, "params": params}))
        while True:
            msg = json.loads(ws.recv())
            if msg.get("id") == n:
                return msg.get("result", {})

    call("Emulation.setDeviceMetricsOverride", width=1500, height=1100, deviceScaleFactor=1, mobile=False)
    call("Page.navigate", url=url)
    time.sleep(wait)
    shot = call("Page.captureScreenshot", format="png")
    with open(out, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    print(f"{out}: {url}")
finally:
    chrome.kill()
