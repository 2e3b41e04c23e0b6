"""Writes the model card of a shipped zoo model: size, cost, training, and FP accuracy measured now.

    python python/model_card.py --model ganet-s [--scenes 2000]

Evaluates the shipped weights on the fixed generated CULane-frame test set (F1 per scenario, IoU 0.5), on
its first 200 scenes (the slice the tests re-check), and TuSimple-frame accuracy on 500 generated scenes;
training facts come from runs/NAME/summary.json. Writes selfocus_ext/models/weights/NAME.md and NAME.json.
"""
import argparse
import json
import os
import time


from selfocus_ext import models
from selfocus_ext.lanes.frames import ModelInput, get_frame
from selfocus_ext.metrics import culane
from selfocus_ext.models import registry
from selfocus_ext.models.complexity import count_macs
from selfocus_ext.workflow.data import TUSIMPLE_CROP, DataSpec, evaluation_set
from selfocus_ext.workflow.evaluation import evaluate


def stage_text(stages) -> str:
    grown = [st["init"] for st in stages if str(st.get("init") or "").startswith("grown from")]
    if len(stages) < 2:
        return f"; {grown[0]} (its shipped weights: copied where the shapes match, widened with each unit copied where the model is wider, added residual blocks starting as identities)" if grown else ""
    def lr(st):
        return f" at lr {st['lr']:g}" if st.get("lr") is not None else ""

    return "; in stages: " + ", ".join(f"{st['steps']} steps{lr(st)} ({st['minutes']} min)" for st in stages)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--scenes", type=int, default=2000)
    p.add_argument("--workdir", default="runs")
    a = p.parse_args()
    model = models.load(a.model)
    params = sum(t.numel() for t in model.parameters())
    macs = count_macs(model)
    t0 = time.time()
    synth = DataSpec("synth")
    counts = evaluate(model, evaluation_set(synth, a.scenes, model.model_input))["counts"]
    full = {k: culane.Counts(*v) for k, v in counts.items()}
    sliced = evaluate(model, evaluation_set(synth, 200, model.model_input), progress=False)
    tus_input = ModelInput(get_frame("tusimple"), model.model_input.size, TUSIMPLE_CROP)
    r = evaluate(model, evaluation_set(synth, 500, tus_input), progress=False)
    tus = {"accuracy": r["accuracy"] / 100, "fp": r["fp"], "fn": r["fn"]}
    train = {}
    summary = os.path.join(a.workdir, a.model, "summary.json")
    if os.path.isfile(summary):
        with open(summary) as f:
            train = json.load(f)
    card = dict(
        model=a.model, family=model.family, parameters=params, macs=macs, input=list(model.model_input.size),
        crop_top=model.model_input.crop_top, heads=[h.__dict__ for h in model.heads],
        training=dict(steps=train.get("steps"), minutes=train.get("minutes"), batch=train.get("batch"),
                      train_scenes=train.get("train_scenes"), stages=train.get("stages", [])),
        test_scenes=a.scenes, f1={k: round(v.f1 * 100, 2) for k, v in full.items()},
        counts={k: [v.tp, v.fp, v.fn] for k, v in full.items()},
        f1_first200=round(sliced["f1"], 2), tusimple=tus, eval_seconds=round(time.time() - t0, 1),
    )
    with open(os.path.join(registry.WEIGHTS_DIR, f"{a.model}.json"), "w") as f:
        json.dump(card, f, indent=1)
    lines = [
        f"# {a.model} ({model.family})", "",
        f"- Parameters: {params:,}; multiply-accumulates per image: {macs / 1e6:.0f} M",
        f"- Input: {model.model_input.size[0]}x{model.model_input.size[1]}, the CULane frame below row "
        f"{model.model_input.crop_top:.0f}, ImageNet normalisation",
        "- Heads: " + "; ".join(f"`{h.name}` ({h.role}{', masked by ' + h.mask_from if h.mask_from else ''})" for h in model.heads),
        f"- Training: {card['training']['steps']} steps of batch {card['training']['batch']} on "
        f"{card['training']['train_scenes']} generated scenes, {card['training']['minutes']} min on the 2-core CPU "
        "(python/train_zoo.py)" + stage_text(card["training"]["stages"]),
        "", f"FP F1 (IoU 0.5) on the fixed generated CULane-frame test set ({a.scenes} scenes, default mix):", "",
        "| scenario | F1 | TP | FP | FN |", "|---|---|---|---|---|",
    ]
    for k, v in full.items():
        lines.append(f"| {k} | {v.f1 * 100:.2f} | {v.tp} | {v.fp} | {v.fn} |")
    lines += ["", f"First 200 scenes (re-checked by the tests): F1 {card['f1_first200']:.2f}.",
              f"TuSimple frame (500 generated scenes, frame below row 330 resized to the input): accuracy "
              f"{tus['accuracy'] * 100:.2f}%, FP {tus['fp']:.3f}, FN {tus['fn']:.3f}.", ""]
    with open(os.path.join(registry.WEIGHTS_DIR, f"{a.model}.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
