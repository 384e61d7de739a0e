"""1:N galleries of 10^4 to 10^6 templates: build time, memory, query latency, recall against exact search.

    python -m verify embed ../shared/data/faces/lfw_gray --out lfw_gray.parquet   # real embeddings, once
    python benchmarks/gallery.py --embeddings lfw_gray.parquet [--sizes 10000 100000 1000000]

Gallery: N synthetic face templates (of the embeddings' dimension) plus the real evaluation people of LFW (the first photo
of each, one-shot). Synthetic templates come from a Gaussian model of real embeddings fitted on
the *calibration* people only: their mean, between-person and within-person covariances; a
template or probe is ``identity centre + s * within-person noise``, unit-normalised, with ``s``
log-normal (sigma 0.3) so that same-person scores spread as real ones do (both distributions
are in the report). Isotropic random vectors would be easier to make and much harder to index
than any real gallery (every point nearly equidistant), so they would not say what to expect.

Queries (single, one thread: FAISS's and NumPy's), each searched exactly (NumPy, the ground truth) and by the index:

- ``synthetic genuine``: a new sample of a random synthetic identity of the gallery;
- ``real probes``: every other photo of the real enrolled people;
- ``strangers``: real photos of calibration people (never enrolled) and new synthetic identities.

Per size: build seconds (FAISS on ``--threads`` threads), index bytes and process RSS growth,
latency p50/p99 of the index search (shortlist of 100) and of the whole identification
(search, exact re-scoring of the shortlist, decision), recall@1 of the shortlist against exact
search, agreement of the named person with exact search, and for real probes how many are named
correctly and how many wrongly; for each ``--candidates`` count the PQ scan hands to exact
re-ranking. Up to ``exact_max`` (20,000) the gallery is searched exactly, as the product does;
above it, with ``--device cuda``, the GPU scans every row exactly (the candidates counts then say
how many rows its scan hands to the host's re-ranking).
The machine's load is recorded before and after.

Decisions are made on the raw cosine (:class:`~verify.scorer.CosineScorer`) at thresholds set on
the embeddings' own *calibration* people (every same-person pair, 200,000 different-person pairs,
thresholds at FARs 10 % to 0.01 %): synthetic templates have no cohort statistics and synthetic
probes no quality measures, which the product's calibrated scorer needs. The index and its recall
do not depend on the scorer; the product's ranking of the shortlist by S-norm and LLR adds one
cohort product per query to ``identify``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy: one query, one thread (as FAISS searches)

import argparse
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from enrollment.changes import StoreVersion  # noqa: E402
from enrollment.gallery import Gallery, GalleryConfig, GalleryKey  # noqa: E402
from enrollment.identify import identify  # noqa: E402
from verify.embedding import Embedding  # noqa: E402
from verify.calibration import Thresholds, calibrate  # noqa: E402
from verify.engines.embeddings_file import read_embeddings  # noqa: E402
from verify.scorer import CosineScorer  # noqa: E402
from verify.scoring import decide  # noqa: E402
from verify.search import IndexConfig, VectorIndex  # noqa: E402
from verify.verifier import Verifier  # noqa: E402

NOISE_SIGMA = 0.3
SPLITS = REPO / "benchmarks" / "pairs" / "splits.json"


@dataclass
class Stub:
    """What identification needs of a pipeline: which templates it may score."""

    modality: str
    model_id: str
    model_version: str


class FaceModel:
    """A Gaussian model of one-shot face embeddings: identity centres and within-person noise."""

    def __init__(self, vectors: np.ndarray, people: list[str]) -> None:
        data = vectors.astype(np.float64)
        self.mean = data.mean(0)
        deviations = []
        for person in sorted(set(people)):
            rows = data[[i for i, p in enumerate(people) if p == person]]
            if len(rows) > 1:
                deviations.append((rows - rows.mean(0)) * np.sqrt(len(rows) / (len(rows) - 1)))
        within = np.concatenate(deviations)
        within = within.T @ within / len(within)
        self.within = _sqrt(within)
        self.between = _sqrt(np.cov((data - self.mean).T) - within)

    def centres(self, count: int, rng: np.random.Generator) -> np.ndarray:
        return self.mean + rng.standard_normal((count, len(self.mean))) @ self.between.T

    def samples(self, centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        scale = np.exp(NOISE_SIGMA * rng.standard_normal((len(centres), 1)))
        return unit(centres + scale * (rng.standard_normal(centres.shape) @ self.within.T))


def _sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return vectors * np.sqrt(np.clip(values, 0, None))


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS"))


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    import faiss

    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(), "faiss": faiss.__version__,
            "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()]}


def score_stats(scores: np.ndarray) -> dict:
    return {"mean": round(float(scores.mean()), 3), "std": round(float(scores.std()), 3),
            "p5": round(float(np.percentile(scores, 5)), 3), "p99_9": round(float(np.percentile(scores, 99.9)), 3)}


def exact_top2(gallery: np.ndarray, queries: np.ndarray, chunk: int = 65_536) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row of the best exact score, the best and the second-best score of every query."""
    best = np.full(len(queries), -np.inf, np.float32)
    second = np.full(len(queries), -np.inf, np.float32)
    row = np.zeros(len(queries), np.int64)
    for start in range(0, len(gallery), chunk):
        scores = queries @ gallery[start : start + chunk].T
        top = np.argpartition(-scores, 1, axis=1)[:, :2] if scores.shape[1] > 1 else np.zeros((len(queries), 1), int)
        for column in range(top.shape[1]):
            candidate, rows = scores[np.arange(len(queries)), top[:, column]], top[:, column] + start
            beats_best = candidate > best
            second = np.where(beats_best, best, np.maximum(second, candidate))
            row = np.where(beats_best, rows, row)
            best = np.where(beats_best, candidate, best)
    return row, best, second


