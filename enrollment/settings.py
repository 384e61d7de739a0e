"""One frozen settings object for every front end: arguments, then environment, then defaults.

==========================  ===============================  =============================
setting                     environment variable             default
==========================  ===============================  =============================
store path                  ``VERIFY_STORE``                 ``$XDG_DATA_HOME/verify/enrollments.db``
key                         ``VERIFY_STORE_KEY`` (base64)    none: templates not sealed
device                      ``VERIFY_DEVICE``                ``auto`` (CUDA when present)
security level              ``VERIFY_LEVEL``                 ``medium``
lockout                     ``VERIFY_MAX_FAILURES``,         5 failures in 300 s lock 900 s
                            ``VERIFY_FAILURE_WINDOW``,
                            ``VERIFY_LOCKOUT_SECONDS``
1:N throttle                ``VERIFY_IDENTIFY_LIMIT``,       20 per caller per 60 s
                            ``VERIFY_IDENTIFY_WINDOW``
per-user adaptation         ``VERIFY_ADAPT`` (``1``/``0``)   off
1:N exact search up to      ``VERIFY_GALLERY_EXACT_MAX``     20,000 templates (PQ scan above)
live head-move challenge    ``VERIFY_LIVE_CHALLENGE``        on
challenge seed (tests)      ``VERIFY_CHALLENGE_SEED``        none: random moves
face + voice rule           ``VERIFY_FUSION``                ``and`` (or ``sum``)
==========================  ===============================  =============================
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, TypeVar

from enrollment.crypto import load_key, parse_key
from enrollment.database import default_store_path
from enrollment.gallery import GalleryConfig
from enrollment.ratelimit import DEFAULT_POLICY, DEFAULT_THROTTLE, LockoutPolicy, ThrottlePolicy
from verify.config import DEFAULT_SECURITY_LEVEL, target_far
from verify.errors import ConfigError
from verify.fusion import DEFAULT_FUSION_RULE, FUSION_RULES
from verify.search import IndexConfig

T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """Everything a :class:`~enrollment.service.Service` is built from.

    Attributes:
        store_path: the SQLite enrollment store.
        key: 32-byte AES key sealing the templates, or ``None``.
        device: ``"auto"``, ``"cpu"`` or ``"cuda:N"``.
        level: the default security level (``"low"``, ``"medium"``, ``"high"``).
        lockout: failed 1:1 checks that lock an identity out.
        throttle: 1:N identifications allowed per caller.
        adapt: enroll and check with the shipped per-user adaptation (where one ships).
        caller: who the attempts are logged for when a call names nobody (``"cli:<user>"``, ...).
        gallery: how 1:N galleries are indexed (exact search up to a size, PQ scan above) and saved.
        live_challenge: live webcam sessions prompt head moves before deciding.
        challenge_seed: every live attempt prompts the moves drawn from this seed (tests and
            demos only: a recording of those moves would pass); ``None`` draws them at random.
        lanes: copies of each pipeline loaded on the CPU, each with its share of the cores
            (:mod:`verify.lanes`): 1 answers one sample soonest and tracks live frames; more
            embed jobs of many samples faster; ``None`` picks for such jobs on the device.
        fusion: how a check with a face and a voice decides: ``"and"`` (both must be accepted,
            the default) or ``"sum"`` (the sum of their calibrated LLRs against fused thresholds,
            each modality vetoing below its ``low`` level's retry threshold: fewer genuine people
            refused, but a photo of the enrolled person passes with an impostor's voice about one
            time in ten; README, "Face + voice together").
    """

    store_path: Path
    key: bytes | None = field(default=None, repr=False)
    device: str = "auto"
    level: str = DEFAULT_SECURITY_LEVEL
    lockout: LockoutPolicy = DEFAULT_POLICY
    throttle: ThrottlePolicy = DEFAULT_THROTTLE
    adapt: bool = False
    caller: str = ""
    gallery: GalleryConfig = GalleryConfig()
    live_challenge: bool = True
    challenge_seed: int | None = None
    lanes: int | None = 1
    fusion: str = DEFAULT_FUSION_RULE

    def __post_init__(self) -> None:
        target_far(self.level)  # raises ConfigError naming the choices
        if self.lanes is not None and self.lanes < 1:
            raise ConfigError(f"lanes must be at least 1, got {self.lanes}")
        if self.fusion not in FUSION_RULES:
            raise ConfigError(f"unknown fusion rule {self.fusion!r}; expected one of {FUSION_RULES}")
        if self.fusion == "sum" and self.adapt:
            raise ConfigError("the sum fusion rule needs calibrated LLRs, which per-user adaptation does not give: "
                              "use the 'and' rule with adaptation")

    @classmethod
    def resolve(
        cls,
        *,
        store: str | Path | None = None,
        key: str | bytes | None = None,
        key_file: str | Path | None = None,
        device: str | None = None,
        level: str | None = None,
        max_failures: int | None = None,
        failure_window: float | None = None,
        lockout_seconds: float | None = None,
        identify_limit: int | None = None,
        identify_window: float | None = None,
        adapt: bool | None = None,
        caller: str | None = None,
        gallery_exact_max: int | None = None,
        live_challenge: bool | None = None,
        challenge_seed: int | None = None,
        lanes: int | None = 1,
        fusion: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Settings from the arguments given, else the environment, else the defaults.

        ``key`` is raw 32 bytes or base64 text; ``key_file`` a file holding base64 text.

        Raises:
            ConfigError: an environment variable or argument has an invalid value.
            StoreKeyError: a key is malformed or its file cannot be read.
        """
        env = os.environ if environ is None else environ
        pick = _Picker(env)
        lockout = LockoutPolicy(
            pick(max_failures, "VERIFY_MAX_FAILURES", int, DEFAULT_POLICY.max_failures),
            pick(failure_window, "VERIFY_FAILURE_WINDOW", float, DEFAULT_POLICY.window_seconds),
            pick(lockout_seconds, "VERIFY_LOCKOUT_SECONDS", float, DEFAULT_POLICY.lockout_seconds),
        )
        throttle = ThrottlePolicy(
            pick(identify_limit, "VERIFY_IDENTIFY_LIMIT", int, DEFAULT_THROTTLE.max_attempts),
            pick(identify_window, "VERIFY_IDENTIFY_WINDOW", float, DEFAULT_THROTTLE.window_seconds),
        )
        return cls(
            store_path=Path(store).expanduser() if store is not None else default_store_path(env),
            key=_key(key, key_file, env),
            device=pick(device, "VERIFY_DEVICE", str, "auto"),
            level=pick(level, "VERIFY_LEVEL", str, DEFAULT_SECURITY_LEVEL),
            lockout=lockout,
            throttle=throttle,
            adapt=pick(adapt, "VERIFY_ADAPT", _flag, False),
            caller=caller if caller is not None else user_caller("python"),
            gallery=GalleryConfig(IndexConfig(exact_max=pick(gallery_exact_max, "VERIFY_GALLERY_EXACT_MAX", int,
                                                             IndexConfig().exact_max))),
            live_challenge=pick(live_challenge, "VERIFY_LIVE_CHALLENGE", _flag, True),
            challenge_seed=pick(challenge_seed, "VERIFY_CHALLENGE_SEED", int, None),
            lanes=lanes,
            fusion=pick(fusion, "VERIFY_FUSION", str, DEFAULT_FUSION_RULE),
        )


class _Picker:
    """``pick(argument, variable, parse, default)``: the argument, else the parsed variable, else the default."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def __call__(self, argument: T | None, variable: str, parse: Callable[[str], T], default: T) -> T:
        if argument is not None:
            return argument
        text = self.environ.get(variable, "").strip()
        if not text:
            return default
        try:
            return parse(text)
        except ValueError:
            raise ConfigError(f"${variable} has an invalid value {text!r}") from None


def _flag(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def _key(key: str | bytes | None, key_file: str | Path | None, environ: Mapping[str, str]) -> bytes | None:
    if isinstance(key, bytes) and len(key) == 32:
        return key
    if key is not None:
        return parse_key(key, "the key argument")
    return load_key(key_file, environ)


def user_caller(front_end: str) -> str:
    """``"<front_end>:<user name>"``: the caller of attempts made by the user running this process."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        user = str(os.getuid())
    return f"{front_end}:{user}"
