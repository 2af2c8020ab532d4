#!/usr/bin/env python3
"""For scripts/bench: writes an API Gateway v2 event of 100 events (from $CURRENTS_BENCH_BODY when
set, else our fixture) to the given path. Usage: bench-event.py OUT"""
import json, subprocess, sys, os
# 100 events from the same generator as the peer body when available, else our fixture.
peer = os.environ.get("CURRENTS_BENCH_BODY")
if peer:
    events = json.load(open(peer))["events"][:100]
else:
    events = (json.load(open("tests/fixtures/all-events.json"))["events"] * 3)[:100]
template = json.load(open("events/ingest-valid.json"))
template["body"] = json.dumps({"events": events}, separators=(",", ":"))
template["headers"]["authorization"] = "Bearer bench-token-0123456789"
json.dump(template, open(sys.argv[1], "w"))