def exact_names(names: list[str], row: np.ndarray, best: np.ndarray, second: np.ndarray, verifier: Verifier,
                quality: list[tuple[str, ...]]) -> list[str | None]:
    """Whom exact search names, by identification's rules (accepted, and clear of the runner-up)."""
    point = verifier.operating_point
    margin = point.threshold - point.retry_threshold
    return [names[r] if decide(float(b), point, q).accepted and b - s >= margin else None
            for r, b, s, q in zip(row, best, second, quality)]


def percentiles(seconds: list[float]) -> dict:
    return {"p50_ms": round(1000 * float(np.percentile(seconds, 50)), 3),
            "p99_ms": round(1000 * float(np.percentile(seconds, 99)), 3)}


class Timer:
    """Wall and CPU (this thread's) seconds of each timed call: the CPU time is what a query costs on
    a free core, the wall time what it took on this shared machine."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def __call__(self, work):
        wall, cpu = time.perf_counter(), time.thread_time()
        result = work()
        self.cpu.append(time.thread_time() - cpu)
        self.wall.append(time.perf_counter() - wall)
        return result

    def report(self) -> dict:
        return {"wall": percentiles(self.wall), "cpu": percentiles(self.cpu)}


def run_queries(gallery: Gallery, verifier: Verifier, queries: np.ndarray, quality, truth_row, truth_names,
                truth_best, shortlist: int) -> dict:
    index = gallery.index
    search, identification, hits, agree, named = Timer(), Timer(), [], 0, []
    for query, issues, row, expected in zip(queries, quality, truth_row, truth_names):
        _, rows = search(lambda: index.search(query, shortlist))
        scores = index.vectors[rows] @ query
        hits.append(len(rows) > 0 and rows[int(np.argmax(scores))] == row)
        probe = Embedding(query, issues)
        found = identification(lambda: identify(None, verifier, probe, gallery=gallery))
        agree += found.identity == expected
        named.append(found.identity)
    hits, matched = np.array(hits), truth_best >= verifier.operating_point.threshold
    return {"queries": len(queries), "search": search.report(), "identify": identification.report(),
            "recall_at_1": round(float(hits.mean()), 4),
            "recall_at_1_where_exact_accepts": round(float(hits[matched].mean()), 4) if matched.any() else None,
            "exact_accepts": int(matched.sum()), "named_as_exact": round(agree / len(queries), 4), "named": named}


def build_index(vectors: np.ndarray, config: IndexConfig) -> tuple[VectorIndex, dict]:
    """The index and its build figures."""
    before = rss_bytes()
    start = time.perf_counter()
    index = VectorIndex.build(vectors, config)
    return index, {"kind": index.kind, "build_s": round(time.perf_counter() - start, 1),
                   "index_bytes": index.memory_bytes(), "rss_growth_bytes": rss_bytes() - before,
                   "load_after_build": [round(x, 2) for x in os.getloadavg()]}


def bench_size(size: int, model: FaceModel, real: dict, queries: dict, args, verifier: Verifier) -> dict:
    rng = np.random.default_rng(args.seed + size)
    picked = np.sort(rng.integers(0, size, args.queries)) if size else np.empty(0, int)
    parts, picked_centres = [], []
    for start in range(0, size, 100_000):  # 100,000 at a time: a million centres in float64 would take 2 GB
        centres = model.centres(min(100_000, size - start), rng)
        parts.append(model.samples(centres, rng))
        picked_centres.append(centres[picked[(picked >= start) & (picked < start + len(centres))] - start])
    dim = len(model.mean)
    synthetic = np.concatenate(parts) if size else np.empty((0, dim), np.float32)
    genuine = model.samples(np.concatenate(picked_centres), rng) if size else np.empty((0, dim), np.float32)
    names = [f"synthetic {i:07d}" for i in range(size)] + real["names"]
    vectors = np.concatenate([synthetic, real["templates"]])
    order = sorted(range(len(names)), key=names.__getitem__)  # galleries are in identity order
    names, vectors = [names[i] for i in order], np.ascontiguousarray(vectors[order])
    del synthetic, parts
    sets = {"synthetic genuine": (genuine, [()] * len(genuine)), **queries}
    result: dict = {"templates": len(names), "threads": args.threads}
    import faiss

    faiss.omp_set_num_threads(args.threads)
    index, figures = build_index(vectors, IndexConfig(exact_max=args.exact_max, dims_per_code=args.dims_per_code,
                                                      device=args.device))
    result.update(figures)
    print(f"{len(names)} templates: {index.kind} index, built in {result['build_s']} s, "
          f"{index.memory_bytes() / 2**30:.2f} GiB", flush=True)
    faiss.omp_set_num_threads(1)
    exact = Timer()
    for query in next(iter(queries.values()))[0][:20]:
        exact(lambda: np.argpartition(-(vectors @ query), 100)[:100])
    result["exact_search"] = exact.report()
    truth = {}
    for name, (rows, quality) in sets.items():
        row, best, second = exact_top2(vectors, rows)
        truth[name] = (row, exact_names(names, row, best, second, verifier, quality), best)
    for candidates in args.candidates if index.kind != "exact" else [None]:
        config = GalleryConfig(IndexConfig(exact_max=args.exact_max, dims_per_code=args.dims_per_code,
                                           candidates=candidates or IndexConfig().candidates, device=args.device),
                               shortlist=args.shortlist)
        index.config = config.index
        gallery = Gallery(GalleryKey(verifier.pipeline.modality, verifier.pipeline.model_id,
                                     verifier.pipeline.model_version), config, names, [None] * len(names), index,
                          StoreVersion(0, 0), set())
        runs = {}
        for name, (rows, quality) in sets.items():
            runs[name] = run_queries(gallery, verifier, rows, quality, *truth[name], args.shortlist)
            if name == "real probes":
                named = runs[name].pop("named")
                runs[name]["named_correctly"] = sum(n == p for n, p in zip(named, real["probe_people"]))
                runs[name]["named_wrongly"] = sum(n is not None and n != p for n, p in zip(named, real["probe_people"]))
                exact = truth[name][1]
                runs[name]["exact_named_correctly"] = sum(n == p for n, p in zip(exact, real["probe_people"]))
                runs[name]["exact_named_wrongly"] = sum(n is not None and n != p for n, p in zip(exact, real["probe_people"]))
            else:
                runs[name].pop("named")
            print(f"  candidates {candidates}: {name}: {json.dumps(runs[name])}", flush=True)
        result[f"candidates_{candidates}" if candidates else "exact"] = runs
    return result


def split_people(table) -> tuple[list[str], set[str], set[str]]:
    """Each photo's person, and the calibration and evaluation people of LFW's split."""
    splits = json.loads(SPLITS.read_text())["lfw_gray"]
    return [Path(path).parent.name for path in table.paths], set(splits["calibration"]), set(splits["evaluation"])


def real_people(table, rng_seed: int) -> tuple[FaceModel, dict, dict, dict]:
    """The synthetic model (calibration people), the real gallery and probes (evaluation people), strangers."""
    people, calibration, evaluation = split_people(table)
    cal_rows = [i for i, p in enumerate(people) if p in calibration]
    model = FaceModel(table.vectors[cal_rows], [people[i] for i in cal_rows])
    first: dict[str, int] = {}
    for i, person in enumerate(people):
        if person in evaluation:
            first.setdefault(person, i)
    probes = [i for i, p in enumerate(people) if p in evaluation and first[p] != i]
    real = {"names": sorted(first), "templates": table.vectors[[first[p] for p in sorted(first)]],
            "probe_people": [people[i] for i in probes]}
    rng = np.random.default_rng(rng_seed)
    strangers_real = rng.choice(cal_rows, size=min(500, len(cal_rows)), replace=False)
    strangers_synthetic = model.samples(model.centres(500, rng), rng)
    queries = {"real probes": (table.vectors[probes], [table.quality[i] for i in probes]),
               "strangers": (np.concatenate([table.vectors[strangers_real], strangers_synthetic]),
                             [table.quality[i] for i in strangers_real] + [()] * 500)}
    stats = fit_report(model, table.vectors, people, calibration, rng)
    return model, real, queries, stats


def cosine_thresholds(table, seed: int) -> Thresholds:
    """Raw-cosine thresholds per target FAR from the calibration people's photos (see the module docstring)."""
    people, calibration, _ = split_people(table)
    rows = [i for i, p in enumerate(people) if p in calibration]
    vectors, labels = table.vectors[rows], np.array([people[i] for i in rows])
    first, second = np.triu_indices(len(rows), 1)
    same = labels[first] == labels[second]
    genuine = (vectors[first[same]] * vectors[second[same]]).sum(1)
    pairs = np.random.default_rng(seed).choice(len(rows), size=(400_000, 2))
    pairs = pairs[labels[pairs[:, 0]] != labels[pairs[:, 1]]][:200_000]
    impostor = (vectors[pairs[:, 0]] * vectors[pairs[:, 1]]).sum(1)
    scores = np.concatenate([genuine, impostor])
    truth = np.concatenate([np.ones(len(genuine), bool), np.zeros(len(impostor), bool)])
    return Thresholds(table.model_id, calibrate(scores, truth), {"genuine": len(genuine), "impostor": len(impostor)})


