"""Hand-built CULane cases, one per behaviour of the official evaluator, with their expected counts and
IoUs recorded from the official tool (tests/data/culane_official/expected.json).

    python -m selfocus_ext.testing.culane_official.hand_cases   # rewrites the tree and records expected.json (needs the tool)
"""
from __future__ import annotations

import json
import os
from typing import Dict, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))), "tests", "data", "culane_official")

LANE_A = "800 590 790 500 780 400 770 300"
LANE_A_NEAR = "803 590 793 500 783 400 773 300"
OFF_LEFT = "-300 590 -310 400 -320 200"
OFF_LEFT_2 = "-500 590 -510 400 -520 300"

# name -> (ground truth text, prediction text or None for no prediction file)
CASES: Dict[str, Tuple[str, Optional[str]]] = {
    # Two off-image lanes have IoU 0/0 = NaN; the official matcher never picks that pair and pairs the real
    # lane with the off-image prediction instead: the true positive (IoU about 0.8) is lost.
    "nan_pair_loses_tp": (f"{LANE_A}\n{OFF_LEFT}\n", f"{OFF_LEFT_2}\n{LANE_A_NEAR}\n"),
    # Every similarity of the first GT lane is NaN: the official matching stops there.
    "nan_row_stops_matching": (f"{OFF_LEFT}\n{LANE_A}\n", f"{OFF_LEFT_2}\n"),
    # The official matcher's 1e-2 tolerance finds a matching that is not the maximum-total-IoU one
    # (here it gains a true positive over the exact assignment).
    "tolerant_matching": ("876.3 590 896.4 400 776.5 250\n922.8 590 899.2 400 805.4 250\n"
                          "1184.5 590 1202.5 400 1272.3 250\n",
                          "894.5 590 914.5 400 794.7 250\n941.4 590 917.8 400 824 250\n"
                          "1166.9 590 1184.9 400 1254.7 250\n"),
    # More GT lanes than predictions: the matrix is transposed before matching; and the reverse.
    "more_gt_than_pred": (f"{LANE_A}\n300 590 320 400 340 200\n1200 590 1180 400 1160 200\n1500 590 1490 300\n",
                          f"{LANE_A_NEAR}\n1195 590 1176 400 1158 200\n"),
    "more_pred_than_gt": ("300 590 320 400 340 200\n",
                          f"{LANE_A}\n302 590 321 400 341 200\n1200 590 1180 400 1160 200\n20 580 30 10\n"),
    # Segments that cross each edge of the image: cv::line clips the outline before tracing it.
    "crosses_edges": ("-40 590 10 400 60 200 110 -30\n1700 600 1620 400 1600 100\n100 620 900 640\n"
                      "200 -20 1500 -10\n",
                      "-35 590 15 400 65 200 115 -30\n1690 600 1615 400 1598 100\n120 615 880 635\n"
                      "210 -22 1480 -8\n"),
    # Just outside the image, close enough for the 30 px pen to reach in.
    "outside_within_pen": ("-10 590 -12 300 -14 50\n1650 590 1652 100\n", "-6 590 -9 300 -11 50\n1655 590 1653 100\n"),
    # Consecutive repeated points: the official spline divides by a zero chord and draws NaN samples.
    "repeated_points": ("500 590 500 590 520 500 560 400\n700 590 720 500 720 500 760 400 800 300\n",
                        "505 590 525 500 565 400\n700 590 720 500 760 400 800 300\n"),
    # Far-away and beyond-float32 coordinates (INT_MIN after cvRound).
    "far_points": ("1e30 300 800 300 900 200\n427 517 412 -3e5 394 497 373 477\n600 590 610 -1e39 620 300\n",
                   "800 300 900 200\n505 590 525 500 565 400\n600 590 615 450\n"),
    # A 1-point lane (similarity 0, still counted), a blank line (an empty lane) and Windows line ends.
    "short_and_blank": ("600 590\n\n900 590 910 400 920 200\n", "902 590 912 400 922 200\r\n\r\n"),
    "empty_prediction_file": (f"{LANE_A}\n", ""),
    "missing_prediction_file": (f"{LANE_A}\n", None),
    "empty_ground_truth_file": ("", f"{LANE_A}\n"),
    "only_a_newline": ("\n", f"{LANE_A}\n"),
}
# The pair of this case is evaluated at a threshold equal to its own IoU: IoU > threshold is strict.
STRICT_CASE = "strict_threshold"
CASES[STRICT_CASE] = ("700 590 705 300\n", "709 590 714 300\n")


def write_tree(root: str = DATA) -> Dict[str, str]:
    """Writes ROOT/gt, ROOT/pred and one list per case (ROOT/list/NAME.txt); returns name -> list file."""
    lists = {}
    for name, (gt, pred) in CASES.items():
        rel = f"cases/{name}/00000"
        for base, text in (("gt", gt), ("pred", pred)):
            if text is None:
                continue
            path = os.path.join(root, base, rel + ".lines.txt")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", newline="") as f:
                f.write(text)
        lists[name] = os.path.join(root, "list", name + ".txt")
        os.makedirs(os.path.dirname(lists[name]), exist_ok=True)
        with open(lists[name], "w") as f:
            f.write(f"/{rel}.jpg\n")
    return lists


def record(root: str = DATA) -> dict:
    """Expected counts and IoUs of every case from the official tool (per-image driver and evaluate)."""
    from selfocus_ext.testing.culane_official import oracle

    evaluate, driver = oracle.build()
    lists = write_tree(root)
    gt, pred = os.path.join(root, "gt"), os.path.join(root, "pred")
    expected = {}
    for name, list_file in lists.items():
        (counts, sims), = oracle.image_counts(driver, gt, pred, list_file, 0.5, with_iou=True)
        entry = {"iou": sims, "threshold": 0.5, "counts": list(counts)}
        if name == STRICT_CASE:
            entry["threshold"] = sims[0]
            (counts, _), = oracle.image_counts(driver, gt, pred, list_file, repr(sims[0]))
            entry["counts"] = list(counts)
        listed = oracle.list_counts(evaluate, gt, pred, list_file, entry["threshold"], workdir="/tmp")
        if tuple(listed) != tuple(entry["counts"]):
            raise RuntimeError(f"{name}: evaluate gives {listed}, the per-image driver {entry['counts']}")
        expected[name] = entry
    with open(os.path.join(root, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    return expected


if __name__ == "__main__":
    for name, e in record().items():
        print(f"{name:<26} counts {e['counts']} at IoU > {e['threshold']:.6g}; IoUs {[round(v, 4) for v in e['iou']]}")
