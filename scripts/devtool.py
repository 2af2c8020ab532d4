#!/usr/bin/env python3
"""Helpers for scripts/dev, standard library plus boto3 (from moto) only.

  devtool.py capture PORT FILE [HOST]   a Segment stand-in: answers /v1/batch, records batches in FILE;
                                        POST /__outage?on|off switches a 503 outage on and off.
                                        It is also the settings CDN: GET /v1/projects/KEY/settings
                                        answers 200 for any key but a revoked one, which gets
                                        Segment's 404; POST /__revoke?key=K and /__restore?key=K.
                                        HOST defaults to 127.0.0.1 (scripts/sam-local passes the
                                        Docker bridge gateway, which containers can reach)
  devtool.py post URL TOKEN EVENTFILE   POST the Currents body of an events/ HTTP API file with the token
  devtool.py outage URL on|off
  devtool.py revoke|restore URL KEY     make the stand-in's settings answer 404 (or 200 again) for KEY
  devtool.py replay WATCH QUEUE_URL [HELD_FILE]
                                        read RetryQueue like Lambda's SQS trigger and invoke replay;
                                        HELD_FILE: first show again what the last run left failing,
                                        cutting its backoff short (local walk-through only)
  devtool.py held RETRY_URL [EXPECT]    which events RetryQueue holds, and why (their last_error)
  devtool.py log FILE SINCE             WARN/ERROR and secret lines of the watch log after line SINCE
  devtool.py mark STATE CAPTURE LOG DEAD_URL
                                        remember where the capture file, the watch log and the
                                        DeadLetterQueue stand, so `report` shows only what comes after
  devtool.py report STATE CAPTURE LOG RETRY_URL DEAD_URL [sample] [body=EVENTFILE] [expect-sent=N]
                                        [expect-held=N]
                                        what happened since the last mark, event by event: names and
                                        counts Segment received (sample: one message pretty-printed),
                                        each dead letter with its code, each skipped event with its
                                        reason (body: the events/ file posted, previewed with
                                        `currents-segment transform`), what RetryQueue holds, and our
                                        WARN/ERROR log lines; then marks again
  devtool.py secret create NAME KEY | put ARN KEY
                                        the runtime secret {"SEGMENT_WRITE_KEY": KEY}, in moto
"""
import base64, collections, json, os, re, subprocess, sys, textwrap, threading, urllib.parse, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# What Segment's settings CDN answers, with a 404, for a write key it does not know; the
# bridge holds a route's events only on this text.
INVALID_KEY_TEXT = "Cannot GET - Invalid path or write key provided."


def key_tail(key):
    """A write key as this tool shows it: its last 4 characters, never the whole key."""
    return "..." + key[-4:] if len(key) >= 8 else "..."


