#!/usr/bin/env python3
"""Where the start of a one-image reading goes, median of RUNS fresh processes each:

- the reading-only tool's process start with its libraries (`--version`);
- `bench --runs 1 --warmup 0`'s own figures: model load and the first forward pass;
- `predict` of one image, start to exit, the figure the reading targets name;
with the (minor) page faults of each: on virtual machines each can cost 10 us or more.

  bench/startup.py [MODEL] [RUNS] [THREADS]     defaults: models/general.safetensors, 11, 2
"""
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "captcha-ocr-read")


def run(args):
    """Wall ms and minor page faults of one process, and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
    ms = (time.perf_counter() - start) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ms, after.ru_minflt - before.ru_minflt, done.stdout


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "models", "general.safetensors")
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 11
    threads = sys.argv[3] if len(sys.argv) > 3 else "2"
    image = os.path.join(ROOT, "examples", sorted(n for n in os.listdir(os.path.join(ROOT, "examples")) if n.endswith(".png"))[0])
    cpu = open("/proc/cpuinfo").read().split("model name")[1].split(":")[1].split("\n")[0].strip()
    print(f"CPU: {cpu}; {os.cpu_count()} cores; {runs} runs each, medians; model {os.path.relpath(model, ROOT)}")

    def report(name, args):
        samples = [run(args) for _ in range(runs)]
        ms = statistics.median(s[0] for s in samples)
        faults = statistics.median(s[1] for s in samples)
        print(f"{name}: {ms:.1f} ms, {faults:.0f} page faults")
        return samples

    report("process start and libraries (--version)", [BIN, "--version"])
    samples = report("bench --runs 1 --warmup 0", [BIN, "bench", "--model", model, "--batch", "1", "--runs", "1",
                                                   "--warmup", "0", "--threads", threads, "--json"])
    figures = [json.loads(s[2]) for s in samples]
    print(f"  of which model load {statistics.median(f['load_ms'] for f in figures):.1f} ms, "
          f"first forward pass {statistics.median(f['first_forward_ms'] for f in figures):.1f} ms")
    report("start + load + read one image (predict)", [BIN, "predict", "--model", model, "--threads", threads, image])


if __name__ == "__main__":
    main()
