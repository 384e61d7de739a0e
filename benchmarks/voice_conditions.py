"""Voice verification under real conditions: short, noisy, band-limited and badly levelled probes.

    python benchmarks/voice_conditions.py [--root ../shared/data] [--seed 0] [--threads 2]
        [--sections accuracy,sweep,snr,cost,vad_speed] [--cache DIR] [--speakers N]

LibriSpeech segments of the identity split (``benchmarks/pairs/splits.json``). Every segment is
passed through each condition (``voice_trials.CONDITIONS``: clean, 1-2 s cut, 1-2 s cut with the
babble of 3-6 *other* speakers of the same half at 5-10 dB, white noise at 0-15 dB, telephone band,
level changes), each clip with its own seeded generator. A trial enrolls one clean segment and
probes with another segment of the same (genuine) or another (impostor) speaker under the
condition. (The reverse, a degraded enrollment and a clean probe, gives the same trials for
symmetric scores.)

Systems: speech detector (``silero`` VAD or the old ``energy`` trimming) x enrollment (``single``:
the clean sample; ``mean``: the renormalised mean of its embedding and of three condition copies,
``VoicePipeline.embed_condition_copies``; ``max``: the best score against the four) x scoring
(raw ``cosine``; ``snorm`` / ``asnorm<k>`` against a cohort of calibration-half embeddings:
``clean`` = the 327 clean segments, ``mixed`` = those plus two copies of each through
``degrade.random_degradation``, 981). Thresholds are taken on the calibration half (pooled over every
condition, and clean only) at FAR 0.1 % (medium) and 1 % (retry band) and applied to the
evaluation half: ``refused`` and ``far``. Calibration-half trials never meet their own speakers
in the cohort.

Other sections: ``sweep`` (calibration half: EER against a probe's exact length or SNR, with the
measured ``speech_seconds`` / ``snr_db`` and the share of probes flagged), ``snr`` (how the SNR
estimate tracks the true SNR of mixtures), ``cost`` (CPU time of one check, old front end against
new, 2 threads), ``vad_speed`` (Silero VAD runtimes).
Writes ``benchmarks/results/voice_conditions.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import voice_trials as vt  # noqa: E402

from verify.config import VoiceFrontEndConfig  # noqa: E402
from verify.voice import degrade  # noqa: E402
from verify.voice.pipeline import VoicePipeline  # noqa: E402
from verify.voice.quality import snr_db  # noqa: E402

HALVES = ("calibration", "evaluation")
DETECTORS = ("silero", "energy")
ENROLLMENTS = ("single", "mean", "max")
TOP_KS = (100, 200, 300, 400)
COHORT_COPIES = 2
MEASURE_BINS = {"speech_seconds": (0, 1.0, 1.5, 2.0, 2.5, 3.0, 10.0), "snr_db": (-20, 5, 10, 15, 20, 30, 61)}


def embed_halves(args, detector: str, halves: dict[str, vt.Clips]) -> dict:
    """Every condition's set, the clean sets' condition copies and the cohort's extra copies, embedded."""
    cache = Path(args.cache) / f"{detector}_seed{args.seed}.pkl" if args.cache else None
    if cache and cache.exists():
        return pickle.loads(cache.read_bytes())
    pipeline = detector_pipeline(detector, args.threads)
    out: dict = {}
    for half_index, (half, clips) in enumerate(halves.items()):
        sets: dict = {}
        for condition_index, condition in enumerate(vt.CONDITIONS):
            started = time.perf_counter()
            degraded = vt.degrade_clips(clips, condition, (args.seed, half_index, condition_index))
            sets[condition] = vt.embed_set(pipeline, degraded, keep_previews=condition == "clean")
            print(f"  {detector} {half} {condition}: {time.perf_counter() - started:.0f} s", flush=True)
        sets["copies"] = vt.condition_copies(pipeline, sets["clean"])
        if half == "calibration":
            for copy in range(COHORT_COPIES):
                rngs = [np.random.default_rng([args.seed, half_index, 200 + copy, i]) for i in range(len(clips.samples))]
                sets[f"cohort{copy}"] = vt.embed_set(
                    pipeline, [degrade.random_degradation(r)(c, r) for c, r in zip(clips.samples, rngs)]
                )
        out[half] = sets
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(pickle.dumps(out))
    return out


