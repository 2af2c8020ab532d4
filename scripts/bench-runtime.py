#!/usr/bin/env python3
"""Runs a Lambda binary under a minimal Lambda Runtime API emulator and reports its startup time
(process start to its first poll for an event), the time to its first answered event, and peak
RSS (VmHWM) after N invocations.

  bench-runtime.py BINARY EVENT_JSON COUNT [ENV=VALUE ...]

Standard library only. A Segment stand-in answering 200 at once runs in the same process; its
URL is passed to the binary as SEGMENT_ENDPOINT and as SEGMENT_SETTINGS_ENDPOINT, where it also
serves Segment's settings path, so the cold start checks the write key on loopback (pass
WRITE_KEY_CHECK=off to compare without the check). settings_requests counts those requests.
"""
import json, os, subprocess, sys, threading, time, uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

binary, event_file, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
extra_env = dict(kv.split("=", 1) for kv in sys.argv[4:])
with open(event_file, "rb") as f:
    event = f.read()

state = {"served": 0, "answered": 0, "errors": 0, "first_poll": None, "first_answer": None,
         "statuses": {}, "settings_requests": 0}
done = threading.Event()
lock = threading.Lock()


class Segment(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        # Segment's settings CDN: GET /v1/projects/<write_key>/settings.
        with lock:
            state["settings_requests"] += 1
        body = b'{"integrations":{"Segment.io":{"apiKey":"bench","apiHost":"127.0.0.1/v1"}}}'
        self.send_response(200 if self.path.endswith("/settings") else 404)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        body = b'{"success":true}'
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Runtime(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        if not self.path.endswith("/invocation/next"):
            return self.reply(404, b"{}")
        with lock:
            if state["first_poll"] is None:
                state["first_poll"] = time.monotonic()
            if state["served"] >= count:
                done.set()
                # Park the poller; the harness kills the process after reading its memory.
                time.sleep(3600)
                return
            state["served"] += 1
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(event)))
        self.send_header("lambda-runtime-aws-request-id", str(uuid.uuid4()))
        self.send_header("lambda-runtime-deadline-ms", str(int(time.time() * 1000) + 25_000))
        self.send_header("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:ingest")
        self.send_header("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000")
        self.end_headers()
        self.wfile.write(event)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        with lock:
            if self.path.endswith("/error"):
                state["errors"] += 1
            else:
                state["answered"] += 1
                if state["first_answer"] is None:
                    state["first_answer"] = time.monotonic()
                status = json.loads(body).get("statusCode")
                state["statuses"][status] = state["statuses"].get(status, 0) + 1
        self.reply(202, b"{}")

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(handler):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


segment_port, runtime_port = serve(Segment), serve(Runtime)
env = {
    "PATH": os.environ.get("PATH", ""),
    "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{runtime_port}",
    "AWS_LAMBDA_FUNCTION_NAME": "ingest", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_LAMBDA_LOG_STREAM_NAME": "bench", "AWS_LAMBDA_LOG_GROUP_NAME": "bench",
    "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_EC2_METADATA_DISABLED": "true",
    "SEGMENT_ENDPOINT": f"http://127.0.0.1:{segment_port}", "SEGMENT_WRITE_KEY": "bench",
    "SEGMENT_SETTINGS_ENDPOINT": f"http://127.0.0.1:{segment_port}",
    "RETRY_QUEUE_URL": "http://127.0.0.1:9/q", "DEAD_LETTER_QUEUE_URL": "http://127.0.0.1:9/d",
    "AWS_LAMBDA_LOG_LEVEL": "warn",
    **extra_env,
}
started = time.monotonic()
process = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
if not done.wait(timeout=600):
    process.kill()
    sys.exit("timed out")
elapsed = time.monotonic() - state["first_poll"]
with open(f"/proc/{process.pid}/status") as f:
    hwm_kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
process.kill()
print(json.dumps({
    "startup_ms": round((state["first_poll"] - started) * 1000, 1),
    "first_event_ms": round((state["first_answer"] - started) * 1000, 1) if state["first_answer"] else None,
    "settings_requests": state["settings_requests"],
    "invocations": state["answered"], "errors": state["errors"], "statuses": state["statuses"],
    "peak_rss_mb": round(hwm_kb / 1024, 1), "seconds": round(elapsed, 2),
}))