def capture(port, path, host="127.0.0.1"):
    state = {"outage": False, "revoked": set()}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            parts = urllib.parse.urlsplit(self.path).path.split("/")
            if len(parts) != 5 or parts[1:3] != ["v1", "projects"] or parts[4] != "settings":
                return self.answer(404, {"error": "not found"})
            key = urllib.parse.unquote(parts[3])
            with lock:
                revoked = key in state["revoked"]
            print(f"settings: key {key_tail(key)}: " + ("404, revoked" if revoked else "200"), flush=True)
            if revoked:
                return self.answer(404, INVALID_KEY_TEXT)
            # A source's settings name its ingestion host; here, this stand-in.
            self.answer(200, {"integrations": {"Segment.io": {"apiHost": f"{self.headers.get('host', host)}/v1"}}})

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/__outage":
                state["outage"] = self.path.endswith("on")
                return self.answer(200, {"outage": state["outage"]})
            if url.path in ("/__revoke", "/__restore"):
                key = urllib.parse.parse_qs(url.query).get("key", [""])[0]
                with lock:
                    (state["revoked"].add if url.path == "/__revoke" else state["revoked"].discard)(key)
                    revoked = sorted(key_tail(k) for k in state["revoked"])
                print(f"settings: key {key_tail(key)} {url.path[3:]}d", flush=True)
                return self.answer(200, {"revoked": revoked})
            if url.path != "/v1/batch":
                return self.answer(404, {"error": "not found"})
            if state["outage"]:
                return self.answer(503, {"error": "simulated outage"})
            batch = json.loads(body)
            key = write_key(self.headers.get("authorization", ""), batch)
            with lock:
                dropped = key in state["revoked"]
            # Real Segment answers 200 to a revoked key and drops the batch: record it, marked.
            batch["_capture"] = {"write_key": key_tail(key), "dropped": dropped}
            with lock, open(path, "a") as f:
                f.write(json.dumps(batch) + "\n")
            names = collections.Counter(m["event"] for m in batch["batch"])
            print(f"segment: batch of {len(batch['batch'])}, key {key_tail(key)}{' (REVOKED: Segment would drop it)' if dropped else ''}: "
                  + ", ".join(f"{n} x{c}" for n, c in names.most_common(4)) + (" ..." if len(names) > 4 else ""), flush=True)
            self.answer(200, {"success": True})

        def answer(self, status, value):
            text = isinstance(value, str)
            data = value.encode() if text else json.dumps(value).encode()
            self.send_response(status)
            self.send_header("content-type", "text/plain" if text else "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    ThreadingHTTPServer((host, int(port)), Handler).serve_forever()


def write_key(authorization, batch):
    """The write key of a batch: HTTP basic auth (user = key), or `writeKey` in the body."""
    if authorization.lower().startswith("basic "):
        try:
            return base64.b64decode(authorization[6:]).decode().split(":", 1)[0]
        except ValueError:
            pass
    return batch.get("writeKey", "")


def request(url, data, headers=None):
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=900) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def event_body(event_file):
    """The body of an API Gateway v2 event file, as bytes, and the event."""
    with open(event_file) as f:
        event = json.load(f)
    return (base64.b64decode(event["body"]) if event.get("isBase64Encoded") else event["body"].encode()), event


def post(url, token, event_file):
    """Sends the body of an API Gateway v2 event file as Braze would, keeping its encoding."""
    body, event = event_body(event_file)
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json", "braze-currents-version": "1"}
    if "content-encoding" in event.get("headers", {}):
        headers["content-encoding"] = event["headers"]["content-encoding"]
    status, answer = request(url, body, headers)
    print(f"braze -> ingest: HTTP {status} {answer.decode()}")


def replay(watch, queue_url, held_file=None):
    import boto3
    sqs = boto3.client("sqs")
    if held_file:
        reveal(sqs, queue_url, held_file)
    records = []
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
        if not got:
            break
        for m in got:
            records.append({"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                            "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
                            "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:currents-retry", "awsRegion": "us-east-1"})
    if not records:
        print("replay: RetryQueue is empty")
        return
    status, answer = request(f"{watch}/2015-03-31/functions/replay/invocations", json.dumps({"Records": records}).encode())
    if status != 200:
        sys.exit(f"replay: the function answered HTTP {status}: {answer[:300].decode(errors='replace')}")
    failures = {f["itemIdentifier"] for f in json.loads(answer).get("batchItemFailures", [])}
    for record in records:  # what Lambda's event source does: delete what succeeded
        if record["messageId"] not in failures:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"])
    if held_file:
        with open(held_file, "w") as f:
            json.dump([r["receiptHandle"] for r in records if r["messageId"] in failures], f)
    kept = f"{len(failures)} kept there (batch-item failure; replay hid it for its backoff)" if failures else "none kept"
    print(f"replay: {len(records)} envelope(s) from RetryQueue: {len(records) - len(failures)} settled and deleted, {kept}")


def reveal(sqs, queue_url, held_file):
    """For the local walk-through only: makes the records the last `replay ... HELD_FILE` left
    failing visible again at once. Replay hides such a record for a backoff (60 s, doubling on
    every receive); in AWS it simply comes back when that ends, and nothing should cut it short.
    Here it would make the walk-through wait a minute after the rotation."""
    import botocore.exceptions
    try:
        with open(held_file) as f:
            handles = json.load(f)
    except FileNotFoundError:
        return
    shown = 0
    for handle in handles:
        try:
            sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
            shown += 1
        except botocore.exceptions.ClientError:
            pass  # settled or received since
    if shown:
        print(f"replay: {shown} held record(s) made visible again, cutting their backoff short (local walk-through only)")


def peek(sqs, url):
    """The envelopes visible on a queue, left where they were. SQS counts each look as a receive,
    and replay's backoff doubles with that count: after one look, a first failed replay hides a
    record for 120 s, not 60 s."""
    return [envelope for _, envelope in peek_ids(sqs, url)]


