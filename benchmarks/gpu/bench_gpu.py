"""Times the CUDA kernels as achieved bandwidth beside a device-to-device copy; writes one markdown file.

    python benchmarks/gpu/bench_gpu.py --out results.md [--sizes 16777216 67108864]

Each op is called through torch.ops.selfocus (no autograd) on contiguous float32 inputs (plus bfloat16 for
the forward fake quant); time = median of CUDA-event timings after warm-up. GB/s counts the bytes the op
must read and write; "of copy" divides by the bandwidth of a device-to-device copy of the same size.
"""
import argparse
import statistics

import torch

import selfocus_ext as se

ops = torch.ops.selfocus


def cuda_time_ms(fn, iters=30, warmup=5):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def cases(n):
    dev = "cuda"
    c = 256
    w = torch.randn(c, n // c, device=dev) * 0.1
    s_w = w.abs().amax(1) / 7
    v = torch.randn_like(w)
    g = torch.randn_like(w)
    x = torch.randn(n, device=dev)
    gx = torch.randn(n, device=dev)
    step = torch.tensor(0.05, device=dev)
    s_t = torch.tensor(0.02, device=dev)
    xb = x.to(torch.bfloat16)
    e = 4  # bytes per float32 element
    return [
        # name, kind (fwd = forward op), fn, bytes moved
        ("fake_quant per-tensor f32", "fwd", lambda: ops.fake_quant(x, s_t, 8, True, None), 2 * e * n),
        ("fake_quant per-tensor bf16", "fwd", lambda: ops.fake_quant(xb, s_t, 8, True, None), 2 * 2 * n),
        ("fake_quant per-channel f32", "fwd", lambda: ops.fake_quant(w, s_w, 8, True, 0), 2 * e * n),
        ("adaround_quant soft", "fwd", lambda: ops.adaround_quant(w, v, s_w, 4, False), 3 * e * n),
        ("adaround_quant hard", "fwd", lambda: ops.adaround_quant(w, v, s_w, 4, True), 3 * e * n),
        ("adaround_init", "fwd", lambda: ops.adaround_init(w, s_w, 4), 2 * e * n),
        ("act_quant keep 1.0", "fwd", lambda: ops.act_quant(x, step, 4, True, 1.0, 0, 1.0), 2 * e * n),
        ("act_quant QDrop keep 0.5", "fwd", lambda: ops.act_quant(x, step, 4, True, 0.5, 7, 1.0), 2 * e * n),
        ("fake_quant_backward", "bwd", lambda: ops.fake_quant_backward(gx, x, s_t, 8, True, None), 3 * e * n),
        ("adaround_quant_backward", "bwd", lambda: ops.adaround_quant_backward(g, w, v, s_w, 4), 4 * e * n),
        ("adaround_regularizer (+grad)", "bwd", lambda: ops.adaround_regularizer(v, 8.0, True), 2 * e * n),
        ("act_quant_backward QDrop 0.5", "bwd", lambda: ops.act_quant_backward(gx, x, step, 4, True, 0.5, 7, 1.0), 3 * e * n),
    ]


def decoder_lines():
    """The batched decoders on a Monte-Carlo batch (20 noisy copies of 100 images' last head): CUDA against
    the CPU op (this machine's cores) on the same outputs."""
    import time

    from selfocus_ext import models
    from selfocus_ext.data.datasets import calibration_images

    out_lines = ["\n| decoder (20 x 100 images) | CUDA ms | CPU ms | CPU / CUDA |", "|---|---|---|---|"]
    x = calibration_images(100, seed=1)
    for name in ["ganet-s", "laneatt-s", "bezier-s", "scnn-s", "lstr-s"]:
        m = models.load(name)
        with torch.no_grad():
            out = m(x)
        head = m.heads[-1].output_key
        noisy = {**out, head: out[head][None] + 0.1 * out[head].std() * torch.randn((20,) + tuple(out[head].shape))}
        gpu = {k: v.cuda() for k, v in noisy.items()}
        gpu_ms = cuda_time_ms(lambda: m.decode(gpu), iters=5, warmup=1)
        t0 = time.perf_counter()
        for _ in range(3):
            m.decode(noisy)
        cpu_ms = (time.perf_counter() - t0) / 3 * 1e3
        out_lines.append(f"| {name} | {gpu_ms:.2f} | {cpu_ms:.2f} | {cpu_ms / gpu_ms:.1f} |")
    return out_lines


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--sizes", type=int, nargs="+", default=[1 << 24, 1 << 26])
    a = p.parse_args()
    assert torch.cuda.is_available() and se.ops.cuda_compiled(), "needs a GPU and a CUDA build"
    se.ops.set_device_value_checks(False)
    props = torch.cuda.get_device_properties(0)
    lines = [
        "# GPU benchmark of the fused quantization ops\n",
        f"Device: {props.name} ({props.multi_processor_count} SMs), torch {torch.__version__}, CUDA {torch.version.cuda}. "
        "Median of 30 CUDA-event timings after 5 warm-ups; value checks off (`set_device_value_checks(False)`).  \n"
        "GB/s = bytes the op must read and write / time; copy = `dst.copy_(src)` of the same float32 size "
        "(read + write).\n",
        "| op | n | ms | GB/s | of copy |",
        "|---|---|---|---|---|",
    ]
    for n in a.sizes:
        src = torch.randn(n, device="cuda")
        dst = torch.empty_like(src)
        copy_ms = cuda_time_ms(lambda: dst.copy_(src))
        copy_gbs = 8 * n / copy_ms / 1e6
        lines.append(f"| device-to-device copy | {n} | {copy_ms:.4f} | {copy_gbs:.0f} | 1.00 |")
        for name, _kind, fn, nbytes in cases(n):
            ms = cuda_time_ms(fn)
            gbs = nbytes / ms / 1e6
            lines.append(f"| {name} | {n} | {ms:.4f} | {gbs:.0f} | {gbs / copy_gbs:.2f} |")
        del src, dst
        torch.cuda.empty_cache()
    # The Monte-Carlo batch of one head's noise-score curve: 100 images x 8 levels x 20 reruns, 4 lanes x 32 rows.
    from selfocus_ext.lanes import distortion_score

    ys = torch.arange(590.0, 270.0, -10.0, device="cuda")
    base = torch.rand(100, 4, 1, device="cuda") * 1200 + 200 + (torch.rand(100, 4, 1, device="cuda") * 4 - 2) * (590 - ys)
    pert = base[None] + torch.randn(160, 100, 4, 32, device="cuda") * 5
    lds_ms = cuda_time_ms(lambda: distortion_score(base, pert, ys))
    cpu_base, cpu_pert, cpu_ys = base.cpu(), pert.cpu(), ys.cpu()
    import time

    t0 = time.perf_counter()
    for _ in range(5):
        distortion_score(cpu_base, cpu_pert, cpu_ys)
    cpu_ms = (time.perf_counter() - t0) / 5 * 1e3
    lines.append(f"\nLane Distortion Score, 16,000 pairs (4 lanes, 32 rows): CUDA {lds_ms:.3f} ms, "
                 f"CPU (this machine's cores) {cpu_ms:.3f} ms.\n")
    lines += decoder_lines()
    se.ops.set_device_value_checks(True)
    x = torch.randn(a.sizes[0], device="cuda")
    with_checks = cuda_time_ms(lambda: se.fake_quant(x, torch.tensor(0.02, device="cuda"), 8))
    lines.append(f"\nfake_quant per-tensor f32 at n={a.sizes[0]} through the Python face with value checks on "
                 f"(one device-to-host sync): {with_checks:.4f} ms.\n")
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