def detector_pipeline(detector: str, threads: int) -> VoicePipeline:
    """The shipped voice pipeline with ``speech_detector`` set to ``detector``."""
    return VoicePipeline(device="cpu", config=replace(VoiceFrontEndConfig(), speech_detector=detector), cpu_threads=threads)


def scorings(calibration_sets: dict, calibration_speakers: np.ndarray) -> dict[str, tuple]:
    """Scoring name -> (cohort vectors or None, cohort speakers, top_k)."""
    clean = calibration_sets["clean"]
    mixed = [clean] + [calibration_sets[f"cohort{copy}"] for copy in range(COHORT_COPIES)]

    def cohort(sets):
        vectors = np.concatenate([s.vectors for s in sets])
        speakers = np.concatenate([calibration_speakers] * len(sets))
        keep = ~np.isnan(vectors[:, 0])
        return vectors[keep], speakers[keep]

    out: dict[str, tuple] = {"cosine": (None, None, None)}
    for name, sets in (("clean", [clean]), ("mixed", mixed)):
        vectors, speakers = cohort(sets)
        out[f"snorm_{name}"] = (vectors, speakers, None)
        for k in TOP_KS:
            if k < len(vectors):
                out[f"asnorm{k}_{name}"] = (vectors, speakers, k)
    return out


def templates_of(sets: dict, enrollment: str) -> list[np.ndarray]:
    """The enrollment vectors ``(N, 256)`` each clean clip is scored against (the best score counts)."""
    if enrollment == "single":
        return [sets["clean"].vectors]
    if enrollment == "mean":
        return [vt.template_mean([sets["clean"].vectors, *sets["copies"]])]
    return [sets["clean"].vectors, *sets["copies"]]


def trial_scores(sets: dict, speakers: np.ndarray, enrollment: str, scoring: tuple, same_half_cohort: bool) -> dict:
    """``condition -> (genuine, impostor, probe index of each genuine trial)``."""
    cohort, cohort_speakers, top_k = scoring
    exclude = (speakers[:, None] == cohort_speakers[None, :]) if (cohort is not None and same_half_cohort) else None
    genuine_mask, impostor_mask = vt.trial_masks(speakers)
    probe_index = np.broadcast_to(np.arange(len(speakers))[None, :], genuine_mask.shape)
    out = {}
    for condition in vt.CONDITIONS:
        probes = sets[condition].vectors
        best = None
        for templates in templates_of(sets, enrollment):
            scores = vt.raw_scores(templates, probes)
            if cohort is not None:
                scores = vt.snorm_scores(scores, templates, probes, cohort, top_k, exclude, exclude)
            best = scores if best is None else np.maximum(best, scores)
        out[condition] = (best[genuine_mask], best[impostor_mask], probe_index[genuine_mask])
    return out


def system_report(embedded: dict, halves: dict[str, vt.Clips], enrollment: str, scoring_name: str, scoring: tuple) -> dict:
    """Figures on both halves, thresholds from the calibration half applied to the evaluation half."""
    trials = {half: trial_scores(embedded[half], halves[half].speakers, enrollment, scoring, half == "calibration")
              for half in HALVES}  # fmt: skip
    calibration = trials["calibration"]
    pooled = vt.thresholds(np.concatenate([g for g, _, _ in calibration.values()]),
                           np.concatenate([i for _, i, _ in calibration.values()]))  # fmt: skip
    clean_only = vt.thresholds(*calibration["clean"][:2])
    report = {"thresholds": {"pooled": pooled, "clean": clean_only}, "calibration": {}, "evaluation": {}}
    for half in HALVES:
        for key, (genuine, impostor, _) in trials[half].items():
            entry = vt.figures(genuine, impostor)
            entry["at_pooled_medium"] = vt.at_threshold(genuine, impostor, pooled["medium"])
            entry["at_clean_medium"] = vt.at_threshold(genuine, impostor, clean_only["medium"])
            report[half][key] = entry
    report["retry"] = retry_analysis(embedded["evaluation"], trials["evaluation"], pooled)
    return report


