"""Head pose of real photos as the live challenge measures it, from each detector's landmarks.

    python benchmarks/challenge_poses.py [--data /work/shared/data] [--people s1 s2 s5]
        [--out benchmarks/results/challenge_poses.json]

ORL (``faces/orl_att``) photographs each of 40 people ten times, turning and nodding. Every photo
(enlarged 3x, as the live-challenge tests place it in a webcam frame) is measured with
:func:`verify.challenge.head_pose` from three sets of landmarks of the same face:

- ``yunet``: YuNet's, the detector that chooses the face in the shipped pipeline;
- ``mtcnn_refined``: MTCNN's R/O-nets run on YuNet's box (the shipped pipeline's second alignment);
- ``mtcnn``: MTCNN's whole cascade, the landmarks the challenge was designed with.

Printed: the per-photo table for ``--people``; over all 40 people, how far each source's ``yaw``
and ``pitch`` spread within a person (a head that nods must move ``pitch``), how closely each
follows full MTCNN's, and how often a source misses the face. Then each person's most frontal
photo is shown as a flat print turned and tilted in front of a pinhole camera (perspective warp)
and the largest pose change each source reads from it is printed (a flat photo must not move).
ORL people are all evaluation people: nothing is fitted on these figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from posed_faces import EYE_DISTANCE_PX, FRAME_SHAPE, Photo, webcam_frame  # noqa: E402

from verify.challenge import ChallengeConfig, HeadPose, head_pose  # noqa: E402
from verify.face.detect import choose_face, match_face  # noqa: E402
from verify.face.pipeline import MATCH_IOU, FacePipeline  # noqa: E402
from verify.io import decode_image  # noqa: E402

SOURCES = ("yunet", "mtcnn_refined", "mtcnn")
FLAT_TURNS = [(20, 0), (-20, 0), (0, 20), (0, -20), (40, 0), (-40, 0), (0, 35), (0, -35), (30, 30), (50, 0), (-50, 0),
              (0, 45), (0, -45)]  # degrees (yaw, pitch) of a held print
FOCAL_PX, PRINT_MM = 600.0, 350.0  # a webcam's focal length; the print's distance from it


def landmarks(pipeline: FacePipeline, image: np.ndarray) -> dict[str, np.ndarray | None]:
    """Each source's five landmarks of the chosen face of ``image`` (``None``: that source missed it)."""
    found = pipeline.detect([image])[0]
    chosen = choose_face(found[0], image.shape) if found[0] else None
    refined = match_face(chosen, found[1], MATCH_IOU) if chosen is not None and found[1] else None
    searched = pipeline.detectors["mtcnn"].detect([image])[0]
    full = match_face(chosen, searched, MATCH_IOU) if chosen is not None and searched else None
    return {"yunet": None if chosen is None else chosen.landmarks,
            "mtcnn_refined": None if refined is None else refined.landmarks,
            "mtcnn": None if full is None else full.landmarks}


def pose_or_none(points: np.ndarray | None) -> HeadPose | None:
    return None if points is None else head_pose(points)


def flat_print(frame: np.ndarray, yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """``frame`` as a flat print ``PRINT_MM`` from a pinhole camera, turned and tilted about its centre."""
    a, b = np.radians(yaw_deg), np.radians(pitch_deg)
    turn = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    nod = np.array([[1, 0, 0], [0, np.cos(b), np.sin(b)], [0, -np.sin(b), np.cos(b)]])
    height, width = frame.shape[:2]
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float64)
    centred = corners - (width / 2, height / 2)
    plane = np.column_stack([centred * PRINT_MM / FOCAL_PX, np.zeros(4)]) @ (turn @ nod).T
    depth = PRINT_MM - plane[:, 2]
    seen = np.column_stack([width / 2 + FOCAL_PX * plane[:, 0] / depth, height / 2 + FOCAL_PX * plane[:, 1] / depth])
    matrix = cv2.getPerspectiveTransform(corners.astype(np.float32), seen.astype(np.float32))
    return cv2.warpPerspective(frame, matrix, (width, height), borderValue=(90, 90, 90))


