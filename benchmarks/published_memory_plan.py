"""The memory plan of a default ``tune`` of every published detector at its real size: what the run holds
and what the network-wise tuning keeps for one backward pass.

    python benchmarks/published_memory_plan.py [--bits w8a4] [--calib 512] [--batch-size 16]
        [--tuning-memory 6G] [--out FILE]

Per catalog entry (the architecture's initialisation; memory does not depend on the weights): the bytes
autograd saves for one image's quantized forward and Selective Focus loss (``recon.engine.saved_bytes``,
the quantity ``--tuning-memory`` is compared with), the calibration and held-out images (float32, as the run
stacks them), the FP head outputs the network-wise loss caches for every calibration image, the micro-batch
the default ``--tuning-memory`` gives at the default batch, and the planned peak of the tuning stage (images +
cached outputs + the backward's peak for one micro-batch, about twice its saved activations, + parameters). Planned, not measured: the parts are
measured one by one, the process's own overhead (allocator, the evaluation sets, onnxruntime at export) is
not in it. A markdown table is appended to ``--out``.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
HELDOUT_IMAGES = 128


def plan_one(entry, a, tuning_memory: int) -> dict:
    import torch

    from selfocus_ext.api import quantize_
    from selfocus_ext.recon.engine import BACKWARD_PEAK_FACTOR, micro_batch_size, saved_bytes
    from selfocus_ext.recon.losses import head_losses
    from selfocus_ext.recon.state import quantization_disabled

    torch.manual_seed(0)
    model = entry.build().eval()
    w, h = model.model_input.size
    x = torch.rand(2, 3, h, w)
    qmodel = quantize_(model, a.bits, x)
    with torch.no_grad(), quantization_disabled(qmodel):
        fp = qmodel(x[:1])
    heads = [s.name for s in qmodel.heads]
    per_image = saved_bytes(lambda: sum(head_losses(qmodel, qmodel(x[:1]), fp, heads, True, 2.0).values()))
    image = 3 * h * w * 4
    fp_out = sum(t.numel() * 4 for t in fp.values())
    params = sum(p.numel() * 4 for p in qmodel.parameters()) + sum(b.numel() * 4 for b in qmodel.buffers())
    micro = micro_batch_size(per_image, a.batch_size, tuning_memory)
    peak = (a.calib + HELDOUT_IMAGES) * image + a.calib * fp_out + BACKWARD_PEAK_FACTOR * micro * per_image + 2 * params
    return dict(model=entry.name, input=f"{w}x{h}", per_image=per_image, images=(a.calib + HELDOUT_IMAGES) * image,
                fp_out=a.calib * fp_out, micro=micro, whole=a.batch_size * per_image, peak=peak)


def main() -> int:
    from selfocus_ext.cli.tune_args import parse_memory
    from selfocus_ext.models import published

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bits", default="w8a4")
    p.add_argument("--calib", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--tuning-memory", default="6G")
    p.add_argument("--models", nargs="*", help="catalog entries (default: all)")
    p.add_argument("--out", default=os.path.join(HERE, "results", "cpu-published-models.md"))
    a = p.parse_args()
    cap = parse_memory(a.tuning_memory, "--tuning-memory")
    entries = [e for e in published.catalog() if not a.models or e.name in a.models]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = []
    for e in entries:
        rows.append(plan_one(e, a, cap))
        print(rows[-1], flush=True)
    gb = lambda v: f"{v / 2**30:.2f}"  # noqa: E731
    lines = ["", f"## Memory plan of the default tune ({started}; `python benchmarks/published_memory_plan.py "
             f"--bits {a.bits} --calib {a.calib} --batch-size {a.batch_size} --tuning-memory {a.tuning_memory}`)",
             "", f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores. Per image: the "
             "bytes autograd saves for one image's quantized forward and Selective Focus loss (measured). Images: "
             f"{a.calib} calibration + {HELDOUT_IMAGES} held-out model inputs in float32. FP outputs: the heads' "
             "FP outputs the network-wise loss caches for every calibration image. Micro-batch: what "
             f"`--tuning-memory {a.tuning_memory}` gives at batch {a.batch_size}. Planned tuning peak: images + "
             "FP outputs + one micro-batch's backward (its saved tensors x the engine's BACKWARD_PEAK_FACTOR, "
             "2) + parameters twice (float and quantized model); "
             "a sum of measured parts, not a measured peak (allocator and evaluation sets not included). GiB.",
             "", f"| model | input | per image | batch {a.batch_size} whole | micro-batch | images | FP outputs | "
             "planned tuning peak |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['input']} | {gb(r['per_image'])} | {gb(r['whole'])} | {r['micro']} | "
                     f"{gb(r['images'])} | {gb(r['fp_out'])} | {gb(r['peak'])} |")
    with open(a.out, "a") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
