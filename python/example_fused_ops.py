"""Using the fused ops from other PTQ code: AdaRound + LSQ/QDrop on one linear layer.

Quantizes a random linear layer to W4A4 and tunes its rounding (AdaRound) and its input step (LSQ) with
QDrop, against the float layer's output on random inputs. Prints the reconstruction error of
round-to-nearest, of the tuned soft rounding and of the final hard rounding.

    python python/example_fused_ops.py [--iters 1000]
"""
import argparse

import torch

import selfocus_ext as se


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    layer = torch.nn.Linear(256, 128)
    x = torch.relu(torch.randn(1024, 256))  # post-ReLU inputs: unsigned activations
    target = layer(x).detach()
    w, b = layer.weight.detach(), layer.bias.detach()

    w_scale = w.abs().amax(dim=1) / 7  # 4-bit signed weights, per output channel
    step = torch.nn.Parameter(x.max() / 15)  # 4-bit unsigned activations
    v = torch.nn.Parameter(se.adaround_init(w, w_scale, 4))

    def forward(hard: bool, keep_prob: float, seed: int) -> torch.Tensor:
        xq = se.act_quant(x, step, 4, False, keep_prob=keep_prob, seed=seed, grad_scale=1.0 / (x.numel() * 15) ** 0.5)
        return torch.nn.functional.linear(xq, se.adaround_quant(w, v, w_scale, 4, hard=hard), b)

    def mse(out: torch.Tensor) -> float:
        return float((out - target).pow(2).mean())

    rtn = torch.nn.functional.linear(se.fake_quant(x, step.detach(), 4, signed=False), se.fake_quant(w, w_scale, 4, ch_axis=0), b)
    print(f"round-to-nearest  W4A4 MSE: {mse(rtn):.6f}")

    opt = torch.optim.Adam([{"params": [v], "lr": 1e-3}, {"params": [step], "lr": 4e-5}])
    warmup = int(0.2 * args.iters)
    for it in range(args.iters):
        out = forward(hard=False, keep_prob=0.5, seed=args.seed * 100003 + it)  # a fresh QDrop mask each step
        loss = (out - target).pow(2).sum(1).mean()
        if it >= warmup:
            beta = 20 - (20 - 2) * (it - warmup) / max(1, args.iters - warmup)
            loss = loss + 0.01 * se.adaround_regularizer(v, beta)
        opt.zero_grad()
        loss.backward()
        opt.step()

    with torch.no_grad():
        print(f"AdaRound soft     W4A4 MSE: {mse(forward(False, 1.0, 0)):.6f}")
        print(f"AdaRound hard     W4A4 MSE: {mse(forward(True, 1.0, 0)):.6f}")


if __name__ == "__main__":
    main()
