"""Renders one generated scene per scenario with its ground truth drawn on, as a 3x3 grid picture.

    python python/render_scene_grid.py [--out docs/scenes.png] [--seed 7] [--frame culane]
"""
import argparse

import cv2
import numpy as np

from selfocus_ext.data import synth


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/scenes.png")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--frame", default="culane")
    a = p.parse_args()
    tiles = []
    for name in synth.SCENARIOS:
        image, gt, scene = synth.generate(a.seed + 11 * synth.SCENARIOS.index(name), a.frame, name)
        img = image.copy()
        for i, xs in enumerate(gt):
            keep = ~np.isnan(xs)
            pts = np.stack([xs[keep], scene.frame.ys[keep]], axis=1)
            cv2.polylines(img, [np.round(pts).astype(np.int32)], False, (255, 40, 40), 4, cv2.LINE_AA)
            for x, y in pts[::3]:
                cv2.circle(img, (int(round(x)), int(round(y))), 6, (255, 230, 0), -1, cv2.LINE_AA)
        tile = cv2.resize(img, (scene.frame.width // 3, scene.frame.height // 3), interpolation=cv2.INTER_AREA)
        label = f"{name}  ({len(gt)} lanes)"
        cv2.putText(tile, label, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(tile, label, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    grid = np.concatenate([np.concatenate(tiles[r * 3:(r + 1) * 3], axis=1) for r in range(3)], axis=0)
    cv2.imwrite(a.out, grid[..., ::-1])
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
