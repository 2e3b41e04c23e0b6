"""The package's shape: imports point down (no circle, even through imports inside functions), quantization
code knows no model code, ``import selfocus_ext`` stays light, and no file outgrows one purpose."""
import ast
import glob
import os
import subprocess
import sys
from collections import defaultdict

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_PY_LINES, MAX_HEADER_LINES, MAX_TUNE_LINES = 500, 400, 250


def module_graph(root, package_dirs):
    """{module: file} and {module: modules it imports} for the .py files under ``package_dirs`` (relative to
    ``root``), counting every import statement wherever it sits (module level or inside a function)."""
    files, compiled = {}, set()
    for pkg in package_dirs:
        for dirpath, _, names in os.walk(os.path.normpath(os.path.join(root, pkg))):
            for name in names:
                path = os.path.join(dirpath, name)
                dotted = os.path.relpath(path, root).split(".")[0].replace(os.sep, ".")
                if name.endswith(".py"):
                    files[dotted[:-len(".__init__")] if dotted.endswith(".__init__") else dotted] = path
                elif name.endswith((".so", ".pyd")):  # a compiled module: a leaf
                    compiled.add(dotted)
    known = set(files) | compiled
    edges = defaultdict(set)
    for mod, path in files.items():
        package = mod.split(".") if path.endswith("__init__.py") else mod.split(".")[:-1]
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else [])) \
                    if node.level else node.module
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in known:
                    t = t.rpartition(".")[0]
                if t in files and t != mod:
                    edges[mod].add(t)
    return files, edges


def cycles(edges):
    """The strongly connected components of more than one module."""
    order, low, stack, on_stack, found = {}, {}, [], set(), []
    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))

    def visit(v):
        order[v] = low[v] = len(order)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in order:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], order[w])
        if low[v] == order[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(edges):
        if v not in order:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_circle_through_an_import_inside_a_function(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .c import g\n")
    (pkg / "c.py").write_text("from .a import x\n")
    (pkg / "d.py").write_text("from .a import x\n")
    _, edges = module_graph(str(tmp_path), ["pkg"])
    assert cycles(edges) == [["pkg.a", "pkg.b", "pkg.c"]]


@pytest.mark.parametrize("where", ["selfocus_ext", "python"])
def test_no_import_cycle(where):
    root = ROOT if where == "selfocus_ext" else os.path.join(ROOT, "python")
    files, edges = module_graph(root, ["selfocus_ext"] if where == "selfocus_ext" else ["."])
    assert len(files) > 10
    assert cycles(edges) == []


def test_layers_point_down():
    _, edges = module_graph(ROOT, ["selfocus_ext"])

    def reaches(src_prefix, dst_prefix):
        # a package's __main__ is the command ``python -m`` runs, above every layer
        return sorted((m, t) for m, ts in edges.items() if m.startswith(src_prefix) and not m.endswith(".__main__")
                      for t in ts if t.startswith(dst_prefix))

    assert reaches("selfocus_ext.quant", "selfocus_ext.models") == []
    assert reaches("selfocus_ext.recon", "selfocus_ext.models") == []
    assert reaches("selfocus_ext.layers", "selfocus_ext.models") == []
    assert reaches("selfocus_ext.decoders", "selfocus_ext.models") == []
    assert reaches("selfocus_ext.decoders", "selfocus_ext.quant") == []
    assert reaches("selfocus_ext.export", "selfocus_ext.workflow") == []
    assert reaches("selfocus_ext.models", "selfocus_ext.data.datasets") == []
    for low in ("ops", "lanes", "layers", "decoders", "quant", "recon", "models", "export", "workflow"):
        assert reaches(f"selfocus_ext.{low}", "selfocus_ext.cli") == []
        assert reaches(f"selfocus_ext.{low}", "selfocus_ext.tune") == []


def test_no_private_name_is_imported_from_another_module():
    bad = []
    for path in glob.glob(os.path.join(ROOT, "selfocus_ext", "**", "*.py"), recursive=True) + \
            glob.glob(os.path.join(ROOT, "python", "*.py")):
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                bad += [f"{os.path.relpath(path, ROOT)}: {a.name}" for a in node.names
                        if a.name.startswith("_") and a.name != "_C" and not a.name.startswith("__")]
    assert bad == []


def test_import_selfocus_ext_loads_neither_opencv_nor_onnx():
    code = ("import sys, selfocus_ext; from selfocus_ext import QuantConfig, quantize_, tune_, export_onnx; "
            "print(sorted(m for m in ('cv2', 'onnx', 'onnxruntime', 'matplotlib') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_files_keep_to_one_purpose():
    long_py = [(p, n) for p in glob.glob(os.path.join(ROOT, "selfocus_ext", "**", "*.py"), recursive=True)
               + glob.glob(os.path.join(ROOT, "python", "*.py"))
               if (n := sum(1 for _ in open(p))) > MAX_PY_LINES]
    long_h = [(p, n) for p in glob.glob(os.path.join(ROOT, "csrc", "core", "**", "*.h"), recursive=True)
              if (n := sum(1 for _ in open(p))) > MAX_HEADER_LINES]
    assert long_py == [] and long_h == []
    assert sum(1 for _ in open(os.path.join(ROOT, "selfocus_ext", "tune.py"))) < MAX_TUNE_LINES
