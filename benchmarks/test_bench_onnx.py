"""Latency per image of the exported models: onnxruntime running the W8A8 export (int8 kernels where its
fusion applies), onnxruntime running the float model's export, PyTorch float32 and the PyTorch fake-quant
simulation, at batch 1 and 16. ``python benchmarks/summarize_onnx.py bench.json`` makes the table."""
import warnings

import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from selfocus_ext import models  # noqa: E402
from selfocus_ext.data import calibration_images  # noqa: E402
from selfocus_ext.export import export_float_onnx, export_onnx, open_session  # noqa: E402
from selfocus_ext.quant import calibrate, quantize_model  # noqa: E402

MODELS = ["ganet-s", "laneatt-s", "scnn-s"]
BATCHES = [1, 16]


@pytest.fixture(scope="module")
def images():
    return calibration_images(64, seed=3)


@pytest.fixture(scope="module")
def exported(images, tmp_path_factory):
    out = {}
    for name in MODELS:
        model = models.load(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            q = calibrate(quantize_model(model, "w8a8"), images)
        d = tmp_path_factory.mktemp(name)
        export_onnx(q, str(d / "w8a8.onnx"))
        export_float_onnx(model, str(d / "fp32.onnx"))
        out[name] = dict(model=model, quantized=q, int8=open_session(str(d / "w8a8.onnx")),
                         fp32=open_session(str(d / "fp32.onnx")))
    return out


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("impl", ["onnxruntime int8 (W8A8)", "onnxruntime float32", "pytorch float32",
                                  "pytorch fake-quant W8A8"])
@pytest.mark.parametrize("name", MODELS)
def test_latency(benchmark, exported, images, name, impl, batch):
    e = exported[name]
    x = images[:batch]
    benchmark.group = f"{name} batch {batch}"
    benchmark.extra_info.update(model=name, impl=impl, batch=batch, threads=torch.get_num_threads(),
                                level=e["int8"].optimization_level if "int8" in impl else None)
    if impl.startswith("onnxruntime"):
        sess = e["int8"] if "int8" in impl else e["fp32"]
        feed = {"images": x.numpy()}
        benchmark.pedantic(sess.run, args=(None, feed), rounds=10 if batch > 1 else 30, warmup_rounds=2)
    else:
        m = e["model"] if impl == "pytorch float32" else e["quantized"]

        def run():
            with torch.no_grad():
                return m(x)

        benchmark.pedantic(run, rounds=10 if batch > 1 else 30, warmup_rounds=2)