def peek_ids(sqs, url):
    """peek, each envelope with its SQS message id."""
    envelopes, seen = [], []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=5).get("Messages", [])
        if not got:
            break
        for m in got:
            envelopes.append((m["MessageId"], json.loads(m["Body"])))
            seen.append(m["ReceiptHandle"])
    for handle in seen:  # leave them where they were
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    return envelopes




def describe(messages, most=4):
    """A few words on Segment messages: their event names (the commonest first) and users."""
    names = collections.Counter(m.get("event", m.get("type", "?")) for m in messages)
    users = sorted({m.get("userId") or m.get("anonymousId") or "?" for m in messages})
    shown = ", ".join(f"{n}" + (f" x{c}" if c > 1 else "") for n, c in names.most_common(most))
    more = f" and {len(names) - most} more kinds" if len(names) > most else ""
    who = ", ".join(users[:3]) + (f" and {len(users) - 3} more" if len(users) > 3 else "")
    return f"{shown}{more}; user(s) {who}"


def expect_count(what, got, expect):
    if expect is not None and got != int(expect):
        sys.exit(f"FAIL: {what}: {got}, expected {expect}")


def held(retry_url, expect=None, indent=""):
    """What RetryQueue holds, and why: per route and last_error, which events. With EXPECT, exits
    1 unless that many events are held."""
    import boto3
    sqs = boto3.client("sqs")
    groups = collections.defaultdict(list)
    for envelope in peek(sqs, retry_url):
        groups[(envelope.get("route", "?"), envelope.get("last_error", ""))].append(envelope)
    hidden = sqs.get_queue_attributes(QueueUrl=retry_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    in_flight = int(hidden["Attributes"]["ApproximateNumberOfMessagesNotVisible"])
    if not groups:
        print(f"{indent}RetryQueue: nothing visible")
    total = 0
    for (route, error), envelopes in groups.items():
        messages = [m for e in envelopes for m in e.get("messages", [])]
        total += len(messages)
        print(f"{indent}RetryQueue: {len(messages)} event(s) of route {route} in {len(envelopes)} envelope(s), not sent to Segment")
        print(f"{indent}  why:    {error}")
        print(f"{indent}  events: {describe(messages)}")
    if in_flight:
        print(f"{indent}RetryQueue: {in_flight} more envelope(s) backing off after a failed replay")
    expect_count("events held on RetryQueue", total, expect)




# Lines in watch.log that are the Lambda emulator's, not the bridge's: the lambda_runtime crate
# warns once per function start because cargo lambda watch sets AWS_LAMBDA_MAX_CONCURRENCY
# (it cannot be unset there). cargo-lambda's own lines are plain text, not JSON, and never shown.
EMULATOR_LINES = ("AWS_LAMBDA_MAX_CONCURRENCY is set",)


def settled_lines(path, since):
    """The lines of a log after the first SINCE, once it stops growing: cargo lambda watch writes
    them a moment after the answer."""
    import time
    size = -1
    for _ in range(15):
        with open(path, errors="replace") as f:
            lines = f.readlines()[int(since):]
        if len(lines) == size:
            break
        size = len(lines)
        time.sleep(0.2)
    return lines


def json_lines(lines):
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # cargo-lambda's own plain-text lines
        if isinstance(entry, dict):
            yield entry


def log(path, since):
    """The function log lines, after the first SINCE lines, a person should see: WARN and ERROR,
    and the secret's re-reads; the emulator's own lines left out. Equal lines (but for an event's
    index) are shown once, with a count."""
    shown = collections.Counter()
    for entry in json_lines(settled_lines(path, since)):
        if "level" not in entry:
            continue  # metrics (EMF)
        fields = dict(entry.get("fields", {}))
        message = fields.pop("message", "")
        fields.pop("index", None)
        if message.startswith(EMULATOR_LINES):
            continue
        if entry["level"] in ("WARN", "ERROR") or "secret" in message.lower():
            detail = " ".join(f"{k}={v}" for k, v in fields.items())
            shown[f"  log {entry['level']:5} {message}" + (f" [{detail}]" if detail else "")] += 1
    for line, count in shown.items():
        print(line + (f" x{count}" if count > 1 else ""))


def line_count(path):
    try:
        with open(path, errors="replace") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def mark(state, capture_file, log_path, dead_url, dead_ids=None, names=()):
    """Remembers where the capture file, the watch log and the DeadLetterQueue stand, and the
    lists of event names shown so far."""
    if dead_ids is None:
        import boto3
        dead_ids = [message_id for message_id, _ in peek_ids(boto3.client("sqs"), dead_url)]
    with open(state, "w") as f:
        json.dump({"capture": line_count(capture_file), "log": line_count(log_path), "dead": sorted(dead_ids), "names": list(names)}, f)


def wrapped(items, indent="    "):
    """Items joined by commas and wrapped at 100 columns, never inside an item."""
    text = textwrap.fill(", ".join(i.replace(" ", "\u00a0") for i in items), width=100, break_on_hyphens=False,
                         initial_indent=indent, subsequent_indent=indent)
    return text.replace("\u00a0", " ")


def report_segment(batches, sample, shown):
    """What Segment received in these batches, by write key: every event name with its count.
    A list of names already in `shown` (lists printed by earlier steps) is not printed again."""
    groups = collections.defaultdict(list)
    for batch in batches:
        capture = batch.get("_capture", {})
        groups[(capture.get("write_key", "?"), capture.get("dropped", False))].append(batch)
    if not groups:
        print("  Segment received nothing")
    for (key, dropped), group in groups.items():
        messages = [m for b in group for m in b["batch"]]
        names = collections.Counter(m.get("event", "?") for m in messages)
        drop = " (REVOKED: Segment would drop them)" if dropped else ""
        print(f"  Segment received {len(messages)} message(s) in {len(group)} batch(es), write key {key}{drop}, "
              f"{len(names)} event name(s) (xN: N messages):")
        items = [n + (f" x{c}" if c > 1 else "") for n, c in sorted(names.items(), key=lambda nc: (-nc[1], nc[0]))]
        if items in shown:
            print(f"    the same names and counts as listed earlier: {', '.join(items[:2])} and {len(items) - 2} more" if len(items) > 3 else wrapped(items))
        else:
            print(wrapped(items))
            shown.append(items)
    if sample and batches:
        print("  one of them, as Segment received it:")
        print(textwrap.indent(json.dumps(batches[0]["batch"][0], indent=2, ensure_ascii=False), "    "))


def raw_id(event):
    """The id and event_type of a dead-lettered raw event, or of its excerpt when it was cut."""
    if isinstance(event, dict):
        return str(event.get("id", "(no id)")), str(event.get("event_type", "?"))
    if isinstance(event, str):  # an excerpt of an event too large to keep whole
        found = [re.search(rf'"{k}"\s*:\s*"([^"]*)"', event) for k in ("id", "event_type")]
        return tuple(m.group(1) if m else "?" for m in found)
    return f"<{json.dumps(event)[:16]}>", "(not an object)"


def report_dead(new):
    """Each event in the new dead letters: its code (or the envelope's reason) and why."""
    events = sum(len(e.get("events", [])) + len(e.get("messages", [])) + ("body" in e) for _, e in new)
    if not new:
        print("  dead-lettered: nothing")
        return
    print(f"  dead-lettered {events} event(s) in {len(new)} envelope(s) on DeadLetterQueue:")
    for _, envelope in new:
        reason, error = envelope.get("reason", "retries_exhausted"), envelope.get("last_error", "")
        code, _, detail = error.partition(": ") if reason == "invalid_event" else (reason, None, error)
        for event in envelope.get("events", []):
            event_id, event_type = raw_id(event)
            print(f"    {code:<19} {event_id:<18} {event_type:<28} {detail}")
        for message in envelope.get("messages", []):
            print(f"    {code:<19} {message.get('messageId', '?'):<18} {message.get('event', '?'):<28} {detail}")
        if "body" in envelope:
            print(f"    {code:<19} (an SQS body kept as received) {detail}")


def report_skipped(entries, body_file):
    """Skipped events, from the functions' Skipped metrics (by reason); with the posted body,
    each event named by `currents-segment transform` on the same body, and the two compared."""
    by_reason = collections.Counter()
    for entry in entries:
        if "Skipped" in entry and "Reason" in entry:
            by_reason[entry["Reason"]] += int(entry["Skipped"])
    if not by_reason:
        print("  skipped: nothing")
        return
    print(f"  skipped {sum(by_reason.values())} event(s), each by a documented rule (not sent, not dead-lettered):")
    if not body_file:
        print(wrapped(f"{r} x{c}" for r, c in by_reason.items()))
        return
    cli = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "debug", "currents-segment")
    preview = subprocess.run([cli, "transform", "--compact"], input=event_body(body_file)[0],
                             capture_output=True, check=True)
    rows = json.loads(preview.stdout)["skipped"]
    for row in rows:
        print(f"    {row['reason']:<19} {row['id']:<18} {row['event_type']}")
    if collections.Counter(row["reason"] for row in rows) != by_reason:
        sys.exit(f"FAIL: ingest skipped {dict(by_reason)}, transform of the same body {len(rows)} event(s)")


