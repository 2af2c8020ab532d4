#!/usr/bin/env python3
"""For scripts/bench: best of 5 runs of `currents-segment transform` on the peer body, with peak RSS.
Usage: bench-peer.py BINARY BODY"""
import json, os, resource, subprocess, sys, time
binary, body = sys.argv[1], sys.argv[2]
size = os.path.getsize(body)
best = None
for _ in range(5):
    started = time.monotonic()
    subprocess.run([binary, "transform", body], check=True, stdout=subprocess.DEVNULL)
    elapsed = time.monotonic() - started
    best = elapsed if best is None else min(best, elapsed)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
# Counted only now: a child forked while this process held the parsed body would report the
# parent's pages as its own peak RSS.
events = len(json.load(open(body))["events"])
print(f"events={events} body_mb={size/1e6:.1f} seconds={best:.3f} events_per_s={events/best:,.0f} "
      f"mb_per_s={size/1e6/best:.0f} peak_rss_mb={peak:.0f} rss_over_body={peak*1024*1024/size:.2f} "
      f"vs_peer_11.6k={events/best/11600:.1f}x")