def retry_analysis(sets: dict, trials: dict, threshold: dict[str, float]) -> dict:
    """At the pooled medium threshold: what refused genuine probes are told (evaluation half)."""
    out = {}
    for condition, (genuine, impostor, probe_index) in trials.items():
        flagged = np.array([bool(sets[condition].issues[i]) for i in probe_index])
        refused = genuine < threshold["medium"]
        retry = refused & (flagged | (genuine >= threshold["retry"]))
        out[condition] = {
            "refused": float(refused.mean()),
            "refused_answered_retry": float(retry.sum() / max(1, refused.sum())),
            "refused_with_quality_reason": float((refused & flagged).sum() / max(1, refused.sum())),
            "clips_flagged": float(np.mean([bool(issues) for issues in sets[condition].issues])),
            "reasons": reason_counts(sets[condition].issues),
        }
    return out


def reason_counts(issues: list[tuple[str, ...]]) -> dict[str, int]:
    """How many clips got each kind of issue (first words of the message)."""
    counts: dict[str, int] = {}
    for clip_issues in issues:
        for issue in clip_issues:
            kind = " ".join(issue.split()[:3]) if not issue.startswith("only") else "only ... s of speech"
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def measures_report(embedded: dict, halves: dict[str, vt.Clips]) -> dict:
    """Per half: Spearman correlation of each probe measure with the genuine cosine score over the
    trials of every condition, and the EER of the trials whose probe falls in each measure bin."""
    out = {}
    for half in HALVES:
        sets, speakers = embedded[half], halves[half].speakers
        trials = trial_scores(sets, speakers, "single", (None, None, None), False)
        genuine_mask, impostor_mask = vt.trial_masks(speakers)
        probe_of = np.broadcast_to(np.arange(len(speakers))[None, :], genuine_mask.shape)
        pooled: dict = {"genuine": [], "impostor": [], "genuine_probe": {}, "impostor_probe": {}}
        for condition in vt.CONDITIONS:
            genuine, impostor, probe_index = trials[condition]
            pooled["genuine"].append(genuine)
            pooled["impostor"].append(impostor)
            for name, values in sets[condition].measures.items():
                pooled["genuine_probe"].setdefault(name, []).append(values[probe_index])
                pooled["impostor_probe"].setdefault(name, []).append(values[probe_of[impostor_mask]])
        genuine, impostor = np.concatenate(pooled["genuine"]), np.concatenate(pooled["impostor"])
        half_report: dict = {"spearman_with_genuine_score": {}, "eer_by_bin": {}}
        for name in pooled["genuine_probe"]:
            values = np.concatenate(pooled["genuine_probe"][name])
            ok = np.isfinite(values) & np.isfinite(genuine)
            half_report["spearman_with_genuine_score"][name] = float(spearmanr(values[ok], genuine[ok])[0])
        for name, edges in MEASURE_BINS.items():
            genuine_values = np.concatenate(pooled["genuine_probe"][name])
            impostor_values = np.concatenate(pooled["impostor_probe"][name])
            bins = {}
            for low, high in zip(edges[:-1], edges[1:]):
                g = genuine[(genuine_values >= low) & (genuine_values < high)]
                i = impostor[(impostor_values >= low) & (impostor_values < high)]
                if len(g) >= 20 and len(i) >= 200:
                    figures = vt.figures(g, i)
                    bins[f"{low}-{high}"] = {"eer": figures["eer"], "genuine_trials": len(g),
                                             "genuine_mean": figures["genuine"]["mean"]}  # fmt: skip
            half_report["eer_by_bin"][name] = bins
        out[half] = half_report
    return out


SWEEP = {
    **{f"cut {seconds} s": partial(degrade.cut, seconds=(seconds, seconds)) for seconds in (0.75, 1.0, 1.5, 2.0, 2.5, 3.0)},
    **{f"white {snr} dB": partial(degrade.add_noise, kind="white", snr_db=(snr, snr)) for snr in (0, 5, 10, 15, 20, 30)},
    **{f"babble {snr} dB": snr for snr in (0, 5, 10, 15, 20, 30)},
}


