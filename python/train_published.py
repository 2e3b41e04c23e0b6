"""Train a published detector at its real size on generated scenes, from scratch, and write it as its
implementation's checkpoint with a model card.

    python python/train_published.py --model ufld-r18 [--steps 3000] [--batch 4] [--minutes 60] [--resume]

The families with a training objective here: row anchor (ufld-r18, ufld-r34), segmentation (scnn-*, resa-*) and
Bezier curves (bezier-r18, bezier-r34) (selfocus_ext/models/published/training.py). Checkpoints every --ckpt-every steps and a per-step log
(steps.jsonl) go to --workdir/NAME (default under the package cache, so that a run spans sessions); --resume
continues to the weights an uninterrupted run reaches, --stop-at-step N ends a session's share at step N.
--init FILE starts a further stage from a checkpoint this script wrote (its weights as stored; a fresh optimiser
and schedule over --steps): for runs longer than a session whose training state cannot be kept between them;
the card then sums the stages and its rebuild command chains them.
At the end (or at --stop-at-step) the weights are evaluated on the fixed generated test set and written to
--out-dir/NAME-synth.pth in the implementation's checkpoint layout (half precision unless --float32), which
``python -m selfocus_ext.tune --model NAME --checkpoint FILE --data synth`` loads, beside the card
NAME-synth.md / .json (steps, time, machine, F1 per scenario, the floor, the file's SHA-256).
"""
import argparse
import hashlib
import json
import os
import platform
import sys

import torch

from selfocus_ext.metrics import culane
from selfocus_ext.models.published import catalog, published
from selfocus_ext.models.published.checkpoint import in_layout
from selfocus_ext.models.published.training import CATALOG_FAMILIES, training_for
from selfocus_ext.models.registry import weights_path
from selfocus_ext.models.targets import build_trainset
from selfocus_ext.workflow.data import DataSpec, evaluation_set
from selfocus_ext.workflow.evaluation import evaluate
from selfocus_ext.workflow.training import TrainOptions, train

