"""Shared helpers of the PyTorch peers: arguments, timing, the one JSON line on stdout."""
import json
import os
import resource
import statistics
import sys
import time

import torch


def args():
    return json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}


def setup(a):
    """Threads: `threads` from the caller if given (best configuration), else torch's default.
    `tf32`: let CUDA matmuls and convolutions round operands to TF32 (the tensor cores' float32 mode)."""
    if a.get("threads"):
        torch.set_num_threads(int(a["threads"]))
    if "tf32" in a:
        torch.backends.cuda.matmul.allow_tf32 = bool(a["tf32"])
        torch.backends.cudnn.allow_tf32 = bool(a["tf32"])
    torch.manual_seed(int(a.get("seed", 0)))


def time_it(fn, warmup=3, runs=7):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples), "samples": samples}


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(result):
    result["torch_version"] = torch.__version__
    result["torch_threads"] = torch.get_num_threads()
    if torch.cuda.is_available():
        result["cuda_device"] = torch.cuda.get_device_name()
        result["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    result["env"] = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY") if os.environ.get(k) is not None}
    result["peak_rss_mib"] = peak_rss_mib()
    print(json.dumps(result))
    sys.stdout.flush()


def load_tensors(d, stem="tensors"):
    """Read <d>/<stem>.json + <d>/<stem>.bin written by bench/harness.ts writeTensors."""
    import numpy as np

    manifest = json.load(open(os.path.join(d, stem + ".json")))
    flat = np.fromfile(os.path.join(d, stem + ".bin"), dtype=np.float32)
    out = {}
    for k, m in manifest.items():
        n = 1
        for s in m["shape"]:
            n *= s
        out[k] = torch.from_numpy(flat[m["offset"] : m["offset"] + n].copy()).reshape(m["shape"])
    return out


def save_tensors(d, tensors, stem="tensors"):
    import numpy as np

    manifest, offset, parts = {}, 0, []
    for k, t in tensors.items():
        a = t.detach().contiguous().float().numpy().ravel()
        manifest[k] = {"shape": list(t.shape), "offset": offset}
        offset += a.size
        parts.append(a)
    np.concatenate(parts).astype(np.float32).tofile(os.path.join(d, stem + ".bin"))
    json.dump(manifest, open(os.path.join(d, stem + ".json"), "w"))


def serve(step, info=None):
    """Peer mode: print `info` as one JSON line, then run `step` once per "step" line on stdin,
    replying {"t": seconds} ("burst n": a warm step, then the median of n timed ones); on "quit" reply with the final report (peak RSS, threads) and exit."""
    out = dict(info or {})
    out["ready"] = True
    print(json.dumps(out))
    sys.stdout.flush()
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "step":
            t0 = time.perf_counter()
            step()
            print(json.dumps({"t": time.perf_counter() - t0}))
            sys.stdout.flush()
        elif cmd.startswith("burst "):
            # one warm step, then the median of n back-to-back steps (steady state, as in a model)
            step()
            ts = []
            for _ in range(int(cmd.split()[1])):
                t0 = time.perf_counter()
                step()
                ts.append(time.perf_counter() - t0)
            print(json.dumps({"t": sorted(ts)[len(ts) // 2]}))
            sys.stdout.flush()
        elif cmd == "quit":
            emit({})
            return
