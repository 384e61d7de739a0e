"""Face pipeline: decode -> detect (each detector) -> choose -> align (once per detector) -> quality
-> embed (each network, each alignment) -> one fused vector, batched.

Which detectors and networks take part is a :class:`~verify.config.FaceFusionConfig`. The shipped
one: YuNet chooses the face; MTCNN's last two stages (R-net, O-net) run on YuNet's box and give
MTCNN's landmarks, a second alignment, for a few milliseconds instead of MTCNN's whole pyramid;
face-reidentification-retail-0095 and SFace embed both alignments. ``python
benchmarks/face_variants.py`` measures every combination on people never used for calibration
(figures in ``assets/models/face-fusion-reid0095-sface.md``).

Choosing the face: the first detector of the configuration that finds any face picks the
largest, most central one (:func:`~verify.face.detect.choose_face`); each other detector's face
that overlaps it by at least :data:`MATCH_IOU` (box IoU) gives another alignment. When only one
detector finds the face (YuNet misses it and MTCNN's pyramid, searched then, finds it; or MTCNN's
stages reject YuNet's box), the face is embedded from the alignment available: every network
still embeds it, so the vector keeps its layout and stays comparable, from a little less
information.

Fusion: for each network, the L2-normalised embeddings of the face's alignments (and of their
mirror images, when configured) are averaged and renormalised; each network's unit vector is
scaled by ``1 / sqrt(number of networks)`` and the scaled vectors are concatenated. The result is
a unit vector whose cosine with another such vector is the equal-weight mean of the networks'
cosines, so templates, the store and 1:N search keep handling one vector.

Runtimes: MTCNN and the re-identification network run where :mod:`verify.runtime` puts them
(OpenVINO on the CPU, PyTorch on CUDA); YuNet (OpenCV) and SFace (OpenVINO) always run on the CPU.
"""

from __future__ import annotations

import hashlib
import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np

from verify.config import FaceFrontEndConfig, FaceFusionConfig, ImageLimits
from verify.device import Device, DeviceSpec, select_device
from verify.embedding import BatchedPipeline, Embedding, name_source
from verify.errors import ConfigError, FaceTooSmallError, NoFaceError, VerifyError
from verify.face.align import align_face
from verify.face.detect import Detection, FaceDetector, choose_face, match_face
from verify.face.mtcnn import MTCNN_SOURCE
from verify.face.quality import face_measures, face_quality_issues
from verify.face.reid import FACE_REID_INPUT_SIZE, FACE_REID_WEIGHTS, REID_LANDMARK_TEMPLATE, ReidNetwork
from verify.face.sface import SFACE_CPU_BATCH, SFACE_INPUT_SIZE, SFACE_LANDMARK_TEMPLATE, SFACE_WEIGHTS, SFaceNetwork
from verify.face.tracking import FaceTracker, TrackingConfig
from verify.face.yunet import YUNET_WEIGHTS, YuNetDetector
from verify.io import ImageSource, decode_image
from verify.scoring import l2_normalize

MATCH_IOU = 0.5
"""Box IoU from which another detector's face is the chosen face (YuNet's and MTCNN's boxes of
each shipped sample overlap by more than 0.7: ``tests/verify/face/test_yunet.py``)."""

PARTLY_HIDDEN = "part of the face seems hidden or turned away: show the whole face, looking at the camera"
"""The quality issue of a face that not every detector of the pipeline located: the shipped
pipeline's MTCNN stages could not confirm the face YuNet found, so it is embedded from one
alignment. 60 % of LFW photos with a block hiding part of the face, against 0.5-2.1 % of clean,
webcam-like, tilted, side-lit or far ones (``python benchmarks/conditions.py --unseen``): a
refusal then asks to show the whole face instead of rejecting, and an enrollment asks for
another photo."""

POSE_DETECTOR = "mtcnn"
"""The detector whose landmarks an embedding carries (the live challenge measures head pose from
them) when it takes part; otherwise the first detector's. MTCNN's nose tip follows a nod, YuNet's
barely does: within one ORL person MTCNN's (refined) ``pitch`` spans 0.12, YuNet's 0.055 (medians
over 40 people), and YuNet's follows MTCNN's with correlation 0.44 (``python
benchmarks/challenge_poses.py``)."""

DECODE_THREADS = 1
"""Threads reading and decoding a batch's files ahead of the networks: one keeps a core's worth of
decoding beside the networks' threads without starving them on two cores."""

OVERLAP_PART = 8
"""Images detected and embedded together while the decoding threads run ahead: a multiple of the
networks' CPU batch over the crops of two alignments."""

LEGACY_FUSION = FaceFusionConfig(detectors=("mtcnn",), networks=("reid",))
"""MTCNN alignment and the re-identification network alone: the pipeline before fusion, whose
model id and version it keeps (so its templates and thresholds stay valid)."""