def sweep(args, clips: vt.Clips) -> dict:
    """Calibration half, shipped front end, cosine: clean enrollment against probes cut to an exact
    length or mixed at an exact SNR; EER, genuine mean, the median measure and the share flagged."""
    pipeline = detector_pipeline("silero", args.threads)
    clean = vt.embed_set(pipeline, clips.samples).vectors
    genuine_mask, impostor_mask = vt.trial_masks(clips.speakers)
    out: dict = {}
    for level_index, (name, degradation) in enumerate(SWEEP.items()):
        probes = []
        for index, samples in enumerate(clips.samples):
            rng = np.random.default_rng([args.seed, 400 + level_index, index])
            if name.startswith("babble"):
                probes.append(degrade.add_babble(samples, rng, clips.others(index), snr_db=(degradation, degradation)))
            else:
                probes.append(degradation(samples, rng))
        embedded = vt.embed_set(pipeline, probes)
        scores = vt.raw_scores(clean, embedded.vectors)
        figures = vt.figures(scores[genuine_mask], scores[impostor_mask])
        flagged = reason_counts(embedded.issues)
        out[name] = {"eer": figures["eer"], "tar_at_far_0.1%": figures["tar_at_far_0.1%"],
                     "genuine_mean": figures["genuine"]["mean"],
                     "median_speech_seconds": float(np.nanmedian(embedded.measures["speech_seconds"])),
                     "median_snr_db": float(np.nanmedian(embedded.measures["snr_db"])),
                     "flagged_short": flagged.get("only ... s of speech", 0) / len(probes),
                     "flagged_noisy": flagged.get("too much background", 0) / len(probes)}  # fmt: skip
        print(f"  {name:14} EER {figures['eer']:6.2%}  " + "  ".join(f"{k} {v:.3g}" for k, v in out[name].items()), flush=True)
    return out


def snr_tracking(clips: vt.Clips, seed: int) -> dict:
    """The SNR estimate against the true SNR of white, pink and babble mixtures at 0-20 dB, on
    whole segments and on 1-2 s cuts: Spearman correlation, mean error and mean absolute error."""
    rows: dict[tuple[str, str], list[tuple[float, float]]] = {}
    clean: dict[str, list[float]] = {"whole": [], "cut_1_2s": []}
    for index, samples in enumerate(clips.samples):
        rng = np.random.default_rng([seed, 300, index])
        others = clips.others(index)
        for length in ("whole", "cut_1_2s"):
            speech = degrade.cut(samples, rng, (1.0, 2.0)) if length == "cut_1_2s" else samples
            clean[length].append(snr_db(speech))
            for kind in ("white", "pink", "babble"):
                for true_snr in (0.0, 5.0, 10.0, 15.0, 20.0):
                    mixed = (degrade.add_babble(speech, rng, others, snr_db=(true_snr, true_snr)) if kind == "babble"
                             else degrade.add_noise(speech, rng, kind, (true_snr, true_snr)))  # fmt: skip
                    rows.setdefault((length, kind), []).append((true_snr, snr_db(mixed)))
    out: dict = {}
    for (length, kind), pairs in rows.items():
        true, estimate = np.array(pairs).T
        out.setdefault(length, {})[kind] = {
            "spearman": float(spearmanr(true, estimate)[0]), "bias_db": float(np.mean(estimate - true)),
            "mae_db": float(np.mean(np.abs(estimate - true))),
            "median_estimate_by_true": {f"{t:.0f}": float(np.median(estimate[true == t])) for t in np.unique(true)},
        }  # fmt: skip
        out[length].setdefault("clean_estimate", {
            "median": float(np.median(clean[length])), "p5": float(np.percentile(clean[length], 5)),
            "p10": float(np.percentile(clean[length], 10))})  # fmt: skip
    for length in out:
        everything = [pair for (lng, _), pairs in rows.items() if lng == length for pair in pairs]
        true, estimate = np.array(everything).T
        out[length]["all_noises_spearman"] = float(spearmanr(true, estimate)[0])
    return out


def cpu_cost(clips: vt.Clips, threads: int, runs: int) -> dict:
    """CPU and wall time of one check (``embed`` of one clip), energy trimming against Silero VAD,
    taking turns run by run, on LibriSpeech speech of 1, 3 and 10 s, bare and with 0.5 s of quiet
    room noise (-60 dBFS) on both sides."""
    speech = np.concatenate(clips.samples[:40])
    pipelines = {detector: detector_pipeline(detector, threads) for detector in ("energy", "silero")}
    rng = np.random.default_rng(0)
    out: dict = {}
    for seconds in (1, 3, 10):
        for padding in (0.0, 0.5):
            name = f"{seconds}s" + (" + 0.5 s quiet each side" if padding else "")
            pad = (0.001 * rng.standard_normal(int(padding * 16_000))).astype(np.float32)
            inputs = [np.concatenate([pad, speech[i * seconds * 16_000 : (i + 1) * seconds * 16_000], pad])
                      for i in range(10)]  # fmt: skip
            times: dict = {detector: {"cpu": [], "wall": []} for detector in pipelines}
            for run in range(runs + 2):
                for detector, pipeline in pipelines.items():
                    cpu, wall = time.process_time(), time.perf_counter()
                    pipeline.embed((inputs[run % len(inputs)], 16_000))
                    if run >= 2:
                        times[detector]["cpu"].append(time.process_time() - cpu)
                        times[detector]["wall"].append(time.perf_counter() - wall)
            out[name] = {detector: {f"{kind}_ms_median": 1000 * float(np.median(values)) for kind, values in t.items()}
                         for detector, t in times.items()}  # fmt: skip
            out[name]["cpu_ratio_silero_over_energy"] = (out[name]["silero"]["cpu_ms_median"]
                                                         / out[name]["energy"]["cpu_ms_median"])  # fmt: skip
    return out


