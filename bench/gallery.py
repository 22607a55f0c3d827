"""The gallery's listing at scale: N images in one folder (default 20,000)
synced by imgsyncd to the no-auth moto of scripts/test's test bed, then
every page of the folder through GET /api/list (60 a page), and a search,
a type filter and the root, each timed from a client on the same machine;
the daemon's peak RSS. Not a peer comparison: no peer has a gallery.

    . $ENV_FILE_OF_THE_TEST_BED
    IMGSYNC_BIN=build/bin PYTHONPATH=tests/testbed:tests/integration \
        python3 bench/gallery.py [N]
"""
import os
import sqlite3
import statistics
import sys
import time

import testbed
from images import png
from test_web import Browser, WebDaemon

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
d = WebDaemon(testbed.noauth_bed(), concurrency=64, level="info")
(d.root / "big").mkdir()
blob = png(4, 4)
now = time.time()
for i in range(N):
    p = d.root / "big" / f"img{i:06d}.png"
    p.write_bytes(blob + i.to_bytes(4, "big"))
    os.utime(p, (now - i, now - i))
t0 = time.time()
d.start()


def count():
    try:
        with sqlite3.connect(f"file:{d.state_path}?mode=ro", uri=True) as db:
            return db.execute("SELECT count(*) FROM files WHERE status='synced'").fetchone()[0]
    except Exception:
        return 0


while count() < N:
    time.sleep(1)
    if time.time() - t0 > 900:
        raise SystemExit("not synced in 15 minutes")
print(f"synced {N} in {time.time()-t0:.0f} s")
b = Browser(d).login()


def timed(path):
    t = time.perf_counter()
    _, doc = b.json("GET", path)
    return time.perf_counter() - t, doc


# page through the whole folder, 60 a page
cursor, n, times = None, 0, []
while True:
    q = "api/list?dir=big/" + (f"&cursor={cursor}" if cursor else "")
    dt, doc = timed(q)
    times.append(dt)
    n += len(doc["images"])
    cursor = doc["cursor"]
    if not cursor:
        break
print(f"pages {len(times)} images {n}: median {statistics.median(times)*1000:.1f} ms, max {max(times)*1000:.1f} ms")
for path in ["api/list?dir=", "api/list?dir=big/&q=img0123", "api/list?dir=&q=img01999", "api/list?dir=big/&type=image/gif"]:
    ts = [timed(path)[0] for _ in range(5)]
    print(f"{path}: median {statistics.median(ts)*1000:.1f} ms")
st = open(f"/proc/{d.proc.pid}/status").read()
print([l for l in st.splitlines() if l.startswith(("VmHWM", "VmRSS"))])
d.close()