NETWORK_TAGS = {"reid": "reid0095", "sface": "sface"}

WEIGHTS_IDS = {
    "mtcnn": MTCNN_SOURCE,  # the package whose networks the shipped MTCNN IRs were exported from
    "yunet": YUNET_WEIGHTS.sha256,
    "reid": FACE_REID_WEIGHTS.sha256,
    "sface": SFACE_WEIGHTS.sha256,
}


def fusion_identity(fusion: FaceFusionConfig) -> tuple[str, str]:
    """Model id (named after the networks) and version (a digest of every weights file involved
    and of the recipe) of the embeddings a fusion makes; templates of another pair are refused."""
    if fusion == LEGACY_FUSION:
        return "face-reidentification-retail-0095", FACE_REID_WEIGHTS.sha256[:12]
    digest = hashlib.sha256(repr((fusion.detectors, fusion.networks, fusion.mirror, fusion.mtcnn_refines)).encode())
    for name in (*fusion.detectors, *fusion.networks):
        digest.update(WEIGHTS_IDS[name].encode())
    return "face-fusion-" + "-".join(NETWORK_TAGS[name] for name in fusion.networks), digest.hexdigest()[:12]


FACE_MODEL_ID, FACE_MODEL_VERSION = fusion_identity(FaceFusionConfig())


def fuse_embeddings(groups: Sequence[np.ndarray]) -> np.ndarray:
    """One face's fused unit vector from each network's unit embeddings of it, ``(K_n, D_n)`` each.

    Each group's mean is renormalised and scaled by ``1 / sqrt(len(groups))``; the results are
    concatenated. The cosine of two fused vectors is the mean of the networks' cosines.
    """
    scale = 1.0 / np.sqrt(len(groups))
    return np.concatenate([l2_normalize(np.asarray(group).mean(axis=0)) * scale for group in groups]).astype(np.float32)


@dataclass(frozen=True)
class EmbeddingNetwork:
    """One embedding network: its alignment template ``(5, 2)`` (units of ``size``) and
    ``embed``: ``(N, size, size, 3)`` uint8 RGB crops -> ``(N, D)`` float32 unit vectors."""

    template: np.ndarray
    size: int
    embed: Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class LocatedFace:
    """The chosen face of one image: its detection, the landmarks of every alignment and those of
    :data:`POSE_DETECTOR` (``None`` when that detector did not locate the face)."""

    detection: Detection
    alignments: tuple[np.ndarray, ...]
    faces_found: int
    pose_landmarks: np.ndarray | None = None