def report(state, capture_file, log_path, retry_url, dead_url, *options):
    """What happened since the last `mark`, event by event; then marks again. Options: `sample`,
    `body=EVENTFILE`, `expect-sent=N`, `expect-held=N` (exit 1 when a count is off), `real-segment`
    (SEGMENT_WRITE_KEY is set: what Segment got is not captured, so not shown)."""
    import boto3
    opts = dict(o.partition("=")[::2] for o in options)
    with open(state) as f:
        marks = json.load(f)
    with open(capture_file) as f:
        batches = [json.loads(line) for line in f][marks["capture"]:]
    print("  this step only (queues: what they hold now):")
    shown = marks.get("names", [])
    if "real-segment" in opts:
        print("  Segment: your real source; see its debugger (nothing is captured here)")
    else:
        report_segment(batches, "sample" in opts, shown)
    expect_count("messages sent to Segment", sum(len(b["batch"]) for b in batches), opts.get("expect-sent"))
    if "expect-sent" in opts and any(b.get("_capture", {}).get("dropped") for b in batches):
        sys.exit("FAIL: messages were sent with a revoked write key")
    sqs = boto3.client("sqs")
    dead = peek_ids(sqs, dead_url)
    report_dead([(i, e) for i, e in dead if i not in set(marks["dead"])])
    lines = settled_lines(log_path, marks["log"])
    report_skipped(list(json_lines(lines)), opts.get("body"))
    held(retry_url, opts.get("expect-held"), indent="  ")
    log(log_path, marks["log"])
    mark(state, capture_file, log_path, dead_url, [i for i, _ in dead], shown)


