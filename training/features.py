"""Backbone embeddings of whole datasets, computed once with the shipped pipeline and cached.

One dataset folder holds one sub-folder per identity (``<data_root>/<folder>/<identity>/<file>``).
:func:`load_features` embeds every file with :func:`verify.models.load_pipeline`, skips files
that fail (no face, no speech), and caches the result as
``<cache_dir>/<model_id>-<model_version>-<dataset>.npz``. The same pass stores the raw network
inputs used by the from-scratch baselines (64x64 greyscale aligned faces, log-mel spectrograms),
read back with :func:`load_raw_inputs`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from verify.errors import ConfigError, VerifyError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache" / "features"

DATASETS: dict[str, tuple[str, str]] = {  # name -> (modality, folder under the data root)
    "lfw_gray": ("face", "faces/lfw_gray"),
    "orl_att": ("face", "faces/orl_att"),
    "librispeech": ("voice", "voices/librispeech_tc100_segments"),
    "fsdd": ("voice", "voices/fsdd"),
}
SAMPLE_SUFFIXES = {".jpg", ".jpeg", ".png", ".pgm", ".bmp", ".flac", ".wav", ".ogg", ".mp3"}
FACE_INPUT_SIZE = 64  # pixels, side of the greyscale aligned crop kept for from-scratch baselines
VOICE_INPUT_FRAMES = 400  # 10 ms log-mel frames kept per clip (4 s), zero padded
VOICE_MEL_BANDS = 40
EMBED_CHUNK = 64  # files per embed_many call

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureSet:
    """Backbone embeddings of the files of one dataset.

    Attributes:
        vectors: ``(N, D)`` float32 L2-normalised embeddings.
        identities: ``(N,)`` identity labels (str).
        paths: the N files, relative to the data root.
    """

    vectors: np.ndarray
    identities: np.ndarray
    paths: list[str]

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices: np.ndarray) -> FeatureSet:
        """The rows ``indices``, in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        return FeatureSet(self.vectors[indices], self.identities[indices], [self.paths[i] for i in indices])


@dataclass(frozen=True)
class RawInputs:
    """Front-end outputs before the backbone, for the from-scratch baselines.

    Attributes:
        inputs: faces ``(N, 64, 64)`` uint8 greyscale aligned crops; voices ``(N, 40, 400)``
            float16 log-mel frames (10 ms hop), zero padded after ``lengths`` frames.
        lengths: ``(N,)`` valid frames (voices) or 64 (faces).
        identities, paths: as in :class:`FeatureSet`, same order.
    """

    inputs: np.ndarray
    lengths: np.ndarray
    identities: np.ndarray
    paths: list[str]


def dataset_modality(dataset: str) -> str:
    """``"face"`` or ``"voice"`` for a dataset name; raises :class:`ConfigError` for unknown names."""
    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}: choose one of {sorted(DATASETS)}")
    return DATASETS[dataset][0]


def cache_path(dataset: str, cache_dir: Path = DEFAULT_CACHE_DIR, suffix: str = "") -> Path:
    """``<cache_dir>/<model_id>-<model_version>-<dataset><suffix>.npz`` of the shipped model."""
    model_id, version = backbone_key(dataset_modality(dataset))
    return Path(cache_dir) / f"{model_id}-{version}-{dataset}{suffix}.npz"


def load_features(
    dataset: str,
    data_root: Path,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    device: str = "auto",
) -> FeatureSet:
    """Embeddings of every usable file of ``dataset``, from the cache or computed (then cached)."""
    path = cache_path(dataset, cache_dir)
    if not path.exists():
        _build_cache(dataset, Path(data_root), Path(cache_dir), device)
    with np.load(path, allow_pickle=False) as stored:
        return FeatureSet(stored["vectors"], stored["identities"].astype(str), [str(p) for p in stored["paths"]])


def load_raw_inputs(
    dataset: str,
    data_root: Path,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    device: str = "auto",
) -> RawInputs:
    """Front-end inputs (aligned faces or log-mels) of the files :func:`load_features` keeps."""
    path = cache_path(dataset, cache_dir, "-inputs")
    if not path.exists():
        _build_cache(dataset, Path(data_root), Path(cache_dir), device)
    with np.load(path, allow_pickle=False) as stored:
        return RawInputs(stored["inputs"], stored["lengths"], stored["identities"].astype(str),
                         [str(p) for p in stored["paths"]])


