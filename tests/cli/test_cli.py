"""The command line through ``verify_cli.main.main([...])`` (in process) and ``python -m verify`` (subprocess)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from enrollment import TemplateStore
from verify.models import model_scorer, model_spec
from verify_cli.main import main

REPO_ROOT = Path(__file__).resolve().parents[2]
FACE_MODEL_ID = model_spec("face").model_id
SAMPLES = REPO_ROOT / "assets" / "samples"
FACES, VOICES = SAMPLES / "faces", SAMPLES / "voices"
ANDY, ANGELA, ANTONIO = FACES / "Andy_Roddick", FACES / "Angela_Bassett", FACES / "Antonio_Banderas"
FACE_MEDIUM = model_scorer("face").operating_point("medium").threshold  # calibrated LLR, FAR 1e-3
FACE_LOW = model_scorer("face").operating_point("low").threshold  # FAR 1e-2
DECISION = r"score -?\d+\.\d{3}  threshold -?\d+\.\d{3}  llr -?\d+\.\d{2}"

pytestmark = pytest.mark.usefixtures("torch_threads")


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "x.db"


@pytest.fixture
def cli(store: Path, capsys: pytest.CaptureFixture):
    """Run ``verify --store STORE --device cpu ARGS...``; returns (exit status, stdout, stderr)."""

    def run(*args: str | Path, options: tuple[str, ...] = ()) -> tuple[int, str, str]:
        code = main(["--store", str(store), "--device", "cpu", *options, *map(str, args)])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def corrupt_jpeg(tmp_path: Path) -> Path:
    path = tmp_path / "corrupt.jpg"
    path.write_bytes((ANDY / "0.jpg").read_bytes()[:3000])  # truncated
    return path


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


# --- enroll / list / check / delete -----------------------------------------------------------
def test_enroll_list_check_delete(cli) -> None:
    code, out, _ = cli("enroll", "Andy", "--face", ANDY / "0.jpg")
    assert code == 0
    assert out.strip() == f"enrolled 'Andy' (face, 1 sample(s), model {FACE_MODEL_ID})"
    code, out, _ = cli("enroll", "Andy", "--face", ANDY / "1.jpg")
    assert code == 0 and "2 sample(s)" in out

    code, out, _ = cli("list")
    assert code == 0
    assert re.fullmatch(rf"Andy\tface\t2 sample\(s\)\t{FACE_MODEL_ID}\t\d{{4}}-\d\d-\d\dT\S+\n", out)
    code, out, _ = cli("list", "--json")
    (row,) = json.loads(out)
    assert row["identity"] == "Andy" and row["modality"] == "face" and row["samples"] == 2
    assert row["model"] == FACE_MODEL_ID and len(row["model_version"]) == 12
    assert set(row) == {"identity", "modality", "samples", "model", "model_version", "enrolled", "updated",
                        "phone_line_copy"}
    assert row["phone_line_copy"] is None  # a face has none to keep

    code, out, err = cli("check", "Andy", "--face", ANDY / "2.jpg")
    assert code == 0, err
    assert re.fullmatch(rf"accepted  {DECISION} \(needs {FACE_MEDIUM:.2f}\)\n", out), out
    code, out, _ = cli("check", "Andy", "--face", ANGELA / "1.jpg")
    assert code == 1
    assert re.fullmatch(rf"rejected  {DECISION} \(needs {FACE_MEDIUM:.2f}\)  \(score below threshold\)\n", out), out
    code, out, _ = cli("check", "Andy", "--face", ANDY / "2.jpg", options=("--level", "low"))
    assert code == 1 and f"(needs {FACE_LOW:.2f})" in out  # the same file again is a replay
    assert "(replay suspected: a byte-identical copy of a recently accepted sample)" in out

    code, out, _ = cli("delete", "Andy")
    assert code == 0 and out.strip() == "deleted 1 template(s) of 'Andy'"
    code, out, _ = cli("list")
    assert code == 0 and out.strip() == "no identities enrolled"
    code, out, _ = cli("list", "--json")
    assert json.loads(out) == []


def test_list_says_which_voices_lack_their_telephone_band_copy(cli, store: Path, voice_pipeline) -> None:
    code, _, err = cli("enroll", "Ann", "--voice", VOICES / "103" / "0.flac")
    assert code == 0, err
    with TemplateStore(store) as opened:  # as enrolled before voices kept the copy
        opened.add_sample("Bob", "voice", voice_pipeline.embed(VOICES / "1081" / "0.flac").vector,
                          voice_pipeline.model_id, voice_pipeline.model_version)

    code, out, _ = cli("list", "--json")
    assert {row["identity"]: row["phone_line_copy"] for row in json.loads(out)} == {"Ann": True, "Bob": False}
    code, out, _ = cli("list")
    ann, bob = out.splitlines()
    assert "telephone-band" not in ann and bob.endswith("\t(no telephone-band copy: enroll again for checks over a phone line)")


def test_checking_the_very_file_used_to_enroll_answers_replay(cli, tmp_path: Path) -> None:
    assert cli("enroll", "Andy", "--face", ANDY / "0.jpg")[0] == 0
    code, out, _ = cli("check", "Andy", "--face", ANDY / "0.jpg")
    assert code == 1 and out.startswith("rejected  score ")  # the score would accept: the replay rule refuses
    assert "replay suspected: a byte-identical copy of an enrollment sample" in out
    copy = tmp_path / "copy.png"  # the same photo, re-encoded: other bytes, a near-identical embedding
    copy.write_bytes(cv2.imencode(".png", cv2.imread(str(ANDY / "0.jpg")))[1].tobytes())
    code, out, _ = cli("check", "Andy", "--face", copy)
    assert code == 1 and "replay suspected: a near-identical copy of an enrollment sample" in out
    code, out, _ = cli("audit", "--name", "Andy", "--json")
    assert [a["detail"][:16] for a in json.loads(out)] == ["replay suspected"] * 2
    assert cli("enroll", "reader", "--voice", VOICES / "103" / "0.flac")[0] == 0
    code, out, _ = cli("check", "reader", "--voice", VOICES / "103" / "0.flac")
    assert code == 1 and "replay suspected" in out


def test_voice_enroll_and_check(cli) -> None:
    assert cli("enroll", "reader", "--voice", VOICES / "103" / "0.flac")[0] == 0
    code, out, _ = cli("check", "reader", "--voice", VOICES / "103" / "1.flac")
    assert code == 0 and out.startswith("accepted  score ")
    code, out, _ = cli("check", "reader", "--voice", VOICES / "1081" / "1.flac")
    assert code == 1 and out.startswith("rejected  score ")
    assert cli("delete", "reader", "--modality", "face")[0] == 2  # only a voice template exists
    code, out, _ = cli("delete", "reader", "--modality", "voice")
    assert code == 0 and "deleted 1 template(s)" in out


def test_a_voice_recorded_on_another_microphone_is_accepted_either_way(cli, tmp_path: Path) -> None:
    """Its bass cut by a 2nd-order 200 Hz high-pass, as a headset or a phone records what a desk
    microphone keeps: both checks were "rejected" (LLR 0.96 and 0.47) before the low-cut copies of
    template and probe (:mod:`verify.low_cut`)."""
    import soundfile
    from scipy import signal

    sections = signal.butter(2, 200, btype="highpass", fs=16_000, output="sos")
    for name in ("0", "2"):
        samples, rate = soundfile.read(VOICES / "1081" / f"{name}.flac", dtype="float32")
        soundfile.write(tmp_path / f"headset_{name}.wav", signal.sosfilt(sections, samples).astype("float32"), rate)
    assert cli("enroll", "desk", "--voice", VOICES / "1081" / "0.flac")[0] == 0
    code, out, _ = cli("check", "desk", "--voice", tmp_path / "headset_2.wav")
    assert code == 0 and out.startswith("accepted  score ")
    assert cli("enroll", "headset", "--voice", tmp_path / "headset_2.wav")[0] == 0
    code, out, _ = cli("check", "headset", "--voice", VOICES / "1081" / "1.flac")
    assert code == 0 and out.startswith("accepted  score ")


def _three_samples_later(samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    later = samples.copy()
    later[3:], later[:3] = samples[:-3], 0
    return later


def _under_noise_as_loud(samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return samples + samples.std() * rng.standard_normal(len(samples)).astype(samples.dtype)


@pytest.mark.parametrize("speaker, second_channel", [("103", _three_samples_later), ("1081", _under_noise_as_loud)],
                         ids=["3 samples later", "noisy"])
def test_a_stereo_recording_is_accepted_whatever_its_second_channel(cli, tmp_path: Path, speaker, second_channel) -> None:
    """The second channel hears the voice 3 samples (6 cm) later, or under noise as loud as it (a
    covered microphone): the plain mean of the channels, a comb filter, and the mean with the noisy
    channel sent these genuine checks to "retry"; aligned first, and the clear channel alone, they
    are accepted."""
    import soundfile

    samples, rate = soundfile.read(VOICES / speaker / "1.flac", dtype="float32")
    channels = np.stack([samples, second_channel(samples, np.random.default_rng(0))], axis=1)
    soundfile.write(tmp_path / "stereo.wav", channels, rate, subtype="FLOAT")
    assert cli("enroll", "reader", "--voice", VOICES / speaker / "0.flac")[0] == 0
    code, out, _ = cli("check", "reader", "--voice", tmp_path / "stereo.wav")
    assert code == 0 and out.startswith("accepted  score ")


@pytest.mark.parametrize("kind, reason", [("room", "too much echo"), ("phone", "the sound is band-limited")])
def test_voice_quality_reasons_reach_the_command_line(cli, tmp_path: Path, kind, reason) -> None:
    import soundfile

    from verify.voice import degrade

    samples, rate = soundfile.read(VOICES / "103" / "0.flac", dtype="float32")
    rng = np.random.default_rng(0)
    changed = degrade.reverberate(samples, rng, (0.8, 0.8)) if kind == "room" else degrade.telephone(samples, rng)
    clip = tmp_path / f"{kind}.wav"
    soundfile.write(clip, changed, rate)
    code, _, err = cli("enroll", "reader", "--voice", clip)
    assert code == 2 and f"cannot enroll from this sample: {reason}" in one_error_line(err)


# --- errors: exit 2, one line, no traceback ----------------------------------------------------
@pytest.fixture
def enrolled(cli) -> None:
    assert cli("enroll", "Andy", "--face", ANDY / "0.jpg")[0] == 0


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda tmp: ["enroll", "Bob", "--face", tmp / "missing.jpg"], r"missing\.jpg: no such file"),
        (lambda tmp: ["check", "Andy", "--face", tmp / "missing.jpg"], r"missing\.jpg: no such file"),
        (lambda tmp: ["check", "Andy", "--face", tmp / "corrupt.jpg"], r"corrupt\.jpg is truncated or corrupt"),
        (lambda tmp: ["enroll", "Bob", "--face", tmp / "corrupt.jpg"], r"corrupt\.jpg is truncated or corrupt"),
        (lambda tmp: ["check", "Nobody", "--face", ANDY / "1.jpg"], r"no face template enrolled for 'Nobody'"),
        (lambda tmp: ["delete", "Nobody"], r"no template enrolled for 'Nobody'"),
        (lambda tmp: ["enroll", "Bob", "--face", tmp / "notes.txt"], r"notes\.txt is not an image in a supported format"),
        (lambda tmp: ["enroll", "Bob", "--voice", ANDY / "0.jpg"], r"0\.jpg is not audio in a supported format"),
        (lambda tmp: ["enroll", "", "--face", ANDY / "0.jpg"], r"identity '' is empty"),
        (lambda tmp: ["check", "Andy", "--face", tmp], r"is a folder, not an? image file"),
    ],
    ids=["enroll-missing", "check-missing", "check-corrupt", "enroll-corrupt", "unknown-identity",
         "delete-unknown", "text-as-face", "image-as-voice", "empty-name", "folder-as-face"],
)
def test_errors_exit_2_with_one_line_and_no_traceback(cli, enrolled, corrupt_jpeg, tmp_path: Path, make_args, message) -> None:
    (tmp_path / "notes.txt").write_text("not a picture\n", encoding="utf-8")
    code, out, err = cli(*make_args(tmp_path))
    assert code == 2
    assert out == ""
    assert re.search(message, one_error_line(err)), err


def test_debug_shows_the_traceback(cli, enrolled, corrupt_jpeg) -> None:
    code, _, err = cli("check", "Andy", "--face", corrupt_jpeg, options=("--debug",))
    assert code == 2
    assert "Traceback (most recent call last)" in err and "DecodeError" in err
    assert err.strip().splitlines()[-1].startswith("error: ")


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "verify", "--store", str(tmp_path / "s.db"), "info"]  # as in `verify info | head -1`
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdout.close()  # gone before the first line
    _, err = process.communicate(timeout=120)
    assert process.returncode == 141
    assert err == ""


def test_enroll_refuses_a_blurry_face_unless_allowed(cli, tmp_path: Path) -> None:
    import cv2

    blurry = tmp_path / "blurry.png"
    image = cv2.imread(str(ANDY / "0.jpg"))
    cv2.imwrite(str(blurry), cv2.GaussianBlur(image, (0, 0), 4))
    code, _, err = cli("enroll", "Andy", "--face", blurry)
    assert code == 2 and "cannot enroll from this sample: face is blurry" in one_error_line(err)
    code, out, _ = cli("enroll", "Andy", "--face", blurry, "--allow-low-quality")
    assert code == 0 and "enrolled 'Andy'" in out


# --- batch ------------------------------------------------------------------------------------
@pytest.fixture
def batch_dir(tmp_path: Path, corrupt_jpeg: Path) -> Path:
    folder = tmp_path / "probes"
    (folder / "nested" / "deeper").mkdir(parents=True)
    shutil.copy(ANDY / "1.jpg", folder / "andy1.jpg")
    shutil.copy(ANDY / "2.jpg", folder / "nested" / "deeper" / "andy2.jpg")
    shutil.copy(ANGELA / "1.jpg", folder / "angela1.jpg")
    shutil.copy(ANTONIO / "1.jpg", folder / "nested" / "antonio1.jpg")
    shutil.copy(corrupt_jpeg, folder / "nested" / "broken.jpg")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # hidden: skipped
    return folder


def expected_batch(folder: Path) -> dict[str, str]:
    return {str(folder / "andy1.jpg"): "accepted", str(folder / "nested" / "deeper" / "andy2.jpg"): "accepted",
            str(folder / "angela1.jpg"): "rejected", str(folder / "nested" / "antonio1.jpg"): "rejected",
            str(folder / "nested" / "broken.jpg"): "error"}


def check_batch_rows(rows: list[dict], folder: Path) -> None:
    assert {row["path"]: row["decision"] for row in rows} == expected_batch(folder)
    assert len(rows) == 5
    for row in rows:
        if row["decision"] == "error":
            assert "truncated or corrupt" in row["reason"] and row["score"] == "" and row["threshold"] == ""
        else:
            score, threshold = float(row["score"]), float(row["threshold"])
            assert (score >= threshold) == (row["decision"] == "accepted")  # the normalised score this photo needed
            assert row["reason"] == ("" if row["decision"] == "accepted" else "score below threshold")


@pytest.mark.parametrize("suffix", ["csv", "json"])
def test_batch_writes_one_row_per_file(cli, enrolled, batch_dir: Path, tmp_path: Path, suffix: str) -> None:
    out_path = tmp_path / f"r.{suffix}"
    code, out, err = cli("batch", "Andy", batch_dir, "--out", out_path)  # modality inferred: face
    assert code == 0, err
    assert out == ""
    assert "2 accepted, 2 rejected, 0 retry, 1 error" in err
    text = out_path.read_text(encoding="utf-8")
    rows = json.loads(text) if suffix == "json" else list(csv.DictReader(io.StringIO(text)))
    check_batch_rows([{key: "" if value is None else value for key, value in row.items()} for row in rows], batch_dir)


def test_batch_writes_csv_to_stdout_by_default(cli, enrolled, batch_dir: Path) -> None:
    code, out, _ = cli("batch", "Andy", batch_dir, "--modality", "face")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["path", "decision", "score", "threshold", "reason"]
    check_batch_rows(rows, batch_dir)


def test_batch_infers_the_voice_modality(cli, tmp_path: Path) -> None:
    assert cli("enroll", "reader", "--voice", VOICES / "1116" / "0.flac")[0] == 0
    folder = tmp_path / "clips"
    folder.mkdir()
    for speaker, name in (("1116", "1"), ("1116", "2"), ("103", "1")):
        shutil.copy(VOICES / speaker / f"{name}.flac", folder / f"{speaker}_{name}.flac")
    code, out, err = cli("batch", "reader", folder)
    assert code == 0, err
    decisions = {Path(row["path"]).name: row["decision"] for row in csv.DictReader(io.StringIO(out))}
    assert decisions == {"1116_1.flac": "accepted", "1116_2.flac": "accepted", "103_1.flac": "rejected"}


def test_batch_errors(cli, enrolled, batch_dir: Path, tmp_path: Path) -> None:
    code, _, err = cli("batch", "Nobody", batch_dir)
    assert code == 2 and "no template enrolled for 'Nobody'" in one_error_line(err)
    code, _, err = cli("batch", "Andy", tmp_path / "absent")
    assert code == 2 and "is not a folder" in one_error_line(err)
    assert cli("enroll", "Andy", "--voice", VOICES / "103" / "0.flac")[0] == 0
    code, _, err = cli("batch", "Andy", batch_dir)
    assert code == 2 and "'Andy' has face and voice templates: choose one with --modality" in one_error_line(err)
    code, _, err = cli("batch", "Andy", batch_dir, "--modality", "face", "--out", tmp_path / "r.txt")
    assert code == 2 and "--out must end in .csv, .json or .parquet" in err and "Traceback" not in err


# --- evaluate ---------------------------------------------------------------------------------
def write_pairs(path: Path, pairs: list[tuple[str, str, int]]) -> Path:
    lines = ["enroll_path,probe_path,same"] + [f"{a},{b},{same}" for a, b, same in pairs]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_evaluate_prints_and_writes_the_metrics(cli, tmp_path: Path) -> None:
    files = [f"faces/{person.name}/{i}.jpg" for person in (ANDY, ANGELA, ANTONIO) for i in range(3)]
    pairs = [(a, b, int(a.split("/")[1] == b.split("/")[1])) for k, a in enumerate(files) for b in files[k + 1 :]]
    pairs_file = write_pairs(tmp_path / "pairs.csv", pairs)
    report, plot = tmp_path / "report.json", tmp_path / "det.png"
    code, out, err = cli("evaluate", "--pairs", pairs_file, "--root", SAMPLES, "--modality", "face",
                         "--json", report, "--plot", plot)
    assert code == 0, err
    assert f"pairs 36 (genuine 9, impostor 27); model {FACE_MODEL_ID}" in out
    assert "EER 0.00% (threshold " in out
    assert "TAR at FAR 1%: 100.00%   TAR at FAR 0.1%: 100.00%" in out
    assert "minDCF (P_target 0.01): 0.0000" in out
    assert "failed pairs 0 (genuine 0); failed files 0" in out
    figures = json.loads(report.read_text(encoding="utf-8"))
    assert figures["model_id"] == FACE_MODEL_ID
    assert (figures["pairs"], figures["genuine"], figures["impostor"], figures["failed_pairs"]) == (36, 9, 27, 0)
    assert figures["eer"] == 0.0 and figures["tar_at_far_1e_2"] == 1.0 and figures["min_dcf"] == 0.0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_counts_unreadable_files_as_failed_pairs(cli, tmp_path: Path, corrupt_jpeg: Path) -> None:
    root = tmp_path / "root"
    for person in (ANDY, ANGELA):
        shutil.copytree(person, root / person.name)
    shutil.copy(corrupt_jpeg, root / "broken.jpg")
    pairs_file = write_pairs(tmp_path / "pairs.csv", [
        ("Andy_Roddick/0.jpg", "Andy_Roddick/1.jpg", 1),
        ("Andy_Roddick/0.jpg", "Andy_Roddick/2.jpg", 1),
        ("Andy_Roddick/0.jpg", "broken.jpg", 1),  # corrupt: a failed genuine pair
        ("Andy_Roddick/0.jpg", "Angela_Bassett/0.jpg", 0),
        ("Andy_Roddick/1.jpg", "Angela_Bassett/1.jpg", 0),
        ("Nobody/0.jpg", "Angela_Bassett/0.jpg", 0),  # missing: a failed impostor pair
    ])
    report = tmp_path / "report.json"
    code, out, err = cli("evaluate", "--pairs", pairs_file, "--root", root, "--modality", "face", "--json", report)
    assert code == 0, err
    assert "pairs 6 (genuine 3, impostor 3)" in out
    assert "failed pairs 2 (genuine 1); failed files {'DecodeError': 2}" in out
    figures = json.loads(report.read_text(encoding="utf-8"))
    assert (figures["pairs"], figures["failed_pairs"], figures["failed_genuine"]) == (6, 2, 1)
    assert figures["failed_files"] == {"DecodeError": 2}
    # the failed genuine pair is rejected at every threshold, not dropped
    assert figures["tar_at_far_1e_2"] == pytest.approx(2 / 3)
    assert figures["eer"] > 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("enroll_path,probe_path\na,b\n", r"lacks column\(s\) same"),
        ("enroll_path,probe_path,same\na,b,yes\n", r":2: 'same' must be 1 or 0, got 'yes'"),
        ("enroll_path,probe_path,same\n", r"holds no pairs"),
        (None, r"cannot read pairs file"),
    ],
    ids=["missing-column", "bad-label", "empty", "no-file"],
)
def test_evaluate_rejects_bad_pairs_files(cli, tmp_path: Path, content: str | None, message: str) -> None:
    pairs_file = tmp_path / "pairs.csv"
    if content is not None:
        pairs_file.write_text(content, encoding="utf-8")
    code, _, err = cli("evaluate", "--pairs", pairs_file, "--root", SAMPLES, "--modality", "face")
    assert code == 2 and re.search(message, one_error_line(err))


# --- demo and info ----------------------------------------------------------------------------
def demo_rows(out: str) -> list[list[str]]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:4] == ["probe", "claimed", "truth", "decision"])
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


@pytest.mark.parametrize("modality", ["voice", "face"])
def test_demo_accepts_every_same_row_and_rejects_every_other_row(cli, modality: str) -> None:
    code, out, err = cli("demo", "--modality", modality)
    assert code == 0, err
    assert f"{modality}: enrolled " in out and "level medium" in out
    rows = demo_rows(out)
    assert len(rows) == 18  # 3 people x 2 probes x 3 claims
    for probe, claimed, truth, decision, score in rows:
        assert truth in ("same", "other") and math.isfinite(float(score))
        assert decision == ("accepted" if truth == "same" else "rejected"), (probe, claimed, truth, decision, score)
    assert sum(row[2] == "same" for row in rows) == 6


def test_info_lists_models_levels_and_store(cli, store: Path) -> None:
    code, out, _ = cli("info")
    assert code == 0
    assert f"face: {model_spec('face').model_id}" in out and "voice: ge2e-robust" in out
    assert f"accept LLR >= {FACE_MEDIUM:.2f}" in out
    route = model_spec("voice").scorer.narrowband
    assert f"phone line (band-limited, nearer the template's telephone-band copy): accept LLR >= " \
           f"{route.thresholds.operating_point('low').threshold:.2f}" in out
    compensation = model_spec("voice").scorer.compensation
    assert f"noisy / echoing probes compensated ({compensation.compensation_id}): snr_db 20 -> 8, decay_db -15 -> -7" in out
    low_cut = model_spec("voice").scorer.low_cut
    assert f"another microphone (low-cut copies of template and probe, 150 Hz): a copy's LLR less {low_cut.penalty:g}" in out
    assert f"store: {store}" in out


# --- python -m verify -------------------------------------------------------------------------
def run_module(*args: str | Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "verify", *map(str, args)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_module_check_of_a_corrupt_file_exits_2_without_traceback(cli, enrolled, store: Path, corrupt_jpeg: Path) -> None:
    result = run_module("--store", store, "--device", "cpu", "check", "Andy", "--face", corrupt_jpeg)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert "truncated or corrupt" in one_error_line(result.stderr)


def test_module_help() -> None:
    result = run_module("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: verify")
    for command in ("enroll", "list", "delete", "check", "batch", "evaluate", "demo", "info"):
        assert command in result.stdout


# --- opt-in per-user adaptation ---------------------------------------------------------------
@pytest.mark.parametrize("modality, sample", [("face", ANGELA / "0.jpg"), ("voice", VOICES / "103" / "0.flac")])
def test_adapt_is_refused_because_no_adaptation_ships(cli, modality, sample):
    code, _, err = cli("enroll", "Someone", f"--{modality}", sample, options=("--adapt",))

    assert code == 2
    assert f"no per-user adaptation ships for {modality}" in one_error_line(err)
    assert cli("list")[1] == "no identities enrolled\n"