class FacePipeline(BatchedPipeline):
    """Embeds face images with one or more alignments and networks, fused into one vector."""

    modality = "face"
    model_id = FACE_MODEL_ID
    model_version = FACE_MODEL_VERSION
    front_end_revision = 1

    def __init__(
        self,
        device: DeviceSpec = "auto",
        config: FaceFrontEndConfig = FaceFrontEndConfig(),
        limits: ImageLimits = ImageLimits(),
        batch_size: int = 32,
        cpu_threads: int | None = None,
        cpu_runtime: str = "openvino",
        fusion: FaceFusionConfig = FaceFusionConfig(),
    ) -> None:
        """Load the detectors and the embedding networks of ``fusion`` on ``device``.

        Args:
            batch_size: images decoded, detected and embedded together.
            cpu_threads: OpenVINO's and OpenCV's threads on the CPU (torch's too with
                ``cpu_runtime="torch"``); ``None`` uses every core.
            cpu_runtime: what runs MTCNN and the re-identification network on the CPU (see
                :func:`verify.runtime.load_network`).
        """
        self.device: Device = select_device(device)
        self.config = config
        self.limits = limits
        self.batch_size = batch_size
        self.fusion = fusion
        self.model_id, self.model_version = fusion_identity(fusion)
        builders = {
            "mtcnn": lambda: FaceDetector(self.device, config, cpu_runtime, cpu_threads),
            "yunet": lambda: YuNetDetector(config, cpu_threads),
        }
        self.detectors = {name: builders[name]() for name in fusion.detectors}
        self.networks = {name: self._load_network(name, cpu_runtime, cpu_threads) for name in fusion.networks}
        self._decode_pool: ThreadPoolExecutor | None = None

    def _load_network(self, name: str, cpu_runtime: str, cpu_threads: int | None) -> EmbeddingNetwork:
        if name == "sface":
            sface = SFaceNetwork(cpu_threads)

            def embed_sface(crops: np.ndarray) -> np.ndarray:
                step = SFACE_CPU_BATCH
                return l2_normalize(np.concatenate([sface(crops[start : start + step]) for start in range(0, len(crops), step)]))

            return EmbeddingNetwork(SFACE_LANDMARK_TEMPLATE, SFACE_INPUT_SIZE, embed_sface)
        reid = ReidNetwork(self.device, cpu_runtime, cpu_threads, self.batch_size)
        return EmbeddingNetwork(REID_LANDMARK_TEMPLATE, FACE_REID_INPUT_SIZE, reid)

    def new_tracker(self, config: TrackingConfig = TrackingConfig()) -> FaceTracker:
        """A tracker for one stream of frames, for :meth:`embed_frame` (see :mod:`verify.face.tracking`).

        Raises:
            ConfigError: the first detector of the fusion is not YuNet (only YuNet searches regions).
        """
        first = self.fusion.detectors[0]
        if first != "yunet":
            raise ConfigError(f"tracking needs YuNet as the first detector; this pipeline's is {first!r}")
        return FaceTracker(self.detectors[first], config)

    def embed_frame(self, frame: np.ndarray, tracker: FaceTracker) -> Embedding:
        """:meth:`embed` of the next ``(H, W, 3)`` uint8 RGB frame of the stream ``tracker`` follows.

        Raises:
            VerifyError: the frame is not an image array, or has no usable face.
        """
        _, result = self.embed_with_face(frame, tracker)
        if isinstance(result, VerifyError):
            raise result
        return result

    def locate_frame(self, frame: np.ndarray, tracker: FaceTracker | None = None) -> Detection:
        """The face :meth:`embed_frame` would choose in the next ``(H, W, 3)`` uint8 RGB frame, found
        by the first detector alone (through ``tracker`` when given): no second detector, no
        alignment, no network. Where the face is while a live answer holds (:mod:`enrollment.live`).

        Raises:
            VerifyError: the frame is not an image array, the first detector finds no face
                (the whole pipeline may still find one: its other detectors search when the first
                misses), or the face is too small.
        """
        image = decode_image(frame, self.limits)
        first = tracker if tracker is not None else self.detectors[self.fusion.detectors[0]]
        face, error = self._choose(first.detect([image])[0], image.shape)
        if error is not None:
            raise error
        return face

    def embed_with_face(
        self, image: np.ndarray, tracker: FaceTracker | None = None
    ) -> tuple[Detection | None, Embedding | VerifyError]:
        """Embed one decoded ``(H, W, 3)`` uint8 RGB image (a webcam frame); also return the chosen
        face's detection (``None`` when no face was found), e.g. to draw its box. With a
        ``tracker`` (:meth:`new_tracker`), the first detector looks where the stream's face was."""
        try:
            image = decode_image(image, self.limits)
        except VerifyError as error:
            return None, error
        detection, face = self.locate(image.shape, self.detect([image], tracker)[0])
        if isinstance(face, VerifyError):
            return detection, face
        return detection, self._embed_located([image], [face])[0]

    def _embed_chunk(self, sources: Sequence[ImageSource]) -> list[Embedding | VerifyError]:
        """Embed a chunk in parts of :data:`OVERLAP_PART` images; with more than one source, the
        files are read and decoded by :data:`DECODE_THREADS` threads running ahead of the part
        being detected and embedded (decoding releases the GIL)."""
        if len(sources) == 1:
            decoded: Iterator[np.ndarray | VerifyError] = iter([self._decode(sources[0])])
        else:
            decoded = self._decoder().map(self._decode, sources)
        results: list[Embedding | VerifyError] = []
        for start in range(0, len(sources), OVERLAP_PART):
            part = list(itertools.islice(decoded, OVERLAP_PART))
            results += self._embed_decoded(sources[start : start + OVERLAP_PART], part)
        return results

    def _decoder(self) -> ThreadPoolExecutor:
        """The threads that decode batches' images, started on first use."""
        if self._decode_pool is None:
            self._decode_pool = ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="face-decode")
        return self._decode_pool

    def _decode(self, source: ImageSource) -> np.ndarray | VerifyError:
        try:
            return decode_image(source, self.limits)
        except VerifyError as error:
            return error

    def _embed_decoded(self, sources: Sequence[ImageSource],
                       decoded: Sequence[np.ndarray | VerifyError]) -> list[Embedding | VerifyError]:
        """Detect, align and embed decoded images (or pass on their decoding errors)."""
        images = [item for item in decoded if not isinstance(item, VerifyError)]
        found = iter(self.detect(images))
        faces = [item if isinstance(item, VerifyError) else self.locate(item.shape, next(found))[1] for item in decoded]
        located = [(image, face) for image, face in zip(decoded, faces) if isinstance(face, LocatedFace)]
        embeddings = iter(self._embed_located([image for image, _ in located], [face for _, face in located]))
        return [name_source(face, source) if isinstance(face, VerifyError) else next(embeddings)
                for source, face in zip(sources, faces)]  # fmt: skip

    def detect(self, images: Sequence[np.ndarray], tracker: FaceTracker | None = None) -> list[list[list[Detection]]]:
        """Per image, each configured detector's detections (in configuration order).

        With ``mtcnn_refines``, MTCNN only refines the face the detectors before it chose. A
        ``tracker`` (consecutive frames of its stream) stands in for the first detector.
        """
        found: list[list[list[Detection]]] = [[] for _ in images]
        for name, detector in self.detectors.items():
            detector = tracker if tracker is not None and name == self.fusion.detectors[0] else detector
            seeded = [i for i, earlier in enumerate(found) if any(earlier)] if self._refining(name) else []
            searched = [i for i in range(len(images)) if i not in set(seeded)]
            results = dict(zip(searched, detector.detect([images[i] for i in searched]) if searched else []))
            for i in seeded:
                chooser = next(detections for detections in found[i] if detections)
                results[i] = detector.refine(images[i], [choose_face(chooser, images[i].shape)])
            for i in range(len(images)):
                found[i].append(results[i])
        return found

    def _refining(self, name: str) -> bool:
        return name == "mtcnn" and self.fusion.mtcnn_refines and self.fusion.detectors[0] != "mtcnn"

    def locate(
        self, image_shape: tuple[int, ...], found: Sequence[Sequence[Detection]]
    ) -> tuple[Detection | None, LocatedFace | VerifyError]:
        """The chosen face's detection and the face with its alignments (see the module
        docstring), or the error that stops it, from each detector's detections in an image of
        ``image_shape``."""
        chooser = next((detections for detections in found if detections), [])
        face, error = self._choose(chooser, image_shape)
        if error is not None:
            return face, error
        matches = [face if detections is chooser else match_face(face, detections, MATCH_IOU) for detections in found]
        names = list(self.detectors)
        pose = matches[names.index(POSE_DETECTOR) if POSE_DETECTOR in names else 0]
        return face, LocatedFace(face, tuple(match.landmarks for match in matches if match is not None), len(chooser),
                                 None if pose is None else pose.landmarks)

    def _choose(self, detections: Sequence[Detection],
                image_shape: tuple[int, ...]) -> tuple[Detection | None, VerifyError | None]:
        """The face of ``detections`` the pipeline takes (:func:`choose_face`), and the error that
        stops it: none found, or too small (the face is returned then too, e.g. to draw its box)."""
        if not detections:
            return None, NoFaceError("no face found in the image")
        face = choose_face(detections, image_shape)
        if face.short_side < self.config.min_face_px:
            return face, FaceTooSmallError(
                f"the face is {face.short_side:.0f} px wide; at least {self.config.min_face_px} px is needed: "
                "move closer to the camera, or use a larger photo"
            )
        return face, None

    def _embed_located(self, images: Sequence[np.ndarray], faces: Sequence[LocatedFace]) -> list[Embedding]:
        """Fused embeddings of located faces, every network's crops embedded in batches."""
        if not faces:
            return []
        groups: list[list[np.ndarray]] = [[] for _ in faces]
        previews: list[np.ndarray] = []
        for network in self.networks.values():
            crops = [self._crops(image, face, network) for image, face in zip(images, faces)]
            vectors = network.embed(np.concatenate(crops))
            bounds = np.cumsum([0] + [len(group) for group in crops])
            for index in range(len(faces)):
                groups[index].append(vectors[bounds[index] : bounds[index + 1]])
            previews = previews or [group[0] for group in crops]
        return [self._embedding(fuse_embeddings(parts), preview, face) for parts, preview, face in zip(groups, previews, faces)]

    def _crops(self, image: np.ndarray, face: LocatedFace, network: EmbeddingNetwork) -> np.ndarray:
        """``(K, size, size, 3)`` aligned crops of one face for ``network`` (mirrored copies last)."""
        crops = np.stack([align_face(image, landmarks, network.template, network.size) for landmarks in face.alignments])
        return np.concatenate([crops, crops[:, :, ::-1]]) if self.fusion.mirror else crops

    def _embedding(self, vector: np.ndarray, preview: np.ndarray, face: LocatedFace) -> Embedding:
        notes = (f"{face.faces_found} faces found; used the largest, most central one",) if face.faces_found > 1 else ()
        measures = face_measures(preview, face.detection.landmarks, face.detection.box)
        measures["alignments"] = float(len(face.alignments))
        measures["faces"] = float(face.faces_found)
        box = tuple(float(value) for value in face.detection.box)
        landmarks = None if face.pose_landmarks is None else np.array(face.pose_landmarks, np.float32)
        issues = face_quality_issues(preview, self.config)
        if len(face.alignments) < len(self.detectors):
            issues += (PARTLY_HIDDEN,)
        return Embedding(vector, issues, notes, preview, measures, location=box, landmarks=landmarks)