CACHE = os.environ.get("SELFOCUS_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "selfocus_ext"))
# the floor of each family: the zoo Small model of the same family on the same test set, else 90
ZOO_SMALL = {"scnn": "scnn-s", "resa": "resa-s", "bezier": "bezier-s"}
FLOOR_WITHOUT_ZOO = 90.0


def floor(name: str) -> float:
    zoo = ZOO_SMALL.get(name.split("-")[0])
    if zoo is None:
        return FLOOR_WITHOUT_ZOO
    with open(weights_path(zoo)[:-3] + ".json") as fh:
        return float(json.load(fh)["f1"]["total"])


def machine(device: str = "cpu") -> str:
    if device == "cuda":
        return (f"{torch.cuda.get_device_name(0)}, {os.cpu_count()} cores, torch {torch.__version__}, "
                f"Python {platform.python_version()}")
    return (f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, Python {platform.python_version()}")


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# what a resumed run must repeat to reach the uninterrupted run's weights
SETTINGS = ("steps", "batch", "lr", "train_scenes", "seed", "channels_last", "input_size", "init", "init_sha256")


def parse_size(p, text):
    if text is None:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        p.error(f"--input-size: expected WIDTHxHEIGHT in pixels (e.g. 400x144), got {text!r}")
    if w < 32 or h < 32 or w % 8 or h % 8:
        p.error(f"--input-size: expected width and height divisible by 8 and at least 32, got {text!r}")
    return w, h


def check_settings(path: str, a) -> None:
    """Records the run's settings beside its checkpoint; a resume with other settings is refused by name."""
    mine = {k: getattr(a, k) for k in SETTINGS}
    if a.resume and os.path.isfile(path):
        with open(path) as fh:
            theirs = json.load(fh)
        differ = [f"--{k.replace('_', '-')} {theirs.get(k)!r} (now {mine[k]!r})" for k in SETTINGS if theirs.get(k) != mine[k]]
        if differ:
            raise SystemExit(f"--resume: the run in {os.path.dirname(path)} was started with " + ", ".join(differ) +
                             "; resume it with the same settings or start another --workdir")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(mine, fh)


def rebuild_command(args: list, step: int, steps: int) -> str:
    """The command that retrains these weights from scratch: the run's arguments without the ones that depend on
    the wall clock or the session (--minutes, --resume, --stop-at-step, --workdir), stopped at the step this file
    holds."""
    session_flags = ("--minutes", "--stop-at-step", "--workdir")
    kept, skip = [], False
    for x in args:
        if skip:
            skip = False
            continue
        if x in session_flags:
            skip = True
            continue
        if x == "--resume" or x.startswith(tuple(f + "=" for f in session_flags)):
            continue
        kept.append(x)
    if step < steps:
        kept += ["--stop-at-step", str(step)]
    return " ".join(["python", "python/train_published.py"] + kept)


def init_stages(p, a, model) -> list:
    """Loads --init's weights into ``model`` (at the same input size) and returns the stages its card records;
    [] without --init."""
    a.init_sha256 = None
    if a.init is None:
        return []
    from selfocus_ext.models.published import load_checkpoint
    from selfocus_ext.models.published.checkpoint import checkpoint_input_size

    if not os.path.isfile(a.init):
        p.error(f"--init: no checkpoint file {a.init!r}")
    card_path = a.init[:-len(".pth")] + ".json" if a.init.endswith(".pth") else None
    if card_path is None or not os.path.isfile(card_path):
        p.error(f"--init: expected a checkpoint written by this script with its card beside it (NAME-synth.pth and "
                f"NAME-synth.json), got {a.init!r}")
    with open(card_path) as fh:
        card = json.load(fh)
    if card.get("model") != a.model:
        p.error(f"--init: {a.init} holds {card.get('model')!r}, not --model {a.model!r}")
    recorded = checkpoint_input_size(a.init)
    if tuple(recorded or published(a.model).input_size) != tuple(model.model_input.size):
        p.error(f"--init: {a.init} was trained at {recorded or published(a.model).input_size}, this run is at "
                f"{tuple(model.model_input.size)} (--input-size)")
    a.init_sha256 = sha256(a.init)
    if card.get("sha256") != a.init_sha256:
        p.error(f"--init: {a.init} does not match its card's SHA-256 (the card describes another file)")
    load_checkpoint(model, a.init, published(a.model).layouts, a.model)
    model.float().train()
    return card.get("stages") or [dict(steps=card["steps"], of_steps=card["of_steps"], batch=card["batch"],
                                       lr=card["lr"], hours=card["hours"], init=None, command=card["command"])]


def trainable() -> list:
    return [e.name for e in catalog() if e.family in CATALOG_FAMILIES]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help=f"one of {', '.join(trainable())}")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--minutes", type=float, default=10_000.0, help="stop this session after this much wall time")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--train-scenes", type=int, default=4000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", default=os.path.join(CACHE, "train-published"))
    p.add_argument("--ckpt-every", type=int, default=50)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--stop-at-step", type=int, default=None, metavar="N")
    p.add_argument("--eval-scenes", type=int, default=2000)
    p.add_argument("--out-dir", default="checkpoints")
    p.add_argument("--float32", action="store_true", help="store the weights in float32 (default: half precision)")
    p.add_argument("--input-size", default=None, metavar="WxH",
                   help="train at this input size instead of the implementation's (e.g. 400x144, half of 800x288; "
                        "the checkpoint records it and loads at it)")
    p.add_argument("--init", default=None, metavar="FILE",
                   help="start from this checkpoint's weights (one this script wrote, with its card beside it): a "
                        "further stage with a fresh optimiser and schedule")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="train and evaluate on this device (float rounding differs between devices)")
    p.add_argument("--channels-last", action="store_true",
                   help="activations in channels-last memory order (oneDNN's layout: 1.0-1.25x faster on the CPU)")
    a = p.parse_args(argv)
    if a.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: this torch has no CUDA device")
    if a.model not in trainable():
        p.error(f"--model: expected one of {', '.join(trainable())} (the published families with a training "
                f"objective here), got {a.model!r}")
    entry = published(a.model)
    size = parse_size(p, a.input_size)
    torch.manual_seed(a.seed)
    model = entry.build() if size is None or size == tuple(entry.input_size) else entry.build_at(size)
    earlier = init_stages(p, a, model)
    objective = training_for(model)
    mi = model.model_input
    data = build_trainset(a.train_scenes, a.seed, mi)
    images, slots = data["images"], data["slots"]
    work = os.path.join(a.workdir, a.model)
    check_settings(os.path.join(work, "settings.json"), a)
    model = model.to(a.device)
    if a.channels_last:
        model = model.to(memory_format=torch.channels_last)
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format

    def batch(idx):  # targets stay on the host: each objective's loss moves what it needs to the outputs' device
        return mi.normalize(images[idx]).to(a.device).contiguous(memory_format=fmt), objective.targets(slots[idx])

    opts = TrainOptions(steps=a.steps, minutes=a.minutes, batch=a.batch, lr=a.lr, seed=a.seed,
                        ckpt_every=a.ckpt_every, resume=a.resume, stop_at_step=a.stop_at_step)
    done = train(model, len(images), batch, objective.loss, os.path.join(work, "last.pt"), opts, a.model,
                 log_path=os.path.join(work, "steps.jsonl"))

    model.eval()
    counts = evaluate(model, evaluation_set(DataSpec("synth"), a.eval_scenes, mi), device=a.device)["counts"]
    f1 = {k: round(culane.Counts(*v).f1 * 100, 2) for k, v in counts.items()}
    os.makedirs(a.out_dir, exist_ok=True)
    stem = os.path.join(a.out_dir, f"{a.model}-synth")
    state = {k: (v.half() if v.is_floating_point() and not a.float32 else v).cpu().contiguous()
             for k, v in model.state_dict().items()}
    recorded = None if tuple(mi.size) == tuple(entry.input_size) else tuple(mi.size)
    torch.save(in_layout(state, entry.layouts[0], input_size=recorded), stem + ".pth")
    need = floor(a.model)
    this = dict(steps=done.step, of_steps=a.steps, batch=a.batch, lr=a.lr, hours=round(done.elapsed / 3600, 2),
                init=a.init, command=rebuild_command(list(argv if argv is not None else sys.argv[1:]), done.step, a.steps))
    stages = earlier + [this]
    card = dict(model=a.model, source=entry.source, layout=entry.layouts[0].source, input=list(mi.size),
                implementation_input=list(entry.input_size),
                crop_top=mi.crop_top, steps=sum(st["steps"] for st in stages), of_steps=a.steps, batch=a.batch, lr=a.lr,
                train_scenes=len(images), seed=a.seed, channels_last=a.channels_last,
                hours=round(sum(st["hours"] for st in stages), 2), machine=machine(a.device), stages=stages,
                test_scenes=a.eval_scenes, f1=f1, floor=need, at_floor=f1["total"] >= need,
                storage="float16" if not a.float32 else "float32", sha256=sha256(stem + ".pth"),
                megabytes=round(os.path.getsize(stem + ".pth") / 2**20, 1),
                command=" && ".join(st["command"] for st in stages))
    with open(stem + ".json", "w") as fh:
        json.dump(card, fh, indent=1)
    with open(stem + ".md", "w") as fh:
        fh.write(card_text(card))
    print(json.dumps(card, indent=1))
    return 0


