"""Accuracy and speed of face pipeline variants: detectors x alignments x networks, one-shot.

    python benchmarks/face_variants.py --root ../shared/data [--seed 0] [--threads 2]
        [--augment 3] [--runs 20] [--limit N] [--only-timing] [--out benchmarks/results/face_variants.json]

Trials: the evaluation pairs ``benchmarks/pairs/lfw_gray_eval.csv`` and ``orl_att_eval.csv``
(people never used for calibration). Each pair enrolls from its first image, clean, and is
probed with its second image twice: clean, and degraded by
:func:`verify.face.degrade.webcam_like` (seeded per file, so every variant sees the same degraded
image). A pair whose image has no usable face is scored as a reject.

Variants (:class:`~verify.config.FaceFusionConfig`): the detectors whose landmarks align the face
(the first chooses it), the networks whose scores are fused with equal weights, mirrored crops,
and condition-augmented enrollment (the template is the mean of the clean enrollment image and
``--augment`` copies of it made by :func:`verify.face.degrade.enrollment_copy`: downscaled,
blurred, exposure and noise changed; drawn from the same family of degradations as the probes,
so that figure is optimistic).

Every image is decoded, degraded, detected and embedded once; the variants are assembled from
those embeddings exactly as :class:`~verify.face.pipeline.FacePipeline` assembles them. Speed: one
check (640x480 frame -> embedding -> cosine against a template) of each variant's own
``FacePipeline``, the variants taking turns run by run, ``--threads`` CPU threads.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads OpenBLAS

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))

from speed import REPO, interleave, latency, machine, single_frame  # noqa: E402

from verify.config import FaceFusionConfig  # noqa: E402
from verify.evaluation import read_pairs, summarize  # noqa: E402
from verify.face import degrade  # noqa: E402
from verify.face.align import align_face  # noqa: E402
from verify.face.detect import Detection, choose_face  # noqa: E402
from verify.face.pipeline import FacePipeline, LocatedFace, fuse_embeddings  # noqa: E402
from verify.io import decode_image  # noqa: E402

DATASETS = ("lfw_gray", "orl_att")
DETECTIONS = ("mtcnn", "yunet", "mtcnn_refined")
"""What each image's features hold: MTCNN's and YuNet's detections, and MTCNN's last stages run
on YuNet's chosen face (MTCNN's whole pyramid where YuNet found none)."""
BOTH = ("mtcnn", "yunet")
REFINED = FaceFusionConfig(("yunet", "mtcnn"), ("reid", "sface"), mtcnn_refines=True)
VARIANTS: dict[str, tuple[FaceFusionConfig, bool]] = {
    "shipped before (MTCNN + reid)": (FaceFusionConfig(("mtcnn",), ("reid",)), False),
    "YuNet + reid": (FaceFusionConfig(("yunet",), ("reid",)), False),
    "MTCNN, YuNet + reid": (FaceFusionConfig(BOTH, ("reid",)), False),
    "YuNet, MTCNN refine + reid": (FaceFusionConfig(("yunet", "mtcnn"), ("reid",), mtcnn_refines=True), False),
    "SFace alone (YuNet)": (FaceFusionConfig(("yunet",), ("sface",)), False),
    "SFace alone (YuNet, MTCNN refine)": (FaceFusionConfig(("yunet", "mtcnn"), ("sface",), mtcnn_refines=True), False),
    "MTCNN + reid + SFace": (FaceFusionConfig(("mtcnn",), ("reid", "sface")), False),
    "YuNet + reid + SFace": (FaceFusionConfig(("yunet",), ("reid", "sface")), False),
    "MTCNN, YuNet + reid + SFace": (FaceFusionConfig(BOTH, ("reid", "sface")), False),
    "YuNet, MTCNN + reid + SFace": (FaceFusionConfig(("yunet", "mtcnn"), ("reid", "sface")), False),
    "YuNet, MTCNN refine + reid + SFace": (REFINED, False),
    "YuNet, MTCNN refine + reid + SFace + mirrored crops": (FaceFusionConfig(**{**asdict(REFINED), "mirror": True}), False),
    "YuNet, MTCNN refine + reid + SFace + augmented enrollment": (REFINED, True),
}


@dataclass
class Features:
    """One image's detections (by :data:`DETECTIONS` name) and unit embeddings keyed by
    (network, landmarks, mirrored)."""

    detections: dict[str, list[Detection]]
    shape: tuple[int, ...]
    vectors: dict[tuple[str, bytes, bool], np.ndarray] = field(default_factory=dict)


def refines(fusion: FaceFusionConfig) -> bool:
    """Whether ``fusion``'s MTCNN only refines the face YuNet chose (as the pipeline decides it)."""
    return fusion.mtcnn_refines and fusion.detectors[0] == "yunet"