def measure_people(pipeline: FacePipeline, folder: Path) -> dict[str, dict[str, dict[str, list[float] | None]]]:
    """``{person: {photo: {source: [yaw, pitch, scale] or None}}}`` for every ORL person."""
    table = {}
    for person in sorted(folder.iterdir(), key=lambda path: int(path.name[1:])):
        rows = {}
        for path in sorted(person.glob("*.png"), key=lambda path: int(path.stem)):
            image = cv2.resize(decode_image(path), None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
            poses = {name: pose_or_none(points) for name, points in landmarks(pipeline, image).items()}
            rows[path.name] = {name: None if pose is None else [round(pose.yaw, 4), round(pose.pitch, 4),
                                                               round(pose.scale, 2)]
                               for name, pose in poses.items()}
        table[person.name] = rows
    return table


def spread_summary(table) -> dict[str, dict[str, float]]:
    """Per source: median within-person range of yaw and pitch, correlation with full MTCNN, misses."""
    summary = {}
    for source in SOURCES:
        ranges = {"yaw": [], "pitch": []}
        pairs = {"yaw": [], "pitch": []}
        missed = 0
        for rows in table.values():
            for axis, column in (("yaw", 0), ("pitch", 1)):
                values = [row[source][column] for row in rows.values() if row[source] is not None]
                ranges[axis].append(float(np.ptp(values)) if values else 0.0)
                both = [(row[source][column], row["mtcnn"][column]) for row in rows.values()
                        if row[source] is not None and row["mtcnn"] is not None]
                if both:  # deviations from the person's own median: the pose, not the face's shape
                    mine, theirs = np.array(both).T
                    pairs[axis] += list(zip(mine - np.median(mine), theirs - np.median(theirs)))
            missed += sum(row[source] is None for row in rows.values())
        summary[source] = {"photos_missed": missed}
        for axis in ("yaw", "pitch"):
            mine, theirs = np.array(pairs[axis]).T
            summary[source][f"{axis}_range_median"] = round(float(np.median(ranges[axis])), 3)
            summary[source][f"{axis}_corr_with_mtcnn"] = round(float(np.corrcoef(mine, theirs)[0, 1]), 3)
    return summary


def flat_prints(pipeline: FacePipeline, folder: Path, table) -> dict[str, dict[str, dict[str, float]]]:
    """Per source and print turn, the median and largest |change| of yaw (in turn thresholds) and
    pitch (in tilt thresholds) that each person's most frontal photo, printed and turned, reads,
    and how many faces read a whole turn or nod (>= 1 threshold)."""
    config = ChallengeConfig()
    changes = {source: {turn: [] for turn in FLAT_TURNS} for source in SOURCES}
    for person, rows in table.items():
        frontal = min((name for name, row in rows.items() if row["mtcnn"] is not None),
                      key=lambda name: abs(rows[name]["mtcnn"][0]), default=None)
        if frontal is None:
            continue
        image = cv2.resize(decode_image(folder / person / frontal), None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
        frame = webcam_frame(Photo(image, np.asarray(landmarks(pipeline, image)["mtcnn"], np.float64), frontal))
        base = {name: pose_or_none(found) for name, found in landmarks(pipeline, frame).items()}
        for turn in FLAT_TURNS:
            turned = {name: pose_or_none(found) for name, found in landmarks(pipeline, flat_print(frame, *turn)).items()}
            for source in SOURCES:
                if base[source] is not None and turned[source] is not None:
                    changes[source][turn].append((abs(turned[source].yaw - base[source].yaw) / config.turn,
                                                  abs(turned[source].pitch - base[source].pitch) / config.tilt))
    summary = {}
    for source, by_turn in changes.items():
        summary[source] = {}
        for (yaw, pitch), values in by_turn.items():
            turns, tilts = np.array(values).T
            summary[source][f"yaw{yaw:+d}_pitch{pitch:+d}"] = {
                "faces": len(values), "yaw_in_turns_median": round(float(np.median(turns)), 2),
                "yaw_in_turns_max": round(float(turns.max()), 2), "pitch_in_tilts_median": round(float(np.median(tilts)), 2),
                "pitch_in_tilts_max": round(float(tilts.max()), 2),
                "faces_reading_a_turn": int((turns >= 1).sum()), "faces_reading_a_nod": int((tilts >= 1).sum())}
    return summary


def print_people(table, people: list[str]) -> None:
    print("photo   " + "".join(f"{source + ' yaw pitch scale':>30}" for source in SOURCES))
    for person in people:
        for photo, row in table[person].items():
            cells = ["--" if row[s] is None else "{:+.2f} {:.2f} {:6.1f}".format(*row[s]) for s in SOURCES]
            print(f"{person}/{photo:7}" + "".join(f"{cell:>30}" for cell in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--people", nargs="*", default=["s1", "s2", "s5"])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "challenge_poses.json")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    pipeline = FacePipeline(device="cpu", cpu_threads=1)
    folder = args.data / "faces" / "orl_att"
    table = measure_people(pipeline, folder)
    print_people(table, args.people)
    result = {"spread": spread_summary(table), "flat_prints": flat_prints(pipeline, folder, table),
              "frame_px": list(FRAME_SHAPE), "eye_distance_px": EYE_DISTANCE_PX, "photos": table,
              "command": "python benchmarks/challenge_poses.py"}
    print(json.dumps({key: result[key] for key in ("spread", "flat_prints")}, indent=1))
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