def training_text(c: dict) -> str:
    stages = c.get("stages") or []
    if len(stages) <= 1:
        return (f"Training: {c['steps']} of {c['of_steps']} steps at batch {c['batch']}, AdamW at {c['lr']:g} (one cycle), "
                f"{c['train_scenes']} generated scenes, seed {c['seed']}; {c['hours']} h on {c['machine']}.")
    parts = [f"{i + 1}: {st['steps']} of {st['of_steps']} steps at batch {st['batch']}, AdamW at {st['lr']:g} (one cycle)"
             + (", from stage " + str(i) + "'s weights as stored" if i else ", from scratch") + f", {st['hours']} h"
             for i, st in enumerate(stages)]
    return (f"Training: {c['steps']} steps in {len(stages)} stages, each with a fresh optimiser and schedule ("
            + "; ".join(parts) + f"), {c['train_scenes']} generated scenes, seed {c['seed']}; {c['hours']} h in all on "
            f"{c['machine']}.")


def card_text(c: dict) -> str:
    own = c.get("implementation_input")
    at = (f" -- not the implementation's {own[0]}x{own[1]}: the checkpoint records its size and loads at it"
          if own and own != c["input"] else "")
    lines = [f"# {c['model']} trained on generated scenes", "",
             f"Architecture and checkpoint layout: {c['source']} ({c['layout']}), input {c['input'][0]}x{c['input'][1]} "
             f"(crop top {c['crop_top']:g}){at}, from scratch. Loads with `python -m selfocus_ext.tune --model "
             f"{c['model']} --checkpoint {c['model']}-synth.pth --data synth`.", "",
             training_text(c), "",
             f"Stored in {c['storage']} ({c['megabytes']} MB), SHA-256 `{c['sha256']}`. Rebuild: `{c['command']}`.", "",
             f"FP F1 (IoU 0.5) on the fixed generated test set ({c['test_scenes']} scenes): **{c['f1']['total']:.2f}**; "
             f"floor {c['floor']:.2f} ({'met' if c['at_floor'] else 'not met'}). Checked from the file as a user loads "
             "it: `python python/real_size.py --check`.", "",
             "| scenario | F1 |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in c["f1"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
