"""The CPU path, from loading both pipelines to embedding a face and a voice, imports no torch."""

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
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision", "torchaudio", "facenet_pytorch")
                        or m in ("verify.torch_runtime", "verify.face.mtcnn_torch", "verify.voice.ge2e"))))
"""


def test_cpu_pipelines_embed_without_importing_torch() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
