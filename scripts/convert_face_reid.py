"""Convert Intel's face-reidentification-retail-0095 OpenVINO IR to a FaceReidNet safetensors file.

Reads the IR XML with ``xml.etree`` and the fp16 constants from the ``.bin`` with numpy (no
OpenVINO needed), walks the graph in topological order and assigns every constant to the next
FaceReidNet state-dict entry, checking its role (weight / bias / PReLU slope / input scaling),
its shape and, for convolutions, stride, padding and groups. Values are stored as fp32 (exact
widening of the fp16 source); nothing is folded.

Usage:
    python scripts/convert_face_reid.py [--source DIR] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from verify.face.reid_net import FaceReidNet  # noqa: E402
from verify.weights import sha256_of  # noqa: E402

MODEL_NAME = "face-reidentification-retail-0095"
DEFAULT_SOURCE = REPO_ROOT.parent / "shared" / "weights" / MODEL_NAME
DEFAULT_OUT = REPO_ROOT / "assets" / "models" / f"{MODEL_NAME}.safetensors"
SOURCE_SHA256 = {
    f"{MODEL_NAME}.xml": "879662c555c826e7a07683f95bb4387b810ab679a8b8c64cc46e07016bb3da2b",
    f"{MODEL_NAME}.bin": "4d8cdfa9447ddd6d8b447f76c6eaaa2c9345c1ee0146b94900ee5267ffcb9307",
}
_NUMPY_DTYPES = {"f16": np.float16, "f32": np.float32}

@dataclass(frozen=True)
class IrConstant:
    """One constant of the IR, with the layer that consumes it."""

    name: str
    values: np.ndarray
    consumer_type: str
    consumer_port: int
    consumer_data: dict[str, str]


def check_sources(source: Path) -> dict[str, str]:
    """Verify the IR files against the hashes in the weights README; return ``{name: sha256}``."""
    hashes = {}
    for name, expected in SOURCE_SHA256.items():
        path = source / name
        if not path.is_file():
            raise SystemExit(f"missing source file {path}")
        actual = sha256_of(path)
        if actual != expected:
            raise SystemExit(f"{path} has sha256 {actual}, expected {expected}")
        hashes[name] = actual
    return hashes


def read_constants(xml_path: Path, bin_path: Path) -> list[IrConstant]:
    """Constants of the IR, ordered by the topological position of the layer consuming them.

    In IR v11 each ``Const`` feeds its consumer through a ``Convert`` (fp16 -> fp32); the Convert
    is skipped and the real consumer recorded. All constant-consuming layers of this network lie on
    one chain (shortcuts and gates carry no constants), so this order is unique.
    """
    root = ElementTree.parse(xml_path).getroot()
    layers = {layer.get("id"): layer for layer in root.find("layers")}
    producers: dict[str, dict[int, str]] = {}
    for edge in root.find("edges"):
        if int(edge.get("from-layer")) >= int(edge.get("to-layer")):
            raise SystemExit("IR layer ids are not in topological order; this script relies on it")
        producers.setdefault(edge.get("to-layer"), {})[int(edge.get("to-port"))] = edge.get("from-layer")
    blob = bin_path.read_bytes()
    constants = []
    for layer_id in sorted(layers, key=int):
        layer = layers[layer_id]
        if layer.get("type") in ("Const", "Convert"):
            continue
        for port, source_id in sorted(producers.get(layer_id, {}).items()):
            if layers[source_id].get("type") == "Convert":
                source_id = producers[source_id][0]
            if layers[source_id].get("type") != "Const":
                continue
            data = layers[source_id].find("data").attrib
            shape = [int(dim) for dim in data["shape"].split(",") if dim.strip()]
            start, size = int(data["offset"]), int(data["size"])
            values = np.frombuffer(blob[start : start + size], dtype=_NUMPY_DTYPES[data["element_type"]])
            layer_data = layer.find("data")
            constants.append(
                IrConstant(
                    name=layers[source_id].get("name"),
                    values=values.reshape(shape).astype(np.float32),
                    consumer_type=layer.get("type"),
                    consumer_port=port,
                    consumer_data=dict(layer_data.attrib) if layer_data is not None else {},
                )
            )
    return constants


def _expected_consumers(key: str, model: torch.nn.Module) -> set[str]:
    """IR layer types allowed to consume the constant that becomes state-dict entry ``key``."""
    if key == "input_scale":
        return {"Multiply"}
    if key == "input_shift" or key.endswith(".bias"):
        return {"Add"}
    owner = model.get_submodule(key.rsplit(".", 1)[0])
    if isinstance(owner, torch.nn.PReLU):
        return {"PReLU"}
    if isinstance(owner, torch.nn.Conv2d):
        return {"GroupConvolution"} if owner.groups > 1 else {"Convolution"}
    raise SystemExit(f"no IR mapping for state-dict entry {key}")


def _check_conv_geometry(key: str, constant: IrConstant, model: torch.nn.Module) -> None:
    """Compare stride, padding, dilation and groups of an IR convolution with the module's."""
    conv = model.get_submodule(key.rsplit(".", 1)[0])
    data = constant.consumer_data

    def pair(attribute: str) -> tuple[int, ...]:
        return tuple(int(value) for value in data[attribute].split(","))

    ir = (pair("strides"), pair("pads_begin"), pair("pads_end"), pair("dilations"))
    ours = (conv.stride, conv.padding, conv.padding, conv.dilation)
    if ir != ours:
        raise SystemExit(f"{key}: IR stride/pads/dilation {ir} != module {ours}")
    if constant.consumer_type == "GroupConvolution" and constant.values.shape[0] != conv.groups:
        raise SystemExit(f"{key}: IR has {constant.values.shape[0]} groups, module {conv.groups}")


