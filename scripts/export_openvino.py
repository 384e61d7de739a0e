"""Export the shipped PyTorch networks to the OpenVINO IRs the CPU path runs (no torch at run time).

For each network of :data:`NETWORKS`: build the PyTorch module with its shipped weights, convert
it (``openvino.convert_model`` traced on a zero input, dynamic axes as the spec says), check the
compiled IR against the module on random 0..255 inputs, and write ``assets/models/<name>.xml`` +
``.bin``. Weights that are exactly representable in float16 (the re-identification network's:
Intel ships them in float16) are stored so, halving the file; OpenVINO widens them back to the
same float32 values when it compiles. Prints the sha256 of each file, which belongs in the
network's :class:`~verify.runtime.NetworkSpec`.

    python scripts/export_openvino.py [--only mtcnn-pnet,...] [--out assets/models]

Needs torch, facenet-pytorch (the MTCNN networks and weights ship inside it) and openvino.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from verify.face.mtcnn import MTCNN_SOURCE, ONET, PNET, RNET  # noqa: E402
from verify.face.reid import FACE_REID_NETWORK  # noqa: E402
from verify.runtime import NetworkSpec, import_openvino  # noqa: E402
from verify.torch_runtime import export_openvino  # noqa: E402
from verify.voice.encoder import GE2E_NETWORK  # noqa: E402
from verify.weights import MODELS_DIR, sha256_of  # noqa: E402

NETWORKS: tuple[NetworkSpec, ...] = (PNET, RNET, ONET, FACE_REID_NETWORK, GE2E_NETWORK)
PROBE_SHAPES = {"mtcnn-pnet": [(1, 3, 24, 24), (3, 3, 61, 83)], "ge2e-robust": [(1, 160, 40), (5, 160, 40)]}
RTOL, ATOL = 1e-4, 1e-4  # relative to the largest output; float32 throughout


def float16_exact(module: torch.nn.Module) -> bool:
    """Whether every floating-point weight and buffer of ``module`` survives a float16 round trip."""
    return all(torch.equal(tensor, tensor.half().to(tensor.dtype))
               for tensor in module.state_dict().values() if tensor.is_floating_point())


def check_against_module(path: Path, module: torch.nn.Module, spec: NetworkSpec) -> float:
    """Largest output difference (relative to the output's range) between the IR at ``path`` and
    ``module`` on random 0..255 inputs of several shapes.

    Raises:
        SystemExit: a difference exceeds the tolerance.
    """
    ov = import_openvino()

    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    worst = 0.0
    generator = torch.Generator().manual_seed(0)
    for shape in PROBE_SHAPES.get(spec.name, [spec.example_shape, (4, *spec.example_shape[1:])]):
        probe = torch.rand(shape, generator=generator) * 255
        with torch.inference_mode():
            expected = module(probe)
        expected = expected if isinstance(expected, tuple) else (expected,)
        found = compiled(probe.numpy())
        for index, reference in enumerate(expected):
            reference = reference.numpy()
            difference = np.abs(found[index] - reference).max()
            if difference > ATOL * max(1.0, np.abs(reference).max()) + RTOL * np.abs(reference).max():
                sys.exit(f"{spec.name}: output {index} differs from PyTorch's by {difference:g} on {shape}")
            worst = max(worst, float(difference))
    return worst


def export(spec: NetworkSpec, out: Path) -> None:
    """Convert, check and write one network; print its files' sha256."""
    ov = import_openvino()

    module = spec.build_module()
    compressed = float16_exact(module)
    model = export_openvino(module, spec)
    with tempfile.TemporaryDirectory() as scratch:
        draft = Path(scratch) / f"{spec.name}.xml"
        ov.save_model(model, draft, compress_to_fp16=compressed)
        difference = check_against_module(draft, module, spec)
        out.mkdir(parents=True, exist_ok=True)
        for suffix in (".bin", ".xml"):  # the graph last: it names the weights it needs
            (out / f"{spec.name}{suffix}").write_bytes(draft.with_suffix(suffix).read_bytes())
    print(f"{spec.name}: weights {'float16 (exact)' if compressed else 'float32'}, largest difference from "
          f"PyTorch {difference:.2g}")
    for suffix in (".xml", ".bin"):
        print(f"  {spec.name}{suffix}  sha256 {sha256_of(out / f'{spec.name}{suffix}')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated network names (default: all)")
    parser.add_argument("--out", type=Path, default=MODELS_DIR)
    args = parser.parse_args()
    from importlib.metadata import version

    installed = f"facenet-pytorch=={version('facenet-pytorch')}"
    if installed != MTCNN_SOURCE:
        sys.exit(f"MTCNN's IRs are exported from {MTCNN_SOURCE}, but {installed} is installed")
    wanted = set(filter(None, args.only.split(",")))
    torch.set_num_threads(1)
    for spec in NETWORKS:
        if not wanted or spec.name in wanted:
            export(spec, args.out)


if __name__ == "__main__":
    main()
