"""Differential test of the CULane metric against the official evaluator.

    python python/culane_fidelity.py [--images 20000] [--seed 0] [--iou 0.5] [--report FILE]

Builds the official tool from ../shared/reference/culane-official (needs libopencv-dev), writes a random
CULane-layout tree of ground truth and predictions (selfocus_ext/testing/culane_official/cases.py), and compares, image by
image and list by list, the official counts with `selfocus_ext.metrics.culane` and with the
`python -m selfocus_ext.evaluate culane` command. Exits 1 on any difference, after printing the first ones
with both sides' IoUs.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import re
import shutil
import sys
import time

import numpy as np
from tqdm import tqdm

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from selfocus_ext.testing.culane_official import cases, oracle  # noqa: E402

from selfocus_ext import evaluate as evaluate_cli  # noqa: E402
from selfocus_ext.data import culane_files  # noqa: E402
from selfocus_ext.metrics import culane  # noqa: E402


def ours_per_image(gt_root, pred_root, list_file, iou):
    preds, gts = culane_files.load_pairs(pred_root, gt_root, list_file)
    matches = culane.match_images(preds, gts)
    return [m.counts(iou) for m in matches], matches, (preds, gts)


def cli_counts(gt_root, pred_root, lists, iou):
    """Per-scenario (tp, fp, fn) as the evaluate command prints them."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = evaluate_cli.main(["culane", "--pred", pred_root, "--gt", gt_root, "--list", *lists,
                                "--iou", str(iou), "--quiet"])
    if rc != 0:
        raise RuntimeError(f"evaluate culane exited {rc}")
    counts = {}
    for line in out.getvalue().splitlines()[1:]:
        parts = line.split()
        if parts[0] == "cross":
            counts["cross"] = (None, int(parts[2]), None)
        elif re.fullmatch(r"\d+", parts[1]):
            counts[parts[0]] = (int(parts[1]), int(parts[2]), int(parts[3]))
    return counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=20000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--iou", type=float, default=0.5)
    p.add_argument("--work", default=os.path.join(REPO, "build", "culane-fidelity"), help="where the tree is written")
    p.add_argument("--sources", default=oracle.DEFAULT_SOURCES, help="the official evaluator's sources")
    p.add_argument("--report", help="write a markdown summary here")
    p.add_argument("--show", type=int, default=5, help="differences to print in full")
    args = p.parse_args(argv)
    if args.images < 1:
        p.error("--images must be at least 1")

    evaluate, driver = oracle.build(args.sources)
    root = os.path.join(args.work, f"n{args.images}-seed{args.seed}")
    shutil.rmtree(root, ignore_errors=True)
    t0 = time.perf_counter()
    lists = cases.write_tree(root, args.images, args.seed)
    t_gen = time.perf_counter() - t0
    gt_root, pred_root = os.path.join(root, "gt"), os.path.join(root, "pred")

    image_diffs, list_rows, t_official, t_ours = [], [], 0.0, 0.0
    exact_pairing, exact_counts = 0, 0  # images where the exact matcher pairs / counts differently
    for list_file in tqdm(lists, desc="lists", unit="list"):
        name = culane_files.scenario_name(list_file)
        t0 = time.perf_counter()
        official_list = oracle.list_counts(evaluate, gt_root, pred_root, list_file, args.iou)
        t_official += time.perf_counter() - t0
        official_images = oracle.image_counts(driver, gt_root, pred_root, list_file, args.iou)
        t0 = time.perf_counter()
        ours_images, matches, (preds, gts) = ours_per_image(gt_root, pred_root, list_file, args.iou)
        t_ours += time.perf_counter() - t0
        for m, e in zip(matches, culane.match_images(preds, gts, matcher="exact")):
            exact_pairing += not np.array_equal(m.gt_match, e.gt_match)
            exact_counts += m.counts(args.iou) != e.counts(args.iou)
        images = culane_files.read_list(list_file)
        assert len(images) == len(official_images) == len(ours_images)
        for image, (off, _), our, m in zip(images, official_images, ours_images, matches):
            if tuple(off) != tuple(our):
                image_diffs.append((list_file, image, off, our, m))
        ours_list = oracle.summed([tuple(c) for c in ours_images])
        driver_list = oracle.summed([c for c, _ in official_images])
        list_rows.append((name, len(images), official_list, driver_list, ours_list))

    cli = cli_counts(gt_root, pred_root, lists, args.iou)
    cli_diffs = []
    for name, _, official_list, _, _ in list_rows:
        got = cli.get(name)
        want = (None, official_list[1], None) if name == "cross" else official_list
        if got != want:
            cli_diffs.append((name, want, got))

    list_diffs = [r for r in list_rows if not (r[2] == r[3] == r[4])]
    total_official = oracle.summed([r[2] for r in list_rows])
    total_ours = oracle.summed([r[4] for r in list_rows])
    lines = [
        f"images {args.images} (seed {args.seed}, IoU > {args.iou}) in {len(lists)} lists; "
        f"written in {t_gen:.1f} s",
        f"{'list':<10} {'images':>6}  {'official tp/fp/fn':>20}  {'per-image driver':>20}  {'selfocus_ext':>20}",
    ]
    for name, n, off, drv, our in list_rows:
        lines.append(f"{name:<10} {n:>6}  {'/'.join(map(str, off)):>20}  {'/'.join(map(str, drv)):>20}  "
                     f"{'/'.join(map(str, our)):>20}")
    lines.append(f"{'total':<10} {args.images:>6}  {'/'.join(map(str, total_official)):>20}  {'':>20}  "
                 f"{'/'.join(map(str, total_ours)):>20}")
    lines.append(f"images whose counts differ: {len(image_diffs)}; lists: {len(list_diffs)}; "
                 f"evaluate-command scenarios: {len(cli_diffs)}")
    lines.append(f"time: official evaluate {t_official:.1f} s, selfocus_ext (reading + metric) {t_ours:.1f} s")
    lines.append(f"--matcher exact (not compared, for reference): pairs differently in {exact_pairing} images, "
                 f"counts differently in {exact_counts}")
    print("\n".join(lines))

    for list_file, image, off, our, m in image_diffs[: args.show]:
        single = os.path.join(root, "one-image.txt")
        with open(single, "w") as f:
            f.write(image + "\n")
        (_, sims), = oracle.image_counts(driver, gt_root, pred_root, single, args.iou, with_iou=True)
        print(f"\n{image}: official {off}, ours {our}")
        print("  official IoU:", np.array(sims).reshape(m.iou.shape).round(6).tolist())
        print("  ours IoU:    ", m.iou.round(6).tolist(), " ours match:", m.gt_match.tolist())
    for name, want, got in cli_diffs[: args.show]:
        print(f"evaluate culane, {name}: official {want}, printed {got}")

    if args.report:
        with open(args.report, "w") as f:
            f.write("# CULane metric against the official evaluator\n\n")
            f.write(f"`python python/culane_fidelity.py --images {args.images} --seed {args.seed} "
                    f"--iou {args.iou}` ({platform.machine()}, {os.cpu_count()} cores, Python "
                    f"{platform.python_version()}).\n\n```\n")
            f.write("\n".join(lines) + "\n```\n")
    return 1 if image_diffs or list_diffs or cli_diffs else 0


if __name__ == "__main__":
    sys.exit(main())
