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
  devtool.py queues RETRY_URL DEAD_URL  count what waits in each queue, with dead-letter reasons
  devtool.py held RETRY_URL [EXPECT]    which events RetryQueue holds, and why (their last_error)
  devtool.py segment FILE               summarise what Segment received
  devtool.py received FILE SINCE [EXPECT]
                                        which events Segment received after the first SINCE batches
  devtool.py log FILE SINCE             WARN/ERROR and secret lines of the watch log after line SINCE
  devtool.py secret create NAME KEY | put ARN KEY
                                        the runtime secret {"SEGMENT_WRITE_KEY": KEY}, in moto
"""
import base64, collections, json, sys, threading, urllib.parse, urllib.request
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


def post(url, token, event_file):
    """Sends the body of an API Gateway v2 event file as Braze would, keeping its encoding."""
    import base64
    with open(event_file) as f:
        event = json.load(f)
    body = base64.b64decode(event["body"]) if event.get("isBase64Encoded") else event["body"].encode()
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
    envelopes, seen = [], []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=5).get("Messages", [])
        if not got:
            break
        for m in got:
            envelopes.append(json.loads(m["Body"]))
            seen.append(m["ReceiptHandle"])
    for handle in seen:  # leave them where they were
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    return envelopes


def queues(retry_url, dead_url):
    import boto3
    sqs = boto3.client("sqs")
    for name, url in (("RetryQueue", retry_url), ("DeadLetterQueue", dead_url)):
        envelopes = peek(sqs, url)
        reasons = collections.Counter(envelope.get("reason", "parked") for envelope in envelopes)
        messages = sum(len(e.get("messages", [])) + len(e.get("events", [])) for e in envelopes)
        # What is still not visible after peek gave its envelopes back: records a failed replay hid.
        hidden = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
        in_flight = int(hidden["Attributes"]["ApproximateNumberOfMessagesNotVisible"])
        detail = ", ".join(f"{r}: {c}" for r, c in reasons.items()) or "none visible"
        waiting = f", {in_flight} more backing off after a failed replay" if in_flight > 0 else ""
        print(f"{name}: {len(envelopes)} envelope(s), {messages} event(s) ({detail}){waiting}")


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


def held(retry_url, expect=None):
    """What RetryQueue holds, and why: per route and last_error, which events. With EXPECT, exits
    1 unless that many events are held."""
    import boto3
    groups = collections.defaultdict(list)
    for envelope in peek(boto3.client("sqs"), retry_url):
        groups[(envelope.get("route", "?"), envelope.get("last_error", ""))].append(envelope)
    if not groups:
        print("RetryQueue: nothing visible")
    total = 0
    for (route, error), envelopes in groups.items():
        messages = [m for e in envelopes for m in e.get("messages", [])]
        total += len(messages)
        print(f"RetryQueue: {len(messages)} event(s) of route {route} in {len(envelopes)} envelope(s), not sent to Segment")
        print(f"  why:    {error}")
        print(f"  events: {describe(messages)}")
    expect_count("events held on RetryQueue", total, expect)


def received(path, since, expect=None):
    """What Segment received after the first SINCE batches: per write key, which events. With
    EXPECT, exits 1 unless that many messages came, none with a revoked key."""
    with open(path) as f:
        batches = [json.loads(line) for line in f][int(since):]
    groups = collections.defaultdict(list)
    for batch in batches:
        capture = batch.get("_capture", {})
        groups[(capture.get("write_key", "?"), capture.get("dropped", False))].append(batch)
    if not groups:
        print("Segment received nothing new")
    for (key, dropped), group in groups.items():
        messages = [m for b in group for m in b["batch"]]
        drop = " (REVOKED: Segment would drop them)" if dropped else ""
        print(f"Segment received {len(messages)} message(s) in {len(group)} batch(es) with write key {key}{drop}")
        print(f"  events: {describe(messages)}")
    expect_count("messages sent to Segment", sum(len(b["batch"]) for b in batches), expect)
    if expect is not None and any(dropped for _, dropped in groups):
        sys.exit("FAIL: messages were sent with a revoked write key")


def log(path, since):
    """The function log lines, after the first SINCE lines, a person should see: WARN and ERROR,
    and the secret's re-reads. cargo lambda watch writes them a moment after the answer."""
    import time
    size = -1
    for _ in range(15):
        with open(path, errors="replace") as f:
            lines = f.readlines()[int(since):]
        if len(lines) == size:
            break
        size = len(lines)
        time.sleep(0.2)
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if "level" not in entry:
            continue  # metrics (EMF)
        fields = dict(entry.get("fields", {}))
        message = fields.pop("message", "")
        if entry["level"] in ("WARN", "ERROR") or "secret" in message.lower():
            detail = " ".join(f"{k}={v}" for k, v in fields.items())
            print(f"  log {entry['level']:5} {message}" + (f" [{detail}]" if detail else ""))


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


def segment(path):
    try:
        with open(path) as f:
            batches = [json.loads(line) for line in f]
    except FileNotFoundError:
        batches = []
    ids = [m["messageId"] for b in batches for m in b["batch"]]
    dropped = sum(len(b["batch"]) for b in batches if b.get("_capture", {}).get("dropped"))
    print(f"Segment received {len(batches)} batch(es), {len(ids)} message(s), {len(set(ids))} distinct messageId(s)"
          + (f"; {dropped} sent with a revoked write key, which Segment would drop" if dropped else ""))


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help", "help"):
        sys.exit(__doc__)
    command, args = sys.argv[1], sys.argv[2:]
    commands = {"capture": capture, "post": post, "replay": replay, "queues": queues, "segment": segment,
     "held": held, "received": received, "log": log, "secret": secret,
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
