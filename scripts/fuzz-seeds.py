#!/usr/bin/env python3
"""For scripts/fuzz: writes one seed per fixture event plus an empty one into DIR.
Usage: fuzz-seeds.py DIR"""
import json, sys
body = json.load(open("tests/fixtures/all-events.json"))
for i, event in enumerate(body["events"]):
    json.dump({"events": [event]}, open(f"{sys.argv[1]}/single-{i:02}.json", "w"))
open(f"{sys.argv[1]}/empty.json", "w").write("")