def map_to_state_dict(constants: list[IrConstant], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Assign the IR constants, in order, to ``model``'s state-dict entries, checking each one."""
    targets = model.state_dict()
    if len(constants) != len(targets):
        raise SystemExit(f"IR has {len(constants)} constants, FaceReidNet has {len(targets)} entries")
    state = {}
    for constant, (key, target) in zip(constants, targets.items()):
        allowed = _expected_consumers(key, model)
        if constant.consumer_type not in allowed or constant.consumer_port != 1:
            raise SystemExit(f"{key}: IR constant {constant.name} feeds {constant.consumer_type}, expected {allowed}")
        squeezed = [dim for dim in constant.values.shape if dim != 1]
        if squeezed != [dim for dim in target.shape if dim != 1] or constant.values.size != target.numel():
            raise SystemExit(f"{key}: IR shape {constant.values.shape} does not fit {tuple(target.shape)}")
        if constant.consumer_type in ("Convolution", "GroupConvolution"):
            _check_conv_geometry(key, constant, model)
        state[key] = torch.from_numpy(constant.values.reshape(tuple(target.shape)).copy()).contiguous()
    return state


def canonicalise_header(path: Path) -> None:
    """Rewrite a safetensors header with sorted JSON keys, in place, so the bytes are reproducible.

    safetensors writes ``__metadata__`` from a Rust hash map, whose key order changes between runs;
    only the order changes, so the sorted header has the same length and data offsets.
    """
    blob = path.read_bytes()
    (header_length,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + header_length])
    canonical = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("ascii")
    if len(canonical) > header_length:
        raise SystemExit(f"canonical header of {path} is longer than the original")
    path.write_bytes(blob[:8] + canonical.ljust(header_length, b" ") + blob[8 + header_length :])


def convert(source: Path, out: Path) -> str:
    """Convert the IR in ``source`` to ``out``; return the sha256 of the written file."""
    source_hashes = check_sources(source)
    constants = read_constants(source / f"{MODEL_NAME}.xml", source / f"{MODEL_NAME}.bin")
    model = FaceReidNet()
    state = map_to_state_dict(constants, model)
    model.load_state_dict(state, strict=True)
    metadata = {
        "format": "pt",
        "source": f"{MODEL_NAME} OpenVINO IR (Intel Open Model Zoo, Apache-2.0), converted to PyTorch",
        "converter": "scripts/convert_face_reid.py",
    }
    metadata.update({f"sha256:{name}": digest for name, digest in sorted(source_hashes.items())})
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(dict(sorted(state.items())), str(out), metadata=metadata)
    canonicalise_header(out)
    return sha256_of(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; prints the sha256 of the converted file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="folder holding the IR .xml/.bin")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="safetensors file to write")
    args = parser.parse_args(argv)
    digest = convert(args.source, args.out)
    print(f"sha256 {digest}  {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
