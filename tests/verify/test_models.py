"""The model registry: one spec per modality, the only code naming pipeline classes."""

from __future__ import annotations

import sys
import subprocess
from pathlib import Path

import pytest

from verify.config import MODALITIES
from verify.errors import ConfigError
from verify.models import SHIPPED, load_pipeline, model_scorer, model_spec

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("modality", MODALITIES)
def test_each_spec_names_its_pipeline_and_calibration(modality):
    spec = model_spec(modality)
    assert spec.modality == modality and spec.pipeline_class.modality == modality
    assert (spec.model_id, spec.version) == (spec.pipeline_class.model_id, spec.pipeline_class.model_version)
    assert spec.calibration_path().is_file() and spec.cohort_path().is_file()
    assert model_scorer(modality).calibration.model_id == spec.model_id
    assert model_scorer(modality).cohort.model_id == spec.model_id


def test_registry_covers_every_modality_and_refuses_others():
    assert tuple(SHIPPED) == MODALITIES
    with pytest.raises(ConfigError, match="unknown modality 'iris'"):
        model_spec("iris")
    with pytest.raises(ConfigError, match="no per-user adaptation ships for voice"):
        model_spec("voice").load_adapter()


def test_load_pipeline_builds_the_spec_pipeline(face_pipeline):
    assert type(load_pipeline("face", "cpu")) is type(face_pipeline)


def test_reading_a_spec_loads_no_torch():
    probe = "import sys; import verify.models as m; m.model_scorer('face'); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr


def test_no_module_outside_the_registry_names_a_pipeline_class():
    names = ("FacePipeline", "VoicePipeline")
    allowed = {"verify/models.py", "verify/face/pipeline.py", "verify/voice/pipeline.py"}
    naming = [str(path.relative_to(REPO_ROOT)) for package in ("verify", "enrollment", "verify_app", "verify_cli", "training")
              for path in (REPO_ROOT / package).rglob("*.py")
              if str(path.relative_to(REPO_ROOT)) not in allowed and any(n in path.read_text() for n in names)]
    assert naming == []