def located(pipeline: FacePipeline, features: Features, fusion: FaceFusionConfig) -> LocatedFace | None:
    """The face ``fusion``'s pipeline would embed, or ``None`` when it fails."""
    refined = refines(fusion)
    found = [features.detections["mtcnn_refined" if refined and name == "mtcnn" else name] for name in fusion.detectors]
    face = pipeline.locate(features.shape, found)[1]
    return face if isinstance(face, LocatedFace) else None


def extract(pipeline: FacePipeline, images: list[np.ndarray], fusions: list[FaceFusionConfig]) -> list[Features]:
    """Detections and every embedding the ``fusions`` need, for a chunk of images.

    ``pipeline`` detects with MTCNN and YuNet, then refines YuNet's face with MTCNN's last stages;
    when only refining fusions are asked for, it detects as they do (MTCNN's pyramid only where
    YuNet finds nothing).
    """
    mtcnn, yunet = pipeline.detectors["mtcnn"], pipeline.detectors["yunet"]
    found_by_yunet = yunet.detect(images)
    refining_only = all(refines(fusion) or "mtcnn" not in fusion.detectors for fusion in fusions)
    searched = [i for i, found in enumerate(found_by_yunet) if not (refining_only and found)]
    found_by_mtcnn = dict(zip(searched, mtcnn.detect([images[i] for i in searched]) if searched else []))
    features = []
    for index, (image, found) in enumerate(zip(images, found_by_yunet)):
        detections = {"yunet": found} | ({"mtcnn": found_by_mtcnn[index]} if index in found_by_mtcnn else {})
        detections["mtcnn_refined"] = mtcnn.refine(image, [choose_face(found, image.shape)]) if found else detections["mtcnn"]
        features.append(Features(detections, image.shape))
    mirrored = any(fusion.mirror for fusion in fusions)
    for name, network in pipeline.networks.items():
        keys, crops = [], []
        for image, item in zip(images, features):
            alignments = {lm.tobytes(): lm for fusion in fusions if (face := located(pipeline, item, fusion))
                          for lm in face.alignments}  # fmt: skip
            for key, landmarks in alignments.items():
                crop = align_face(image, landmarks, network.template, network.size)
                keys.append((item, (name, key, False)))
                crops.append(crop)
                if mirrored:
                    keys.append((item, (name, key, True)))
                    crops.append(np.ascontiguousarray(crop[:, ::-1]))
        if crops:
            for (item, key), vector in zip(keys, network.embed(np.stack(crops))):
                item.vectors[key] = vector
    return features


def variant_vector(pipeline: FacePipeline, features: Features, fusion: FaceFusionConfig) -> np.ndarray | None:
    """The fused vector ``fusion``'s pipeline makes for the image, from the stored embeddings."""
    face = located(pipeline, features, fusion)
    if face is None:
        return None
    mirrors = (False, True) if fusion.mirror else (False,)
    return fuse_embeddings([np.stack([features.vectors[(name, lm.tobytes(), m)] for lm in face.alignments for m in mirrors])
                            for name in fusion.networks])  # fmt: skip


def compute_features(pipeline: FacePipeline, root: Path, jobs: list[tuple[str, str, int]], seed: int,
                     fusions: list[FaceFusionConfig]) -> dict:
    """Features the ``fusions`` need of every job ``(file, condition, copy)``: condition ``clean``,
    ``probe`` (degraded) or ``enroll`` (augmented copy number ``copy``)."""
    results = {}
    for start in tqdm(range(0, len(jobs), 32), desc="images", unit="chunk"):
        chunk = jobs[start : start + 32]
        images = []
        for name, condition, copy in chunk:
            image = decode_image(root / name)
            if condition == "probe":
                image = degrade.webcam_like(image, degrade.seeded_rng(seed, f"probe:{name}"))
            elif condition == "enroll":
                image = degrade.enrollment_copy(image, degrade.seeded_rng(seed, f"enroll{copy}:{name}"), copy)
            images.append(image)
        results.update(zip(chunk, extract(pipeline, images, fusions)))
    return results


def score(pairs, vectors: dict, augment: int, probe_condition: str) -> dict:
    """Metrics of one variant's ``vectors`` (by job) on one pairs file with clean or degraded probes."""
    scores = np.full(len(pairs), -np.inf)
    for index, pair in enumerate(pairs):
        enroll = vectors[(pair.enroll_path, "clean", 0)]
        probe = vectors[(pair.probe_path, probe_condition, 0)]
        if enroll is None or probe is None:
            continue
        if augment:
            copies = [vectors[(pair.enroll_path, "enroll", k)] for k in range(augment)]
            enroll = np.mean([enroll] + [copy for copy in copies if copy is not None], axis=0)
            enroll = enroll / np.linalg.norm(enroll)
        scores[index] = float(enroll @ probe)
    report = summarize(pairs, scores, {}).as_dict()
    return {key: report[key] for key in ("eer", "tar_at_far_1e_3", "min_dcf", "failed_pairs")}


