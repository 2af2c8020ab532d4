#!/usr/bin/env python3
"""Assertions for scripts/sam-local, on what the functions answered and on what the Segment
stand-in and the queues received (never on sam's exit status). Each command prints one line
and exits 1 with the reason when the check fails.

  sam-local-check.py http ANSWER_FILE STATUS [EVENTS]
      ANSWER_FILE holds `sam local invoke` stdout (an API Gateway v2 response; the last JSON
      line counts) or, with a first line `HTTP <code>`, a curl answer. Checks the status and, for
      200, that the counts add up and `received` is EVENTS. Prints `delivered=N`.
  sam-local-check.py sqs ANSWER_FILE FAILURES
      A replay answer: exactly FAILURES batchItemFailures.
  sam-local-check.py segment CAPTURE_FILE MESSAGES
      The Segment stand-in received MESSAGES messages in all, each messageId once.
  sam-local-check.py queue QUEUE_URL ENVELOPES [REASON]
      The queue holds ENVELOPES envelopes (each with reason REASON when given); left in place.
  sam-local-check.py count EVENT_FILE        prints how many Currents events its body holds
  sam-local-check.py body EVENT_FILE OUT     writes its (plain JSON) body to OUT, for curl
"""
import json
import sys


def fail(message):
    print(f"FAIL: {message}")
    sys.exit(1)


def last_json(path):
    with open(path) as f:
        lines = [line.strip() for line in f if line.strip()]
    for line in reversed(lines):
        try:
            return json.loads(line)
        except ValueError:
            continue
    fail(f"{path}: no JSON answer (the function may have died at cold start); see its .err file")


def http(path, status, events=None):
    with open(path) as f:
        first = f.readline()
    if first.startswith("HTTP "):
        code, body = int(first.split()[1]), rest_of(path)
    else:
        answer = last_json(path)
        code, body = answer.get("statusCode"), answer.get("body", "")
    if code != int(status):
        fail(f"status {code}, expected {status}: {body[:300]}")
    if code != 200:
        print(f"ok: {code} {body[:200]}")
        return
    counts = json.loads(body)
    keys = ["received", "delivered", "parked", "skipped", "dead_lettered"]
    received, delivered, parked, skipped, dead = (counts[k] for k in keys)
    if received != delivered + parked + skipped + dead:
        fail(f"counts do not add up: {counts}")
    if events is not None and received != int(events):
        fail(f"received {received}, the body holds {events} events")
    if parked or dead:
        fail(f"Segment and SQS stand-ins are healthy, yet parked={parked} dead_lettered={dead}")
    print(f"ok: 200 {counts} delivered={delivered}")


def rest_of(path):
    with open(path) as f:
        return "".join(f.readlines()[1:])


def sqs(path, failures):
    answer = last_json(path)
    got = answer.get("batchItemFailures")
    if got is None or len(got) != int(failures):
        fail(f"expected {failures} batchItemFailures: {answer}")
    print(f"ok: {answer}")


def segment(path, messages):
    try:
        with open(path) as f:
            batches = [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        batches = []
    ids = [m["messageId"] for b in batches for m in b["batch"]]
    if len(ids) != int(messages):
        fail(f"Segment received {len(ids)} messages, expected {messages}")
    print(f"ok: Segment received {len(batches)} batch(es), {len(ids)} message(s)")


def queue(url, envelopes, reason=None):
    import boto3
    client = boto3.client("sqs")
    seen, reasons = [], []
    while True:
        got = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=5).get("Messages", [])
        if not got:
            break
        for m in got:
            seen.append(m["ReceiptHandle"])
            reasons.append(json.loads(m["Body"]).get("reason"))
    for handle in seen:  # leave them where they were
        client.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    if len(seen) != int(envelopes):
        fail(f"{url} holds {len(seen)} envelopes, expected {envelopes} (reasons {reasons})")
    if reason is not None and any(r != reason for r in reasons):
        fail(f"{url}: reasons {reasons}, expected {reason}")
    print(f"ok: {url.rsplit('/', 1)[-1]} holds {len(seen)} envelope(s), reasons {reasons}")


def count(path):
    with open(path) as f:
        print(len(json.loads(json.load(f)["body"])["events"]))


def body(path, out):
    with open(path) as f, open(out, "w") as o:
        o.write(json.load(f)["body"])


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"http": http, "sqs": sqs, "segment": segment, "queue": queue, "count": count, "body": body}[command](*args)
