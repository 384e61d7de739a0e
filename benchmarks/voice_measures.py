"""What the voice front end's quality measures read under each kind of degradation, and how often
each of its flags fires: the evidence behind ``VoiceFrontEndConfig``'s limits.

    python benchmarks/voice_measures.py [--root ../shared/data] [--seed 0] [--out benchmarks/results/voice_measures.json]

Every LibriSpeech clip of the calibration people (benchmarks/pairs/splits.json) goes through the
product's front end clean and degraded (each clip with its own seeded generator): rooms of two
reverberation times, white and pink noise, a telephone channel, level changes, short cuts. For
``snr_db``, ``high_band_db`` and ``decay_db`` it prints percentiles, and the share of clips each
flag marks (noisy, band-limited, echoing). A limit is good when clean clips almost never cross it
and the degradation it names mostly does. It also counts the LibriSpeech speakers (both halves)
whose recordings carry a DC offset, which the front end removes (``"dc_offset"``).
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from verify.config import VoiceFrontEndConfig  # noqa: E402
from verify.errors import VerifyError  # noqa: E402
from verify.io import decode_audio  # noqa: E402
from verify.voice import degrade  # noqa: E402
from verify.voice.frontend import BAND_LIMITED, ECHO, prepare_speech  # noqa: E402

CONDITIONS = {
    "clean": None,
    "room RT60 0.2-0.4 s": partial(degrade.reverberate, rt60_seconds=(0.2, 0.4)),
    "room RT60 0.4-0.9 s": partial(degrade.reverberate, rt60_seconds=(0.4, 0.9)),
    "white noise 0-15 dB": partial(degrade.add_noise, kind="white", snr_db=(0.0, 15.0)),
    "pink noise 10-20 dB": partial(degrade.add_noise, kind="pink", snr_db=(10.0, 20.0)),
    "telephone": degrade.telephone,
    "level changes": degrade.change_level,
    "cut to 1-3 s": degrade.cut,
}
MEASURES = ("snr_db", "high_band_db", "decay_db")


def calibration_clips(root: Path) -> list[Path]:
    split = json.loads((REPO / "benchmarks" / "pairs" / "splits.json").read_text())["librispeech"]
    return [path for person in sorted(split["calibration"])
            for path in sorted((root / split["folder"] / person).iterdir()) if path.is_file()]


def dc_offsets(root: Path, at_least: float = 0.003) -> dict:
    """The speakers whose clips' mean reaches ``at_least`` of full scale, and the largest offset."""
    folder = root / json.loads((REPO / "benchmarks" / "pairs" / "splits.json").read_text())["librispeech"]["folder"]
    offsets = {speaker.name: max(abs(float(decode_audio(path)[0].mean(dtype=np.float64)))
                                 for path in speaker.iterdir() if path.is_file())
               for speaker in sorted(folder.iterdir()) if speaker.is_dir()}
    carrying = sorted(name for name, offset in offsets.items() if offset >= at_least)
    return {"speakers": len(offsets), "at_least": at_least, "carrying": len(carrying),
            "largest": round(max(offsets.values()), 4), "who": carrying}


def condition_report(clips: list[np.ndarray], condition, seed: int, config: VoiceFrontEndConfig) -> dict:
    """Percentiles of each measure and the share of clips each flag marks."""
    measured: dict[str, list[float]] = {name: [] for name in MEASURES}
    flags = {"noisy": 0, "band-limited": 0, "echoing": 0}
    for index, clip in enumerate(clips):
        sample = clip if condition is None else condition(clip, np.random.default_rng([seed, index]))
        try:
            speech = prepare_speech(sample, degrade.SAMPLE_RATE, config)
        except VerifyError:
            continue
        for name in MEASURES:
            measured[name].append(speech.measures[name])
        flags["noisy"] += speech.measures["snr_db"] < config.min_snr_db
        flags["band-limited"] += BAND_LIMITED in speech.quality_issues
        flags["echoing"] += ECHO in speech.quality_issues
    count = len(measured["snr_db"])
    return {"clips": count,
            **{name: dict(zip(("p1", "p10", "p50", "p90", "p99"),
                              np.round(np.percentile(values, [1, 10, 50, 90, 99]), 1).tolist()))
               for name, values in measured.items()},
            "flagged": {flag: round(found / count, 4) for flag, found in flags.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "voice_measures.json")
    args = parser.parse_args()
    config = VoiceFrontEndConfig()
    clips = [decode_audio(path)[0] for path in calibration_clips(args.root)]
    report = {"command": "python " + " ".join(sys.argv), "limits": {
        "min_snr_db": config.min_snr_db, "min_high_band_db": config.min_high_band_db,
        "max_decay_db": config.max_decay_db}, "conditions": {}}
    print("| condition | clips | " + " | ".join(f"{name} p1 / p50 / p99" for name in MEASURES)
          + " | flagged noisy / band-limited / echoing |")
    print("|---|---|" + "---|" * (len(MEASURES) + 1))
    for name, condition in CONDITIONS.items():
        found = report["conditions"][name] = condition_report(clips, condition, args.seed, config)
        cells = " | ".join(f"{found[m]['p1']} / {found[m]['p50']} / {found[m]['p99']}" for m in MEASURES)
        flagged = " / ".join(f"{share:.1%}" for share in found["flagged"].values())
        print(f"| {name} | {found['clips']} | {cells} | {flagged} |", flush=True)
    report["dc_offset"] = dc_offsets(args.root)
    print("DC offset:", {key: value for key, value in report["dc_offset"].items() if key != "who"})
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