def check_times(root: Path, threads: int, runs: int) -> dict[str, dict]:
    """Median / p95 ms of one check (640x480 frame -> decision score) for each distinct variant."""
    photo = root / "faces" / "lfw_gray" / "Aaron_Peirsol" / "0.jpg"
    frame = single_frame(photo)
    enrolled = decode_image(photo.parent / "1.jpg")
    systems = {}
    for name, (fusion, augment) in VARIANTS.items():
        if augment:
            continue
        pipeline = FacePipeline(device="cpu", cpu_threads=threads, fusion=fusion)
        template = pipeline.embed(enrolled).vector
        systems[name] = lambda p=pipeline, t=template: float(p.embed(frame).vector @ t)
    times = interleave(systems, runs, warmup=2)
    return {name: latency(value) for name, value in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--augment", type=int, default=3, help="degraded copies in an augmented enrollment")
    parser.add_argument("--runs", type=int, default=20, help="timed checks per variant")
    parser.add_argument("--limit", type=int, default=None, help="only the first LIMIT pairs of each set (a quick look)")
    parser.add_argument("--only-timing", action="store_true", help="measure the check times again into the existing --out")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "face_variants.json")
    args = parser.parse_args()
    if args.only_timing:
        report = json.loads(args.out.read_text())
        retime(report, args)
        return
    pipeline = FacePipeline(device="cpu", cpu_threads=args.threads, fusion=FaceFusionConfig(BOTH, ("reid", "sface")))
    report = {"command": "python " + " ".join(sys.argv), "machine": machine(), "seed": args.seed,
              "augment": args.augment, "variants": {name: {"fusion": asdict(fusion), "augmented_enrollment": augment}
                                                    for name, (fusion, augment) in VARIANTS.items()}}  # fmt: skip
    for dataset in DATASETS:
        pairs = read_pairs(REPO / "benchmarks" / "pairs" / f"{dataset}_eval.csv")[: args.limit]
        enrolls = sorted({pair.enroll_path for pair in pairs})
        files = sorted(set(enrolls) | {pair.probe_path for pair in pairs})
        jobs = [(name, "clean", 0) for name in files] + [(name, "probe", 0) for name in sorted({p.probe_path for p in pairs})]
        features = compute_features(pipeline, args.root, jobs, args.seed, [fusion for fusion, _ in VARIANTS.values()])
        copies = [(name, "enroll", k) for name in enrolls for k in range(args.augment)]
        augmented = [fusion for fusion, augment in VARIANTS.values() if augment]
        features |= compute_features(pipeline, args.root, copies, args.seed, augmented)
        for name, (fusion, augment) in VARIANTS.items():
            vectors = {job: variant_vector(pipeline, item, fusion) for job, item in features.items()
                       if augment or job[1] != "enroll"}  # fmt: skip
            report["variants"][name][dataset] = {
                condition: score(pairs, vectors, args.augment if augment else 0, probes)
                for condition, probes in (("clean", "clean"), ("degraded", "probe"))
            }
    retime(report, args)


def retime(report: dict, args: argparse.Namespace) -> None:
    """Measure every variant's check time into ``report``, write it to ``args.out`` and print the table."""
    report["timing"] = {"command": "python " + " ".join(sys.argv), "machine_before": machine()}
    for name, figures in check_times(args.root, args.threads, args.runs).items():
        report["variants"][name]["check_ms"] = figures
    report["timing"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(table(report))


def table(report: dict) -> str:
    """Markdown table of the report: EER, TAR at FAR 0.1 %, minDCF per set and condition, check time."""
    header = "| variant | " + " | ".join(f"{d} {c} EER / TAR@0.1% / minDCF" for d in DATASETS for c in ("clean", "degraded"))
    lines = [header + " | check ms (median / p95) |", "|---" * (2 + 2 * len(DATASETS)) + "|"]
    for name, variant in report["variants"].items():
        cells = [f"{100 * f['eer']:.2f} % / {100 * f['tar_at_far_1e_3']:.2f} % / {f['min_dcf']:.3f}"
                 for d in DATASETS for f in (variant[d]["clean"], variant[d]["degraded"])]  # fmt: skip
        timing = variant.get("check_ms")
        cells.append(f"{timing['median_ms']:.1f} / {timing['p95_ms']:.1f}" if timing else "as above")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
