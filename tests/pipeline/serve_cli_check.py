"""`character serve` as a process (CTest serve_cli_stops_on_signal): it prints its URL,
answers a chat request with the text `character generate` gives for the same
conversation (and transformers, fixture serve/cases.json), and exits 0 soon after
SIGINT, and after SIGTERM while a streamed request is being answered.

Usage: serve_cli_check.py --character BIN   (fixtures from $CHARACTER_FIXTURES)
"""
import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path


def start(binary, model_dir):
    proc = subprocess.Popen([binary, "serve", str(model_dir), "--port", "0", "--model-id", "tiny"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("character serve: http://127.0.0.1:"), f"unexpected first line {line!r}"
    return proc, line.split()[2]


def post(url, body, timeout=60):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as res:
        return res.read().decode()


def stop(proc, sig, what):
    if sig is not None:
        proc.send_signal(sig)
    try:
        rc = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise SystemExit(f"FAIL: serve did not stop within 30 s of {what}")
    err = proc.stderr.read()
    assert rc == 0, f"serve exited {rc} after {what}; stderr: {err}"
    print(f"ok: exit 0 after {what}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--character", required=True)
    args = parser.parse_args()
    fixtures = Path(os.environ.get("CHARACTER_FIXTURES") or Path(__file__).resolve().parents[2] / "build" / "fixtures")
    cases = json.loads((fixtures / "serve" / "cases.json").read_text())
    model_dir = fixtures / cases["model_dir"]
    case = next(c for c in cases["cases"] if c["name"] == "chat_greedy")

    with tempfile.TemporaryDirectory() as tmp:
        messages = Path(tmp) / "messages.json"
        messages.write_text(json.dumps(case["messages"]))
        generated = json.loads(subprocess.run(
            [args.character, "generate", str(model_dir), "--messages", str(messages), "--json",
             "--max-new-tokens", str(case["max_tokens"]), "--temperature", "0"],
            check=True, capture_output=True, text=True).stdout)

    proc, base = start(args.character, model_dir)
    try:
        body = {"model": "tiny", "messages": case["messages"], "max_tokens": case["max_tokens"], "temperature": 0}
        answer = json.loads(post(base + "/chat/completions", body))
        text = answer["choices"][0]["message"]["content"]
        assert text == generated["text"], f"serve {text!r} != generate {generated['text']!r}"
        assert text == case["text"], f"serve {text!r} != transformers {case['text']!r}"
        print(f"ok: serve = generate = transformers ({len(text)} bytes)")
        models = json.loads(urllib.request.urlopen(base + "/models", timeout=30).read())
        assert models["data"][0]["id"] == "tiny", models
    except BaseException:
        proc.kill()
        raise
    stop(proc, signal.SIGINT, "SIGINT")

    # SIGTERM once a long streamed answer has begun: the request finishes, then exit 0.
    proc, base = start(args.character, model_dir)
    try:
        host, port = base.removeprefix("http://").removesuffix("/v1").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        conn.request("POST", "/v1/chat/completions", json.dumps(dict(body, max_tokens=200, stream=True)),
                     {"Content-Type": "application/json"})
        res = conn.getresponse()  # the status line and headers: the stream has started
        assert res.status == 200, res.status
        first = res.readline()
        assert first.startswith(b"data: "), first
    except BaseException:
        proc.kill()
        raise
    proc.send_signal(signal.SIGTERM)
    rest = res.read().decode()
    assert rest.endswith("data: [DONE]\n\n"), rest[-200:]
    chunks = rest.count("data: ")
    print(f"ok: the stream in progress at SIGTERM was answered to [DONE] ({chunks} more events)")
    stop(proc, None, "SIGTERM during a streamed request")

if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