def vad_speed(clips: vt.Clips, runs: int) -> dict:
    """CPU ms of Silero VAD probabilities for 1, 3 and 10 s, one thread: the sequence ONNX export in
    OpenVINO (shipped) or onnxruntime, and the package's own per-frame loop (ONNX and TorchScript).
    Imports ``silero_vad``, which sets torch to one thread: run last."""
    import onnxruntime

    from verify.voice.vad import SileroVad, context_frames, model_path

    speech = np.concatenate(clips.samples[:10])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    session = onnxruntime.InferenceSession(str(model_path()), options, providers=["CPUExecutionProvider"])
    state = np.zeros((1, 1, 128), np.float32)
    ours = SileroVad()
    threads = torch.get_num_threads()
    from silero_vad import load_silero_vad

    torch.set_num_threads(1)
    jit, stock_onnx = load_silero_vad(), load_silero_vad(onnx=True)
    systems = {
        "openvino_sequence (shipped)": lambda x: ours.probabilities(x),
        "onnxruntime_sequence": lambda x: session.run(["speech_probs"], {"input": context_frames(x), "h": state, "c": state}),
        "onnxruntime_per_frame (silero_vad.load_silero_vad(onnx=True))": lambda x: stock_onnx.audio_forward(torch.from_numpy(x), 16_000),
        "torchscript_per_frame (silero_vad.load_silero_vad())": lambda x: jit.audio_forward(torch.from_numpy(x), 16_000),
    }  # fmt: skip
    out: dict = {}
    for seconds in (1, 3, 10):
        clip = speech[: seconds * 16_000]
        out[f"{seconds}s"] = {}
        for name, work in systems.items():
            count = runs if "torchscript" not in name else max(3, runs // 10)
            work(clip)
            cpu = []
            for _ in range(count):
                started = time.process_time()
                work(clip)
                cpu.append(time.process_time() - started)
            out[f"{seconds}s"][name] = 1000 * float(np.median(cpu))
    torch.set_num_threads(threads)
    return out


def summary(report: dict, half: str) -> dict[str, float]:
    """Mean EER and minDCF over every condition of one half."""
    entries = report[half].values()
    return {"mean_eer": float(np.mean([e["eer"] for e in entries])),
            "mean_min_dcf": float(np.mean([e["min_dcf"] for e in entries]))}  # fmt: skip


def print_system(name: str, report: dict) -> None:
    """The evaluation-half table of one system."""
    print(f"\n## {name}   (medium threshold, pooled calibration: {report['thresholds']['pooled']['medium']:.3f})")
    print(f"{'probe condition':34} {'EER':>6} {'TAR@0.1%':>8} {'minDCF':>6} {'refused':>7} {'FAR':>6}"
          f" {'refused':>7} {'FAR':>6}  {'genuine mean+-sd':>16}  {'impostor mean+-sd':>17}")  # fmt: skip
    print(f"{'':34} {'':>6} {'':>8} {'':>6} {'(pooled thr.)':>14} {'(clean thr.)':>14}")
    for key, e in report["evaluation"].items():
        pooled, clean = e["at_pooled_medium"], e["at_clean_medium"]
        print(f"{key:34} {e['eer']:6.2%} {e['tar_at_far_0.1%']:8.2%} {e['min_dcf']:6.3f} {pooled['refused']:7.1%}"
              f" {pooled['far']:6.2%} {clean['refused']:7.1%} {clean['far']:6.2%}"
              f"  {e['genuine']['mean']:7.3f}+-{e['genuine']['std']:.3f}  {e['impostor']['mean']:8.3f}+-{e['impostor']['std']:.3f}")  # fmt: skip
    for condition, r in report["retry"].items():
        print(f"  retry {condition:26} refused {r['refused']:6.1%}: answered retry {r['refused_answered_retry']:6.1%},"
              f" with a quality reason {r['refused_with_quality_reason']:6.1%}; clips flagged {r['clips_flagged']:6.1%} {r['reasons']}")  # fmt: skip


PRINTED = ("energy/single/cosine", "silero/single/cosine", "silero/single/asnorm200_mixed", "silero/mean/cosine",
           "silero/max/cosine", "silero/max/snorm_mixed", "silero/max/asnorm200_mixed")  # fmt: skip


def accuracy(args, halves: dict[str, vt.Clips]) -> dict:
    """Every system's report, the measures' report per detector, and the tables printed."""
    out: dict = {"systems": {}, "measures": {}}
    for detector in args.detectors.split(","):
        embedded = embed_halves(args, detector, halves)
        out["measures"][detector] = measures_report(embedded, halves)
        for scoring_name, scoring in scorings(embedded["calibration"], halves["calibration"].speakers).items():
            for enrollment in ENROLLMENTS:
                name = f"{detector}/{enrollment}/{scoring_name}"
                report = system_report(embedded, halves, enrollment, scoring_name, scoring)
                report["summary"] = {half: summary(report, half) for half in HALVES}
                out["systems"][name] = report
    print("\n# mean EER / minDCF over conditions: calibration half (for choosing) | evaluation half")
    for name, report in out["systems"].items():
        c, e = report["summary"]["calibration"], report["summary"]["evaluation"]
        print(f"{name:42} {c['mean_eer']:6.2%} {c['mean_min_dcf']:.3f} | {e['mean_eer']:6.2%} {e['mean_min_dcf']:.3f}")
    for name in PRINTED:
        if name in out["systems"]:
            print_system(name, out["systems"][name])
    print("\n# probe measures: Spearman with the genuine score; EER by bin (evaluation half)")
    for detector, report in out["measures"].items():
        print(detector, json.dumps(report["evaluation"], indent=None))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=30, help="timed runs per case (cost, vad_speed)")
    parser.add_argument("--sections", default="accuracy,sweep,snr,cost,vad_speed")
    parser.add_argument("--detectors", default=",".join(DETECTORS))
    parser.add_argument("--speakers", type=int, default=None, help="first N speakers of each half only (a smoke test)")
    parser.add_argument("--cache", default=None, help="folder keeping embeddings between runs (same code only)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "voice_conditions.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    split = json.loads((REPO / "benchmarks" / "pairs" / "splits.json").read_text())["librispeech"]
    halves = {half: vt.load_clips(Path(args.root), split["folder"], sorted(split[half])[: args.speakers]) for half in HALVES}
    out_path = Path(args.out)
    report = json.loads(out_path.read_text()) if out_path.exists() else {}
    report.update({"command": "python benchmarks/voice_conditions.py " + " ".join(argv or sys.argv[1:]),
                   "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
                   "clips": {half: len(clips.samples) for half, clips in halves.items()}})  # fmt: skip
    sections = args.sections.split(",")
    if "accuracy" in sections:
        report["accuracy"] = accuracy(args, halves)
    if "sweep" in sections:
        print("\n# sweep: calibration half, clean enrollment, cosine")
        report["sweep"] = sweep(args, halves["calibration"])
    if "snr" in sections:
        report["snr_tracking"] = snr_tracking(halves["evaluation"], args.seed)
        print("\n# SNR estimate against the true SNR (evaluation half)\n" + json.dumps(report["snr_tracking"], indent=1))
    if "cost" in sections:
        report["cost"] = cpu_cost(halves["evaluation"], args.threads, args.runs)
        print(f"\n# one check, {args.threads} threads: CPU / wall ms median\n" + json.dumps(report["cost"], indent=1))
    if "vad_speed" in sections:
        report["vad_speed"] = vad_speed(halves["evaluation"], args.runs)
        print("\n# Silero VAD, CPU ms per clip, 1 thread\n" + json.dumps(report["vad_speed"], indent=1))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nwrote {out_path}")


if __name__ == "__main__":
    main()
