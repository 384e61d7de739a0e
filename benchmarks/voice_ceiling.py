"""How much faster than Resemblyzer the voice path could get on this CPU: a roofline check.

    python benchmarks/voice_ceiling.py [--threads 2] [--runs 20]

Ours and Resemblyzer run the same GE2E network (3-layer LSTM, hidden 256) over the same
1.6 s partial windows, so both do the same arithmetic per clip. This script measures, for LibriSpeech
clips of 1, 3 and 10 s, one per call and 16 per call:

- ``lstm_gflop``: the float32 arithmetic of our encoder on the clip's windows (2 flops per
  multiply-add of the LSTM gates and the projection);
- ``sgemm_gflops``: what this CPU sustains on dense float32 arithmetic with the same threads
  (a 2048 x 2048 matrix product);
- ``lstm_gflops``: the rate our LSTM reaches on those windows (encoder alone);
- ``ours_ms`` / ``resemblyzer_ms``: end to end from samples, as in ``speed.py``;
- ``resemblyzer_lstm_ms``: Resemblyzer's own network on its own number of windows (its silence
  trimming is stricter than ours, so it often has fewer), and its rate;
- ``ceiling``: Resemblyzer's time / (``lstm_gflop`` / ``sgemm_gflops``), the speedup we would
  get if everything but the LSTM took no time and the LSTM ran at the matrix-product rate;
- ``ceiling_peer_work``: the same with Resemblyzer's number of windows instead of ours.

A ``ceiling_peer_work`` below 2 means that no float32 implementation of this network doing
Resemblyzer's own work reaches 2x Resemblyzer on that case. ``bfloat16`` gives the encoder's
time with the network in bfloat16 and the smallest cosine between its utterance embeddings and
the float32 ones (CPUs with native bfloat16 only).

Writes ``benchmarks/results/voice_ceiling_cpu.json``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as speed.py: Resemblyzer's librosa calls

import argparse
import copy
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import ResemblyzerPeer  # noqa: E402
from speed import REPO, interleave, machine, voice_clips  # noqa: E402

from verify.voice.frontend import prepare_speech  # noqa: E402
from verify.voice.ge2e import PARTIAL_FRAMES, TorchSpeakerEncoder, embed_utterances, partial_windows  # noqa: E402
from verify.voice.pipeline import VoicePipeline  # noqa: E402

CLIP_SECONDS = (1, 3, 10)
BATCH = 16
SGEMM_SIDE = 2048


def window_flops(encoder: nn.Module) -> int:
    """Float32 operations of ``encoder`` on one partial window, a multiply-add counting 2: every
    LSTM weight is used once per frame, the projection once per window (biases and gates ignored)."""
    lstm_weights = sum(weight.numel() for name, weight in encoder.lstm.named_parameters() if name.startswith("weight"))
    return 2 * (PARTIAL_FRAMES * lstm_weights + encoder.linear.weight.numel())


def sgemm_gflops(runs: int) -> float:
    """Median rate of a float32 ``SGEMM_SIDE``-square matrix product on torch's threads."""
    a, b = torch.randn(SGEMM_SIDE, SGEMM_SIDE), torch.randn(SGEMM_SIDE, SGEMM_SIDE)
    seconds = np.median(interleave({"sgemm": lambda: a @ b}, runs, warmup=2)["sgemm"])
    return 2 * SGEMM_SIDE**3 / seconds / 1e9


def windows_of(lstm: TorchSpeakerEncoder, clips: list[np.ndarray]) -> torch.Tensor:
    """Every partial window of the prepared ``clips``: the ``(P, 160, 40)`` batch the encoder gets."""
    return partial_windows(lstm.features, [torch.from_numpy(clip) for clip in clips])[0]


def prepared(voice: VoicePipeline, clips: list[np.ndarray]) -> list[np.ndarray]:
    """The speech the pipeline embeds of each 16 kHz clip (its VAD and level)."""
    return [prepare_speech(clip, 16_000, voice.config, voice.vad).samples for clip in clips]


