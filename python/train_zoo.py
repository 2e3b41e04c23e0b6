"""Train a zoo model on generated scenes (labels from the generator).

    python python/train_zoo.py --model ganet-s [--minutes 25] [--steps 6000] [--batch 16] [--resume]
    python python/train_zoo.py --model lstr-s --init shipped --steps 3000 --lr 3e-4   (continue training)

Checkpoints every --ckpt-every steps (model, optimiser, step, elapsed time) under --workdir; an interrupted
run continues from the last checkpoint with --resume, to the same weights as a run that never stopped (each
step's batch depends on the seed and the step only; the optimiser, schedule and torch RNG state are saved).
--stop-at-step N ends a session's share of a long run at a fixed step (the weights written then are that
step's). At the end the weights are written into the package
(selfocus_ext/models/weights/NAME.pt) and evaluated on the fixed generated test set. --init starts from
existing weights (``shipped``: the package's, or a file) with a fresh optimiser and schedule: a further
training stage, recorded in runs/NAME/summary.json beside the earlier stages (the model card adds them up).
--grow-from starts a larger model from a smaller zoo model's shipped weights (the card says so): deeper stages
start as identities and a wider transformer (LSTR) starts with each unit copied, so training starts from the
smaller model's accuracy:

    python python/train_zoo.py --model lstr-m --grow-from lstr-s --lr 2e-4 --steps 3000 --minutes 38
"""
import argparse
import json
import os

import torch

from selfocus_ext import models
from selfocus_ext.metrics import culane
from selfocus_ext.models import registry
from selfocus_ext.models.growth import grow_from
from selfocus_ext.models.targets import build_trainset
from selfocus_ext.workflow.data import DataSpec, evaluation_set
from selfocus_ext.workflow.evaluation import evaluate
from selfocus_ext.workflow.training import TrainOptions, train


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, choices=models.available())
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--minutes", type=float, default=28.0, help="stop training after this much wall time")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--train-scenes", type=int, default=8000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", default="runs")
    p.add_argument("--ckpt-every", type=int, default=200)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--stop-at-step", type=int, default=None, metavar="N",
                   help="stop this session's run at step N (a checkpoint; --resume continues it to the same result "
                        "as a run that never stopped)")
    p.add_argument("--eval-scenes", type=int, default=2000)
    p.add_argument("--init", default=None, help="start from these weights: 'shipped' or a .pt file")
    p.add_argument("--grow-from", default=None, metavar="SMALLER_MODEL",
                   help="copy every tensor of this zoo model's shipped weights whose name and shape match (wider "
                        "layers: each unit copied); residual blocks it lacks start as identities")
    a = p.parse_args(argv)
    if a.init and a.grow_from:
        p.error("--init and --grow-from: choose one starting point")

    torch.manual_seed(a.seed)
    model = registry.build(a.model)
    summary_path = os.path.join(a.workdir, a.model, "summary.json")
    stages = []
    if a.init:
        path = registry.weights_path(a.model) if a.init == "shipped" else a.init
        if not os.path.isfile(path):
            raise SystemExit(f"--init: no weights at {path}")
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["model"])
        if os.path.isfile(summary_path):
            with open(summary_path) as f:
                prev = json.load(f)
            stages = prev.get("stages") or [dict(steps=prev.get("steps"), minutes=prev.get("minutes"), lr=None, init=None)]
        print(f"starting from {path} (after {len(stages)} recorded training stage(s))")
    if a.grow_from:
        if a.grow_from not in models.available():
            p.error(f"--grow-from: unknown model {a.grow_from!r}; available: {', '.join(models.available())}")
        path = registry.weights_path(a.grow_from)
        if not os.path.isfile(path):
            raise SystemExit(f"--grow-from: no shipped weights at {path}")
        copied, fresh = grow_from(model, torch.load(path, map_location="cpu", weights_only=True)["model"])
        print(f"grown from {a.grow_from}: {copied} tensors copied, {fresh} kept fresh")
    mi = model.model_input
    data = build_trainset(a.train_scenes, a.seed, mi)
    opts = TrainOptions(steps=a.steps, minutes=a.minutes, batch=a.batch, lr=a.lr, seed=a.seed,
                        ckpt_every=a.ckpt_every, resume=a.resume, stop_at_step=a.stop_at_step)
    images, slots = data["images"], data["slots"]
    done = train(model, len(images), lambda idx: (mi.normalize(images[idx]), model.targets(slots[idx])), model.loss,
                 os.path.join(a.workdir, a.model, "last.pt"), opts, a.model)
    step, elapsed, n = done.step, done.elapsed, len(images)

    os.makedirs(registry.WEIGHTS_DIR, exist_ok=True)
    torch.save({"model": model.state_dict()}, registry.weights_path(a.model))
    model.eval()
    res = evaluate(model, evaluation_set(DataSpec("synth"), a.eval_scenes, model.model_input))["counts"]
    res = {k: culane.Counts(*v) for k, v in res.items()}
    stages.append(dict(steps=step, minutes=round(elapsed / 60, 1), lr=a.lr,
                       init=f"grown from {a.grow_from}" if a.grow_from else a.init))
    summary = dict(model=a.model, steps=sum(st["steps"] for st in stages),
                   minutes=round(sum(st["minutes"] for st in stages), 1), batch=a.batch, train_scenes=n,
                   stages=stages, f1={k: round(v.f1 * 100, 2) for k, v in res.items()})
    print(json.dumps(summary, indent=1))
    with open(summary_path, "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
