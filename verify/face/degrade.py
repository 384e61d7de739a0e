"""Seeded webcam-like degradations of face images, for benchmarks, training and enrollment.

Each function takes an ``(H, W, 3)`` uint8 RGB image and a NumPy ``Generator`` and returns a new
image of the same shape (except after :func:`downscale` without ``restore``); the generator draws
every random choice, so the same seed gives the same image. :func:`webcam_like` composes them
in the order a camera and a video stream apply them: optics and motion first, then exposure,
sensor noise, resampling and compression. The ranges are broad on purpose, so that nothing is
tuned to one camera.
"""

from __future__ import annotations

import zlib
from typing import Callable

import cv2
import numpy as np

Degradation = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def downscale(
    image: np.ndarray, rng: np.random.Generator, factor: tuple[float, float] = (0.4, 0.7), restore: bool | None = None
) -> np.ndarray:
    """Resize to a ``factor`` of the size (30-60 % smaller by default), then back up or not.

    Args:
        restore: resize back to the original size; ``None`` decides at random (even odds).
    """
    scale = rng.uniform(*factor)
    height, width = image.shape[:2]
    small = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
    if restore is None:
        restore = bool(rng.integers(2))
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR) if restore else small


def upscale(image: np.ndarray, rng: np.random.Generator, factor: tuple[float, float] = (2.0, 4.0)) -> np.ndarray:
    """The same picture at a higher resolution, as a phone camera or a close webcam gives it: enlarged
    by a ``factor`` drawn from the range (bicubic), so the face spans 2-4 times the pixels."""
    scale = rng.uniform(*factor)
    height, width = image.shape[:2]
    return cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_CUBIC)


def gaussian_blur(image: np.ndarray, rng: np.random.Generator, sigma: tuple[float, float] = (0.6, 2.0)) -> np.ndarray:
    """Out-of-focus blur: a Gaussian of standard deviation drawn from ``sigma`` (px)."""
    return cv2.GaussianBlur(image, (0, 0), rng.uniform(*sigma))


def motion_blur(image: np.ndarray, rng: np.random.Generator, length: tuple[int, int] = (3, 11)) -> np.ndarray:
    """Linear motion blur of ``length`` px (inclusive range) in a random direction."""
    size = int(rng.integers(length[0], length[1] + 1))
    kernel = np.zeros((size, size), np.float32)
    kernel[size // 2, :] = 1.0
    rotation = cv2.getRotationMatrix2D(((size - 1) / 2, (size - 1) / 2), rng.uniform(0, 180), 1.0)
    kernel = cv2.warpAffine(kernel, rotation, (size, size))
    return cv2.filter2D(image, -1, kernel / max(float(kernel.sum()), 1e-6), borderType=cv2.BORDER_REFLECT)


def exposure(
    image: np.ndarray, rng: np.random.Generator, gain: tuple[float, float] = (0.5, 1.4), gamma: tuple[float, float] = (0.7, 1.5)
) -> np.ndarray:
    """Under- or over-exposure: pixels scaled by ``gain``, then a ``gamma`` curve (both drawn)."""
    levels = np.arange(256, dtype=np.float64) / 255.0
    curve = np.clip(levels * rng.uniform(*gain), 0.0, 1.0) ** rng.uniform(*gamma)
    return cv2.LUT(image, np.round(curve * 255).astype(np.uint8))


def contrast(image: np.ndarray, rng: np.random.Generator, factor: tuple[float, float] = (0.5, 1.3)) -> np.ndarray:
    """Contrast scaled by ``factor`` around the image's mean grey level."""
    mean = float(image.mean())
    changed = (image.astype(np.float32) - mean) * rng.uniform(*factor) + mean
    return np.clip(np.round(changed), 0, 255).astype(np.uint8)


def sensor_noise(image: np.ndarray, rng: np.random.Generator, sigma: tuple[float, float] = (2.0, 10.0)) -> np.ndarray:
    """Gaussian sensor noise of standard deviation drawn from ``sigma`` (grey levels), per pixel and channel."""
    noise = rng.normal(0.0, rng.uniform(*sigma), image.shape)
    return np.clip(np.round(image + noise), 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray, rng: np.random.Generator, quality: tuple[int, int] = (20, 50)) -> np.ndarray:
    """Re-encoded as JPEG at a quality drawn from ``quality`` (inclusive range)."""
    level = int(rng.integers(quality[0], quality[1] + 1))
    encoded = cv2.imencode(".jpg", np.ascontiguousarray(image[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, level])[1]
    return np.ascontiguousarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR)[:, :, ::-1])


