#!/usr/bin/env python3
"""inferbench vs a plain stdlib client against one real OpenAI-compatible server (llama.cpp's
llama-server), in the same hour: requests lost, client TTFT minus the server's own prefill time,
client ITL over the server's own per-token time, and the server's per-token time under each.

The stdlib client opens a new connection per request (nothing to reuse, nothing to lose). Both
ask for the same thing: streaming chat, `--max-tokens` output tokens (ignore_eos), a prompt of
about `--prompt-tokens` tokens. The server's own figures come from its /metrics deltas
(llamacpp:prompt_seconds_total, llamacpp:tokens_predicted_seconds_total, ...) around each client's
run, and from the `timings` object of each streamed answer.

Usage: scripts/real-server-compare.py --url http://127.0.0.1:8091 [--concurrency 4 --requests 80]
Only stdlib; sends traffic only to the URL given (use 127.0.0.1).
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse


def scrape(url):
    u = urllib.parse.urlparse(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            pass
    return out


def server_view(before, after):
    d = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    predicted = d.get("llamacpp:tokens_predicted_total", 0.0)
    prompt_tokens = d.get("llamacpp:prompt_tokens_total", 0.0)
    return {
        "predicted_tokens": predicted,
        "per_token_ms": 1000 * d.get("llamacpp:tokens_predicted_seconds_total", 0.0) / predicted
        if predicted
        else float("nan"),
        "prompt_seconds": d.get("llamacpp:prompt_seconds_total", 0.0),
        "prompt_tokens": prompt_tokens,
    }


def pct(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def stdlib_client(url, model, concurrency, requests, max_tokens, prompt_words):
    u = urllib.parse.urlparse(url)
    lock = threading.Lock()
    todo = list(range(requests))
    results = []

    def one(k):
        prompt = f"{k} " + " ".join(f"word{(k * 7 + i) % 997}" for i in range(prompt_words))
        body = json.dumps(
            {
                "model": model,
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": max_tokens,
                "ignore_eos": True,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
        )
        r = {"ok": False, "ttft": None, "gaps": [], "timings": None, "tokens": 0}
        t0 = time.monotonic()
        try:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
            c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
            resp = c.getresponse()
            if resp.status != 200:
                r["error"] = f"http {resp.status}"
                return r
            last = None
            done = False
            while True:
                line = resp.readline()
                if not line:
                    break
                line = line.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    done = True
                    break
                ev = json.loads(data)
                now = time.monotonic()
                if ev.get("timings"):
                    r["timings"] = ev["timings"]
                if ev.get("usage"):
                    r["tokens"] = ev["usage"].get("completion_tokens", 0)
                for ch in ev.get("choices") or []:
                    delta = ch.get("delta") or {}
                    if delta.get("content") or delta.get("reasoning_content"):
                        if r["ttft"] is None:
                            r["ttft"] = now - t0
                        elif last is not None:
                            r["gaps"].append(now - last)
                        last = now
            c.close()
            r["ok"] = done and r["ttft"] is not None
        except Exception as e:  # noqa: BLE001 - every failure is counted, never lost
            r["error"] = repr(e)
        return r

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                k = todo.pop(0)
            r = one(k)
            with lock:
                results.append(r)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def run_inferbench(exe, url, model, concurrency, requests, max_tokens, prompt_tokens):
    out = tempfile.mkdtemp(prefix="inferbench-real-")
    cmd = [
        exe, "run", "--target", url, "--model", model, "--concurrency", str(concurrency),
        "--requests", str(requests), "--prompt-tokens", str(prompt_tokens),
        "--output-tokens", str(max_tokens), "--stream", "--log-requests", "--no-history",
        "--out", out,
    ]
    p = subprocess.run(cmd, capture_output=True, text=True)
    lines = []
    for name in os.listdir(out):
        if name.startswith("requests-") and name.endswith(".jsonl"):
            with open(os.path.join(out, name)) as f:
                lines += [json.loads(x) for x in f if x.strip()]
    report = json.load(open(os.path.join(out, "report.json")))
    total = report["scenarios"][0]["total"]
    return p.returncode, p.stdout.strip().splitlines()[-1:] if p.stdout else [], lines, total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8091")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--prompt-words", type=int, default=0,
                    help="words in the stdlib client's prompt (default: prompt tokens / 3)")
    ap.add_argument("--inferbench", default="target/release/inferbench")
    ap.add_argument("--skip-stdlib", action="store_true", help="run inferbench only")
    a = ap.parse_args()
    words = a.prompt_words or max(1, a.prompt_tokens // 3)

    rows = []
    m0 = scrape(a.url)
    rc, last, lines, total = run_inferbench(
        a.inferbench, a.url, a.model, a.concurrency, a.requests, a.max_tokens, a.prompt_tokens
    )
    m1 = scrape(a.url)
    sv = server_view(m0, m1)
    ok = [x for x in lines if not x.get("error") and not x.get("warmup")]
    ttft = [(x["first_token_us"] - x["sent_us"]) / 1000 for x in ok if x.get("first_token_us")]
    itl = []
    # ITL from the log: (end - first token) / (events - 1) per request, the mean gap.
    for x in ok:
        if x.get("token_events", 0) > 1:
            itl.append((x["end_us"] - x["first_token_us"]) / 1000 / (x["token_events"] - 1))
    rows.append(("inferbench", len(lines), len(ok), total["client"].get("reconnects", 0),
                 ttft, itl, sv, [x.get("completion_tokens") for x in ok], rc, last))

    m2 = scrape(a.url)
    res = [] if a.skip_stdlib else stdlib_client(
        a.url, a.model, a.concurrency, a.requests, a.max_tokens, words)
    m3 = scrape(a.url)
    sv2 = server_view(m2, m3)
    ok2 = [r for r in res if r["ok"]]
    itl2 = [statistics.mean(r["gaps"]) * 1000 for r in ok2 if r["gaps"]]
    rows.append(("stdlib (new conn/request)", len(res), len(ok2), 0,
                 [r["ttft"] * 1000 for r in ok2], itl2, sv2, [r["tokens"] for r in ok2], 0, []))
    server_prefill = [r["timings"]["prompt_ms"] for r in ok2 if r.get("timings")]

    print(f"server {a.url}, concurrency {a.concurrency}, {a.requests} requests, "
          f"{a.max_tokens} output tokens, streaming")
    hdr = ("client", "sent", "ok", "lost", "reconnects", "TTFT p50 ms", "server prefill ms (mean)",
           "TTFT p50 - prefill", "TTFT mean - prefill mean", "ITL p50 ms", "server ms/token", "ITL/server", "tokens/answer",
           "client tokens", "server tokens")
    print(" | ".join(hdr))
    for name, sent, n_ok, reconn, t, i, s, toks, rc, last in rows:
        n_req = max(1, n_ok)
        prefill = 1000 * s["prompt_seconds"] / n_req
        print(" | ".join([
            name, str(sent), str(n_ok), str(sent - n_ok), str(reconn),
            f"{pct(t, 0.5):.1f}", f"{prefill:.1f}", f"{pct(t, 0.5) - prefill:.1f}",
            f"{(statistics.mean(t) if t else float('nan')) - prefill:.1f}",
            f"{pct(i, 0.5):.2f}", f"{s['per_token_ms']:.2f}",
            f"{pct(i, 0.5) / s['per_token_ms']:.3f}" if s["per_token_ms"] == s["per_token_ms"] else "nan",
            f"{statistics.mean([x for x in toks if x] or [0]):.1f}",
            str(sum(x or 0 for x in toks)), f"{s['predicted_tokens']:.0f}",
        ]))
        if last:
            print(f"  inferbench exit {rc}; last line: {last[0]}")
    if server_prefill:
        print(f"stdlib: server prefill from `timings` p50 {pct(server_prefill, 0.5):.1f} ms")
    a_tok, b_tok = rows[0][6]["per_token_ms"], rows[1][6]["per_token_ms"]
    if b_tok == b_tok and b_tok:
        print(f"server per-token time under inferbench / under stdlib: {a_tok / b_tok:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