def secret(action, secret_id, key):
    """`create NAME KEY` prints the new secret's ARN; `put ARN KEY` rotates it. The secret holds
    {"SEGMENT_WRITE_KEY": KEY}, as a production runtime secret would (README, runtime secret)."""
    import boto3
    client = boto3.client("secretsmanager")
    value = json.dumps({"SEGMENT_WRITE_KEY": key})
    if action == "create":
        print(client.create_secret(Name=secret_id, SecretString=value)["ARN"])
        return
    client.put_secret_value(SecretId=secret_id, SecretString=value)
    name = client.describe_secret(SecretId=secret_id)["Name"]
    print(f"secrets: {name} now holds SEGMENT_WRITE_KEY {key_tail(key)} (put_secret_value; no redeploy)")


def settings_key(url, key, action):
    status, _ = request(f"{url}/__{action}?" + urllib.parse.urlencode({"key": key}), b"")
    if status != 200:
        sys.exit(f"{action}: the capture server answered HTTP {status}")
    now = f'404 "{INVALID_KEY_TEXT}"' if action == "revoke" else "200 with its settings"
    print(f"segment: write key {key_tail(key)} {action}d; GET /v1/projects/<key>/settings now answers {now}")




if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help", "help"):
        sys.exit(__doc__)
    command, args = sys.argv[1], sys.argv[2:]
    commands = {"capture": capture, "post": post, "replay": replay,
     "held": held, "log": log, "secret": secret, "mark": mark, "report": report,
     "outage": lambda url, on: print(request(f"{url}/__outage?{on}", b"")[1].decode()),
     "revoke": lambda url, key: settings_key(url, key, "revoke"),
     "restore": lambda url, key: settings_key(url, key, "restore")}
    if command not in commands:
        sys.exit(f"devtool.py: unknown command `{command}`\n{__doc__}")
    import inspect
    try:
        inspect.signature(commands[command]).bind(*args)
    except TypeError as error:
        sys.exit(f"devtool.py {command}: wrong arguments ({error})\n{__doc__}")
    commands[command](*args)
