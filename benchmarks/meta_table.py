"""Few-shot table: backbone vs heads vs per-user adaptation vs from-scratch, on TEST identities.

Per modality (faces: LFW, voices: LibriSpeech), every row is scored on the same trials: the
README evaluation pairs (benchmarks/pairs/<dataset>_eval.csv, the people of the 'evaluation'
half, never used to train or select anything; failed files count as rejects) and the same
1,000 seeded 5-way 1-shot episodes (one query per class) drawn from those people. Plus the ORL
reference: 5-way 1-shot on the 10 held-out ORL people (five queries per class). Also prints the
validation figures that decide what ships. Needs the checkpoints of scripts/train_meta.py (heads,
from-scratch) and of part B's ``python -m verify train --method maml|...`` (adaptation rows).

    python scripts/train_meta.py && python benchmarks/meta_table.py [--runs runs/meta] [--episodes 1000]
        [--modality face voice] [--out-name meta_table]
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from training.episodes import EpisodeSampler, split_identities  # noqa: E402
from training.features import load_features, load_raw_inputs  # noqa: E402
from training.fewshot_eval import (  # noqa: E402
    cosine_pair_scores, episode_accuracy, nearest_prototype_scores, pairs_file_rows, score_rows, verification_figures)
from training.heads import load_head  # noqa: E402
from training.scratch_train import embed_raw  # noqa: E402
from training.nets.scratch import scratch_encoder  # noqa: E402

DATASETS = {"face": "lfw_gray", "voice": "librispeech"}
HEAD_ROWS = (("+ Siamese head", "siamese"), ("+ prototypical head", "proto"), ("+ relation head", "relation"))
ADAPT_ROWS = (("+ MAML", "maml"), ("+ FOMAML", "fomaml"), ("+ Reptile", "reptile"), ("+ Meta-SGD", "metasgd"),
              ("+ TAML", "taml"))
RESULTS = REPO / "benchmarks" / "results"


def median_ms(function, repeats: int = 50) -> float:
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1000)


def row_figures(features, pairs, test, pair_scorer, class_scorer, episodes, n_query=1, vectors=None) -> dict:
    """Verification figures on ``pairs`` (rows of ``vectors``, default the features) and episode accuracy."""
    figures = {}
    if pairs:
        a, b, same = pairs
        vectors = features.vectors if vectors is None else vectors
        figures = verification_figures(score_rows(vectors, a, b, pair_scorer), same)
    figures["five_way_one_shot"] = episode_accuracy(features, test, class_scorer, episodes, n_query=n_query, seed=0)
    return figures


def load_scratch(path: Path, modality: str) -> torch.nn.Module:
    from safetensors.torch import load_file

    encoder = scratch_encoder(modality)
    encoder.load_state_dict(load_file(str(path)), strict=True)
    return encoder.eval()


def adaptation_row(modality, method, features, pairs, test, episodes, runs: Path) -> dict:
    """Per-user adaptation (verify.adaptation) scored on the same pairs and episodes as the other rows.

    The checkpoint is the shipped one or the trained one (adapt_eval.checkpoint_path), else ``runs``.
    """
    try:
        from training import adapt_eval
        from verify.adaptation import Adapter

        fallback = runs / f"adapt-{modality}-{method}.pt"
        try:
            path = adapt_eval.checkpoint_path(modality, method)
        except Exception:
            if not fallback.is_file():
                raise
            path = fallback
        adapter = Adapter.load(path)
    except Exception as error:  # missing module or checkpoint: the row says why
        return {"not_available": f"{type(error).__name__}: {str(error)[:160]}"}
    a, b, same = pairs
    scores = np.full(len(a), -np.inf)
    valid = (a >= 0) & (b >= 0)
    scores[valid] = adapt_eval.pair_scores(adapter, features.vectors, a[valid], b[valid])[0]
    figures = verification_figures(scores, same)
    sampler = EpisodeSampler(features, test, 5, 1, 1, seed=0)
    accuracy = adapt_eval._episode_accuracy(adapter, sampler, episodes)
    figures["five_way_one_shot"] = {"accuracy": float(accuracy.mean()),
                                    "ci95": float(1.96 * accuracy.std(ddof=1) / np.sqrt(episodes)), "episodes": episodes}
    figures["adapt_ms_per_user"] = adapt_eval.adapt_milliseconds(adapter, features.vectors[0])
    figures["checkpoint"] = str(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
    return figures


def modality_rows(modality: str, data: Path, runs: Path, episodes: int) -> dict:
    dataset = DATASETS[modality]
    features = load_features(dataset, data)
    test = list(split_identities(dataset).test)
    pairs = pairs_file_rows(features, REPO / "benchmarks" / "pairs" / f"{dataset}_eval.csv")
    rows = {"backbone only": {**row_figures(features, pairs, test, cosine_pair_scores, nearest_prototype_scores,
                                            episodes), "adapt_ms_per_user": None}}
    for name, method in HEAD_ROWS:
        path = runs / f"{modality}-{method}-head.safetensors"
        if not path.is_file():
            rows[name] = {"not_available": f"no checkpoint {path}: run scripts/train_meta.py"}
            continue
        head = load_head(path)
        rows[name] = row_figures(features, pairs, test, head.score_embedded, head.class_scores, episodes,
                                 vectors=head.embed(features.vectors))
        rows[name]["adapt_ms_per_user"] = median_ms(lambda: head.embed(features.vectors[:1]))
    for name, method in ADAPT_ROWS:
        rows[name] = adaptation_row(modality, method, features, pairs, test, episodes, runs)
    raw = load_raw_inputs(dataset, data)
    for name, method in (("from-scratch Siamese", "siamese"), ("from-scratch prototypical", "proto")):
        path = runs / f"{modality}-scratch-{method}.safetensors"
        if not path.is_file():
            rows[name] = {"not_available": f"no checkpoint {path}: run scripts/train_meta.py"}
            continue
        embedded = embed_raw(load_scratch(path, modality), modality, raw)
        rows[name] = {**row_figures(embedded, pairs, test, cosine_pair_scores, nearest_prototype_scores, episodes),
                      "adapt_ms_per_user": None}
    return rows


def orl_rows(data: Path, runs: Path, episodes: int) -> dict:
    """5-way 1-shot (5 queries per class) on the 10 held-out ORL people."""
    features = load_features("orl_att", data)
    test = list(split_identities("orl_att").test)
    rows = {"backbone only": row_figures(features, (), test, None, nearest_prototype_scores, episodes, 5)}
    for name, method in HEAD_ROWS:
        path = runs / f"face-{method}-head.safetensors"
        if path.is_file():
            head = load_head(path)
            rows[name + " (LFW-trained)"] = row_figures(features, (), test, None, head.class_scores, episodes, 5)
    raw = load_raw_inputs("orl_att", data)
    for name, stem in (("from-scratch prototypical (25 ORL people)", "orl-scratch-proto"),
                       ("from-scratch prototypical (LFW-trained)", "face-scratch-proto"),
                       ("from-scratch Siamese (LFW-trained)", "face-scratch-siamese")):
        path = runs / f"{stem}.safetensors"
        if path.is_file():
            embedded = embed_raw(load_scratch(path, "face"), "face", raw)
            rows[name] = row_figures(embedded, (), test, None, nearest_prototype_scores, episodes, 5)
    return rows


def adaptation_time(milliseconds: float | None) -> str:
    """Per-user enrollment work beyond the backbone: head forward or adaptation steps, median of 50 (1 thread)."""
    return "none (plain template)" if milliseconds is None else f"{milliseconds:.2f} ms"


def percent(value: float) -> str:
    return f"{100 * value:.2f} %"


def markdown(results: dict) -> str:
    lines = [f"# Few-shot heads, adaptation and from-scratch baselines ({results['date']})", "",
             f"Command: `{results['command']}`; {results['threads']} CPU thread(s), torch {results['torch']}. "
             "Test identities only (never used for training, selection or calibration).", ""]
    for modality, rows in results["modalities"].items():
        lines += [f"## {modality} ({DATASETS[modality]} evaluation pairs + 5-way 1-shot episodes)", "",
                  "| variant | EER | TAR @ FAR 1 % | 5-way 1-shot accuracy (95 % CI) | adaptation time per user |",
                  "|---|---|---|---|---|"]
        for name, row in rows.items():
            if "not_available" in row:
                lines.append(f"| {name} | not available | | | {row['not_available']} |")
                continue
            shot = row["five_way_one_shot"]
            lines.append(f"| {name} | {percent(row['eer'])} | {percent(row['tar_at_far_1e_2'])} | "
                         f"{percent(shot['accuracy'])} ± {100 * shot['ci95']:.2f} ({shot['episodes']} episodes) | "
                         f"{adaptation_time(row['adapt_ms_per_user'])} |")
        used = {name: row["checkpoint"] for name, row in rows.items() if "checkpoint" in row}
        if used:
            lines.append("Adaptation checkpoints: " + ", ".join(f"{n.lstrip('+ ')} `{p}`" for n, p in used.items()) + ".")
        lines.append("")
    if results["orl"]:
        lines += ["## ORL reference (5-way 1-shot, 5 queries per class, 10 held-out people)", "",
                  "| variant | 5-way 1-shot accuracy (95 % CI) |", "|---|---|"]
    for name, row in results["orl"].items():
        shot = row["five_way_one_shot"]
        lines.append(f"| {name} | {percent(shot['accuracy'])} ± {100 * shot['ci95']:.2f} |")
    lines += ["", "## Validation identities (what decides shipping)", ""]
    for modality, decision in results["shipping"].items():
        lines.append(f"- {modality}: {json.dumps(decision)}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="identity-labelled data sets")
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "meta")
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--modality", nargs="+", default=["face", "voice"], choices=["face", "voice"])
    parser.add_argument("--out-name", default="meta_table", help="results file stem in benchmarks/results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {"date": datetime.date.today().isoformat(), "threads": 1, "torch": torch.__version__,
               "command": " ".join(["python benchmarks/meta_table.py", *sys.argv[1:]]),
               "modalities": {m: modality_rows(m, args.data, args.runs, args.episodes) for m in args.modality},
               "orl": orl_rows(args.data, args.runs, args.episodes) if "face" in args.modality else {}, "shipping": {}}
    for modality in args.modality:
        path = args.runs / f"{modality}-shipping.json"
        results["shipping"][modality] = json.loads(path.read_text()) if path.is_file() else "not trained"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out_name}.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    (RESULTS / f"{args.out_name}.md").write_text(markdown(results), encoding="utf-8")
    print(markdown(results))


if __name__ == "__main__":
    main()
