"""The CPU path, from loading both pipelines to embedding a face and a voice, imports no torch (nor
FFmpeg's PyAV for a FLAC); a voice enrollment, with its telephone-band copy, no SciPy either."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES = REPO_ROOT / "assets" / "samples"
PROBE = f"""
import json, sys
from verify.models import load_pipeline
load_pipeline("face", "cpu", cpu_threads=1).embed({str(SAMPLES / "faces" / "Andy_Roddick" / "0.jpg")!r})
load_pipeline("voice", "cpu", cpu_threads=1).embed({str(SAMPLES / "voices" / "103" / "0.flac")!r})
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision", "torchaudio", "facenet_pytorch", "av")
                        or m in ("verify.torch_runtime", "verify.face.mtcnn_torch", "verify.voice.ge2e"))))
"""


def test_cpu_pipelines_embed_without_importing_torch() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


ENROLL = f"""
import sys
from enrollment import TemplateStore
from enrollment.enroll import enroll
from verify.models import load_pipeline, shipped_verifier
with TemplateStore(sys.argv[1]) as store:
    made = enroll(store, shipped_verifier(load_pipeline("voice", "cpu", cpu_threads=1)), "x",
                  {str(SAMPLES / "voices" / "103" / "0.flac")!r}).template
print(made.narrowband is not None, any(m.split(".")[0] in ("scipy", "torch") for m in sys.modules))
"""


def test_a_voice_enrollment_makes_its_telephone_band_copy_without_scipy_or_torch(tmp_path) -> None:
    done = subprocess.run([sys.executable, "-c", ENROLL, str(tmp_path / "s.db")], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}, check=True)
    assert done.stdout.strip().splitlines()[-1] == "True False"