def fit_report(model: FaceModel, vectors: np.ndarray, people: list[str], calibration: set, rng) -> dict:
    """Same-person and different-person scores of real calibration photos and of the synthetic model."""
    rows = [i for i, p in enumerate(people) if p in calibration]
    genuine = [float(vectors[a] @ vectors[b]) for k, a in enumerate(rows) for b in rows[k + 1 : k + 12]
               if people[a] == people[b]]
    pairs = rng.choice(rows, size=(20_000, 2))
    impostor = np.array([vectors[a] @ vectors[b] for a, b in pairs if people[a] != people[b]])
    centres = model.centres(20_000, rng)
    one, two = model.samples(centres, rng), model.samples(centres, rng)
    return {"real_genuine": score_stats(np.array(genuine)), "real_impostor": score_stats(impostor),
            "synthetic_genuine": score_stats((one * two).sum(1)),
            "synthetic_impostor": score_stats((one[:10_000] * one[10_000:]).sum(1))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embeddings", type=Path, required=True, help="LFW embeddings from `verify embed`")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=1000, help="synthetic genuine queries per size")
    parser.add_argument("--candidates", type=int, nargs="+", default=[300, IndexConfig().candidates, 3000],
                        help="rows the PQ scan hands to exact re-ranking, values to try")
    parser.add_argument("--exact-max", type=int, default=IndexConfig().exact_max)
    parser.add_argument("--dims-per-code", type=int, default=IndexConfig().dims_per_code)
    parser.add_argument("--shortlist", type=int, default=GalleryConfig().shortlist)
    parser.add_argument("--threads", type=int, default=2, help="FAISS threads while building")
    parser.add_argument("--device", default="cpu", help="cpu (PQ fast-scan above --exact-max) or cuda[:N] (exact GPU scan)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "gallery.json")
    args = parser.parse_args()
    table = read_embeddings(args.embeddings)
    model, real, queries, stats = real_people(table, args.seed)
    thresholds = cosine_thresholds(table, args.seed)
    verifier = Verifier(Stub(table.modality, table.model_id, table.model_version), CosineScorer(thresholds))
    report = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": machine(), "scores": stats,
              "model": table.model_id, "dimension": table.vectors.shape[1],
              "cosine_thresholds": {f"{far:g}": round(value, 4) for far, value in sorted(thresholds.by_far.items())},
              "real_people": len(real["names"]), "real_probes": len(real["probe_people"]), "sizes": {}}
    print(json.dumps(stats), flush=True)
    for size in args.sizes:
        report["sizes"][str(size)] = bench_size(size, model, real, queries, args, verifier)
        report["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