class Bfloat16Encoder(nn.Module):
    """The encoder with its weights in bfloat16, taking and returning float32."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = copy.deepcopy(encoder).to(torch.bfloat16)

    def forward(self, partials: torch.Tensor) -> torch.Tensor:
        return self.encoder(partials.to(torch.bfloat16)).float()


def bench_case(voice: VoicePipeline, lstm: TorchSpeakerEncoder, peer: ResemblyzerPeer, clips: list[np.ndarray],
               runs: int, sgemm: float) -> dict:
    """The roofline figures of one case: ``clips`` embedded in one call (ours) or a loop (Resemblyzer);
    the LSTM's rate measured on its PyTorch module (the shipped path runs the same network in OpenVINO)."""
    windows = windows_of(lstm, prepared(voice, clips))
    peer_counts = [len(peer.encoder.compute_partial_slices(len(peer.preprocess(clip, source_sr=16_000)), 1.3, 0.75)[0])
                   for clip in clips]
    flop, peer_flop = (count * window_flops(lstm.encoder) for count in (len(windows), sum(peer_counts)))
    with torch.inference_mode():
        times = interleave({
            "ours": lambda: voice.embed_many([(clip, 16_000) for clip in clips]),
            "resemblyzer": lambda: [peer.embed(clip, 16_000) for clip in clips],
            "ours_lstm": lambda: lstm.encoder(windows),
            "resemblyzer_lstm": lambda: [peer.encoder(windows[:count]) for count in peer_counts],
        }, runs, warmup=1)
    ms = {name: 1000 * float(np.median(value)) for name, value in times.items()}
    return {
        "windows": len(windows),
        "resemblyzer_windows": sum(peer_counts),
        "lstm_gflop": round(flop / 1e9, 3),
        "ours_ms": round(ms["ours"], 2),
        "resemblyzer_ms": round(ms["resemblyzer"], 2),
        "speedup": round(ms["resemblyzer"] / ms["ours"], 2),
        "ours_lstm_ms": round(ms["ours_lstm"], 2),
        "lstm_gflops": round(flop / ms["ours_lstm"] / 1e6, 1),
        "lstm_share_of_sgemm_rate": round(flop / ms["ours_lstm"] / 1e6 / sgemm, 2),
        "resemblyzer_lstm_ms": round(ms["resemblyzer_lstm"], 2),
        "resemblyzer_lstm_gflops": round(peer_flop / ms["resemblyzer_lstm"] / 1e6, 1),
        "ceiling": round(ms["resemblyzer"] / (1000 * flop / 1e9 / sgemm), 2),
        "ceiling_peer_work": round(ms["resemblyzer"] / (1000 * peer_flop / 1e9 / sgemm), 2),
    }


def bench_bfloat16(voice: VoicePipeline, lstm: TorchSpeakerEncoder, clips: list[np.ndarray], runs: int) -> dict:
    """Encoder time in bfloat16 against float32 on the windows of ``clips``, and the embedding drift."""
    speech = prepared(voice, clips)
    waveforms = [torch.from_numpy(clip) for clip in speech]
    low = Bfloat16Encoder(lstm.encoder)
    windows = windows_of(lstm, speech[:1])
    with torch.inference_mode():
        times = interleave({"float32": lambda: lstm.encoder(windows), "bfloat16": lambda: low(windows)}, runs, warmup=2)
        exact = embed_utterances(lstm.encoder, lstm.features, waveforms)
        rounded = embed_utterances(low, lstm.features, waveforms)
    ms = {name: 1000 * float(np.median(value)) for name, value in times.items()}
    return {"one_clip_windows": len(windows), "float32_ms": round(ms["float32"], 2), "bfloat16_ms": round(ms["bfloat16"], 2),
            "encoder_speedup": round(ms["float32"] / ms["bfloat16"], 2),
            "min_cosine_to_float32": round(float((exact * rounded).sum(1).min()), 5)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: one per core)")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "voice_ceiling_cpu.json")
    args = parser.parse_args()
    voice = VoicePipeline(device="cpu", cpu_threads=args.threads)
    lstm = TorchSpeakerEncoder(voice.device, args.threads)
    peer = ResemblyzerPeer(voice.device.torch())
    sgemm = sgemm_gflops(args.runs)
    report: dict = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": machine(),
                    "sgemm_gflops": round(sgemm, 1), "cases": {}}
    for seconds in CLIP_SECONDS:
        clips = voice_clips(seconds, BATCH)
        for name, chosen in ((f"{seconds}s_single", clips[:1]), (f"{seconds}s_batch{BATCH}", clips)):
            report["cases"][name] = bench_case(voice, lstm, peer, chosen, args.runs, sgemm)
            print(name, json.dumps(report["cases"][name]), flush=True)
    if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        report["bfloat16"] = bench_bfloat16(voice, lstm, voice_clips(3, BATCH), args.runs)
        print("bfloat16", json.dumps(report["bfloat16"]), flush=True)
    report["sgemm_gflops_after"] = round(sgemm_gflops(args.runs), 1)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"sgemm {report['sgemm_gflops']} -> {report['sgemm_gflops_after']} GFLOP/s; wrote {args.out}")


if __name__ == "__main__":
    main()