def mirror(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Flipped left to right, as a selfie camera shows it (``rng`` unused; same signature)."""
    return np.ascontiguousarray(image[:, ::-1])


def tilt(image: np.ndarray, rng: np.random.Generator, degrees: tuple[float, float] = (10.0, 25.0)) -> np.ndarray:
    """A head tilted in the image plane: rotated about the centre by an angle drawn from ``degrees``,
    to either side, edges replicated."""
    height, width = image.shape[:2]
    angle = rng.uniform(*degrees) * rng.choice([-1.0, 1.0])
    rotation = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), angle, 1.0)
    return cv2.warpAffine(image, rotation, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def cover(image: np.ndarray, rng: np.random.Generator, width_share: tuple[float, float] = (0.25, 0.45),
          height_share: tuple[float, float] = (0.15, 0.3)) -> np.ndarray:
    """Part of the picture hidden (a hand, a cup, a scarf): a block of one grey level, its sides drawn
    as shares of the image's, placed near the centre where a portrait's face is."""
    height, width = image.shape[:2]
    block_width, block_height = round(width * rng.uniform(*width_share)), round(height * rng.uniform(*height_share))
    x = round((width - block_width) / 2 + width * rng.uniform(-0.15, 0.15))
    y = round((height - block_height) / 2 + height * rng.uniform(-0.2, 0.2))
    covered = image.copy()
    covered[max(0, y) : max(0, y + block_height), max(0, x) : max(0, x + block_width)] = int(rng.integers(0, 256))
    return covered


def side_light(image: np.ndarray, rng: np.random.Generator, darkest: tuple[float, float] = (0.2, 0.5)) -> np.ndarray:
    """Light from one side (a window beside the screen): brightness falling linearly across the
    image to a ``darkest`` share on a random side."""
    ramp = np.linspace(rng.uniform(*darkest), 1.0, image.shape[1])
    if rng.random() < 0.5:
        ramp = ramp[::-1]
    return np.clip(np.round(image * ramp[None, :, None]), 0, 255).astype(np.uint8)


def webcam_like(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random mix of the degradations above, each applied or not, in a camera's order.

    Blur (Gaussian or motion) half of the time, exposure 70 %, contrast 50 %, sensor noise 70 %,
    mirror 50 %, downscaling 70 % (scaled back up half of the time) and JPEG compression 80 %.
    """
    if rng.random() < 0.5:
        image = (gaussian_blur if rng.random() < 0.5 else motion_blur)(image, rng)
    if rng.random() < 0.7:
        image = exposure(image, rng)
    if rng.random() < 0.5:
        image = contrast(image, rng)
    if rng.random() < 0.7:
        image = sensor_noise(image, rng)
    if rng.random() < 0.5:
        image = mirror(image, rng)
    if rng.random() < 0.7:
        image = downscale(image, rng)
    if rng.random() < 0.8:
        image = jpeg(image, rng)
    return image


def enrollment_copy(image: np.ndarray, rng: np.random.Generator, index: int) -> np.ndarray:
    """The ``index``-th condition-augmented copy of an enrollment image, cycling through three kinds:
    downscaled then JPEG-compressed, blurred, re-exposed with sensor noise.

    A template can average the clean image with a few such copies, so it also resembles the
    poorer probes a webcam gives (``benchmarks/face_variants.py`` measures it).
    """
    kinds = (
        lambda im: jpeg(downscale(im, rng, restore=True), rng),
        lambda im: gaussian_blur(im, rng),
        lambda im: sensor_noise(exposure(im, rng), rng),
    )
    return kinds[index % len(kinds)](image)


def seeded_rng(seed: int, key: str) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``key`` (e.g. a file name), stable across runs."""
    return np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])
