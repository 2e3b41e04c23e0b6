"""Scene generator speed: scenes (render + ground truth) per second at a 400x160 model-input render, on one
core (OpenCV and torch limited to one thread)."""
import pytest

from selfocus_ext.data import synth


@pytest.fixture(autouse=True)
def _one_thread():
    import cv2
    import torch

    threads = cv2.getNumThreads(), torch.get_num_threads()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    yield
    cv2.setNumThreads(threads[0])
    torch.set_num_threads(threads[1])


@pytest.mark.parametrize("frame,size,crop", [("culane", (400, 160), 270), ("culane", (1640, 590), 0)])
def test_scene_generation(benchmark, frame, size, crop):
    counter = iter(range(1 << 30))

    def one():
        scene = synth.sample_scene(next(counter), frame)
        synth.render(scene, size, crop)
        synth.ground_truth(scene)

    benchmark.group = f"scene generator | {size[0]}x{size[1]}"
    benchmark.extra_info.update(op=f"scene generator {size[0]}x{size[1]} (scenes, 1 core)", impl="fused", mode="items",
                                n=1, bytes=0)
    benchmark.pedantic(one, rounds=200 if size[0] <= 400 else 20, iterations=1, warmup_rounds=5)