def list_dataset_files(dataset: str, data_root: Path) -> list[tuple[str, Path]]:
    """``(identity, file)`` of every sample file of ``dataset``, sorted by identity then name."""
    dataset_modality(dataset)
    folder = Path(data_root) / DATASETS[dataset][1]
    if not folder.is_dir():
        raise ConfigError(f"dataset folder {folder} does not exist; set --data to the shared data root")
    return [
        (person.name, path)
        for person in sorted(p for p in folder.iterdir() if p.is_dir())
        for path in sorted(person.iterdir())
        if path.is_file() and path.suffix.lower() in SAMPLE_SUFFIXES
    ]


def backbone_key(modality: str) -> tuple[str, str]:
    """``(model_id, model_version)`` of the shipped pipeline of a modality (no weights loaded)."""
    from verify.models import model_spec

    spec = model_spec(modality)
    return spec.model_id, spec.version


def _build_cache(dataset: str, data_root: Path, cache_dir: Path, device: str) -> None:
    """Embed every file of ``dataset``; write the features and raw-input caches."""
    from verify.models import load_pipeline

    modality = dataset_modality(dataset)
    files = list_dataset_files(dataset, data_root)
    pipeline = load_pipeline(modality, device)
    vectors, inputs, lengths, identities, paths, failures = [], [], [], [], [], 0
    for start in tqdm(range(0, len(files), EMBED_CHUNK), desc=f"embedding {dataset}", unit="chunk"):
        chunk = files[start : start + EMBED_CHUNK]
        for (identity, file), result in zip(chunk, pipeline.embed_many([path for _, path in chunk])):
            if isinstance(result, VerifyError):
                failures += 1
                log.info("skipped %s: %s", file, result)
                continue
            raw, length = _raw_input(modality, result.preview)
            vectors.append(result.vector)
            inputs.append(raw)
            lengths.append(length)
            identities.append(identity)
            paths.append(file.relative_to(data_root).as_posix())
    if not vectors:
        raise ConfigError(f"no file of dataset {dataset} under {data_root} could be embedded")
    log.info("%s: %d files embedded, %d skipped", dataset, len(vectors), failures)
    cache_dir.mkdir(parents=True, exist_ok=True)
    common = {"identities": np.array(identities), "paths": np.array(paths)}
    _save_atomic(cache_path(dataset, cache_dir), vectors=np.stack(vectors).astype(np.float32), **common)
    _save_atomic(cache_path(dataset, cache_dir, "-inputs"), inputs=np.stack(inputs),
                 lengths=np.array(lengths, dtype=np.int64), **common)


def _save_atomic(path: Path, **arrays: np.ndarray) -> None:
    partial = path.with_name(path.name + ".partial.npz")
    np.savez(partial, **arrays)
    partial.replace(path)


def _raw_input(modality: str, preview: np.ndarray) -> tuple[np.ndarray, int]:
    """64x64 greyscale crop of an aligned RGB face, or log-mel frames of trimmed 16 kHz speech."""
    if modality == "face":
        import cv2

        grey = cv2.cvtColor(np.ascontiguousarray(preview), cv2.COLOR_RGB2GRAY)
        return cv2.resize(grey, (FACE_INPUT_SIZE, FACE_INPUT_SIZE), interpolation=cv2.INTER_AREA), FACE_INPUT_SIZE
    return log_mel(preview)


def log_mel(samples: np.ndarray) -> tuple[np.ndarray, int]:
    """``(40, 400)`` float16 log-mel frames of 16 kHz speech (zero padded) and the valid frame count."""
    import torchaudio

    transform = torchaudio.transforms.MelSpectrogram(
        sample_rate=16000, n_fft=400, hop_length=160, n_mels=VOICE_MEL_BANDS
    )
    with torch.inference_mode():
        mel = transform(torch.from_numpy(np.ascontiguousarray(samples, np.float32)))
    frames = torch.log(mel + 1e-6)
    frames = (frames - frames.mean(dim=1, keepdim=True))[:, :VOICE_INPUT_FRAMES]
    padded = np.zeros((VOICE_MEL_BANDS, VOICE_INPUT_FRAMES), dtype=np.float16)
    padded[:, : frames.shape[1]] = frames.numpy()
    return padded, int(frames.shape[1])
