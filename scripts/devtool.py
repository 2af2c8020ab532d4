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
  devtool.py replay WATCH QUEUE_URL     read RetryQueue like Lambda's SQS trigger and invoke replay
  devtool.py queues RETRY_URL DEAD_URL  count what waits in each queue, with dead-letter reasons
  devtool.py segment FILE               summarise what Segment received
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


def replay(watch, queue_url):
    import boto3
    sqs = boto3.client("sqs")
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
    failures = {f["itemIdentifier"] for f in json.loads(answer).get("batchItemFailures", [])}
    for record in records:  # what Lambda's event source does: delete what succeeded
        if record["messageId"] not in failures:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"])
    print(f"replay: {len(records)} parked envelope(s), {len(failures)} still failing")


def queues(retry_url, dead_url):
    import boto3
    sqs = boto3.client("sqs")
    for name, url in (("RetryQueue", retry_url), ("DeadLetterQueue", dead_url)):
        reasons = collections.Counter()
        messages = 0
        seen = []
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=5).get("Messages", [])
            if not got:
                break
            for m in got:
                envelope = json.loads(m["Body"])
                reasons[envelope.get("reason", "parked")] += 1
                messages += len(envelope.get("messages", [])) + len(envelope.get("events", []))
                seen.append(m["ReceiptHandle"])
        for handle in seen:  # leave them where they were
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
        hidden = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
        in_flight = int(hidden["Attributes"]["ApproximateNumberOfMessagesNotVisible"]) - len(seen)
        detail = ", ".join(f"{r}: {c}" for r, c in reasons.items()) or "none visible"
        waiting = f", {in_flight} more backing off after a failed replay" if in_flight > 0 else ""
        print(f"{name}: {sum(reasons.values())} envelope(s), {messages} event(s) ({detail}){waiting}")


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
    command, args = sys.argv[1], sys.argv[2:]
    {"capture": capture, "post": post, "replay": replay, "queues": queues, "segment": segment,
     "outage": lambda url, on: print(request(f"{url}/__outage?{on}", b"")[1].decode()),
     "revoke": lambda url, key: settings_key(url, key, "revoke"),
     "restore": lambda url, key: settings_key(url, key, "restore")}[command](*args)
