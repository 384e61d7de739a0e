"""The one service behind every front end: enroll, check, identify, live frames, gallery, audit.

The CLI, the web app and Python code all call :class:`Service`, so every rule holds everywhere:
the enrollment quality gate and lookalike warning, the lockout after failed checks, the throttle
on 1:N searches, the audit log, sealed templates under the store's key.

    from enrollment import Service
    svc = Service(store="people.db")                 # key from $VERIFY_STORE_KEY when set
    svc.enroll("alice", face="alice.jpg")            # and/or voice="alice.flac"
    r = svc.check("alice", face="door.jpg")          # level="medium" by default
    r.outcome, r.score                               # "accepted" | "rejected" | "retry"
    svc.identify(face="who.jpg").identity            # None when nobody is named

Samples are files, encoded bytes or arrays (an ``(H, W, 3)`` uint8 RGB image; a
``(samples, rate)`` pair for audio). Models load on first use, once, and are shared by threads.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from enrollment.audit import Attempt, recent_attempts
from enrollment.backup import export_store, import_store
from enrollment.enroll import (
    Enrollment,
    check_embedded,
    check_embedded_many,
    check_many,
    checked_decider,
    enroll,
    enrolled_template,
)
from enrollment.errors import UnknownIdentityError
from enrollment.gallery import Gallery, GalleryConfig, GalleryKey
from enrollment.identify import Identification, identify
from enrollment.ratelimit import (
    clear_lockout,
    ensure_not_locked,
    ensure_not_throttled,
    record_identification,
    record_identifications,
    record_results,
)
from enrollment.replay_guard import ReplayGuard, ReplayReview, forget, remember
from enrollment.results import CheckResult, EnrollResult, IdentifyResult
from enrollment.settings import Settings
from enrollment.store import TemplateStore
from enrollment.template import Template, validate_identity, validate_modality
from enrollment.tokens import TokenRegistry
from verify.config import MODALITIES
from verify.device import select_device
from verify.embedding import Embedding, Pipeline
from verify.errors import ConfigError, InputError, VerifyError
from verify.fusion import fuse_and, fuse_llr
from verify.lanes import load_lanes
from verify.models import fusion_model_id, fusion_thresholds, model_spec
from verify.scorer import CalibratedScorer, Scorer
from verify.replay import load_replay_threshold, sample_digest
from verify.scoring import Decision, OperatingPoint
from verify.verifier import Verifier

if TYPE_CHECKING:  # torch with per-user adaptation, OpenCV with live sessions: imported on use
    from enrollment.live import LiveSession
    from enrollment.live_voice import LiveVoiceSession
    from verify.adaptation import Adapter
    from verify.screen_cues import ScreenCues


class MissingSampleError(InputError):
    """Neither a face nor a voice sample was given."""


def samples_given(face: Any, voice: Any) -> dict[str, Any]:
    """``{modality: sample}`` of the samples given.

    Raises:
        MissingSampleError: neither was given.
    """
    sources = {name: value for name, value in (("face", face), ("voice", voice)) if value is not None}
    if not sources:
        raise MissingSampleError("give a face photo, a voice clip, or both")
    return sources


class Service:
    """Every use case, over one enrollment store and the shipped models.

    Args:
        store: the store file (default: ``$VERIFY_STORE``, else the per-user data folder).
        settings: a complete :class:`Settings` instead of ``store`` and ``options``.
        pipelines: already built pipelines to share (``{"face": ..., "voice": ...}``).
        scorers: scoring for pipelines other than the shipped ones (experiments, tests); the
            shipped models use their shipped cohort and calibration.
        options: any keyword of :meth:`Settings.resolve` (``key``, ``key_file``, ``level``,
            ``device``, ``max_failures``, ``adapt``, ``caller``, ...).

    Raises:
        StoreError: the store cannot be opened, is not an enrollment store, or the key is wrong.
        ConfigError: an option is invalid.
    """

    def __init__(self, store: str | Path | None = None, *, settings: Settings | None = None,
                 pipelines: Mapping[str, Pipeline] | None = None, scorers: Mapping[str, Scorer] | None = None,
                 **options: Any) -> None:
        if settings is not None and (store is not None or options):
            raise ConfigError("give either settings or store and options, not both")
        self.settings = settings or Settings.resolve(store=store, **options)
        self.store = TemplateStore(self.settings.store_path, key=self.settings.key)
        self.tokens = TokenRegistry(self.store)  # the REST API's tokens: create, list, revoke, authenticate
        self._pipelines: dict[str, Pipeline] = dict(pipelines or {})
        self._scorers: dict[str, Scorer] = dict(scorers or {})
        self._adapters: dict[str, Adapter] = {}
        self._galleries: dict[GalleryKey, Gallery] = {}
        self._replay_thresholds: dict[str, float | None] = {}
        self._screen_cues: ScreenCues | None = None
        self._lock = threading.Lock()

    # --- models ---------------------------------------------------------------------------------
    def pipeline(self, modality: str) -> Pipeline:
        """The shipped pipeline of ``modality`` on the settings' device (in the settings' lanes), loaded once."""
        validate_modality(modality)
        with self._lock:
            if modality not in self._pipelines:
                self._pipelines[modality] = load_lanes(modality, self.settings.device, self.settings.lanes)
            return self._pipelines[modality]

    def loaded(self) -> tuple[str, ...]:
        """Modalities whose model is loaded."""
        return tuple(modality for modality in MODALITIES if modality in self._pipelines)

    def verifier(self, modality: str, level: str | None = None) -> Verifier:
        """A verifier of ``modality`` at ``level`` (default: the settings' level)."""
        return Verifier(self.pipeline(modality), self.scorer(modality), level or self.settings.level)

    def scorer(self, modality: str) -> Scorer:
        """How scores of ``modality`` become decisions: the shipped scoring unless one was given."""
        return self._scorers.get(modality) or model_spec(modality).scorer

    def operating_point(self, modality: str, level: str | None = None) -> OperatingPoint:
        """The thresholds a level applies to ``modality``, in evidence units (calibrated LLR; loads no model)."""
        return self.scorer(modality).operating_point(level or self.settings.level)

    def adapter(self, modality: str) -> Adapter | None:
        """The shipped per-user adaptation when the settings ask for it, else ``None``.

        Raises:
            ConfigError: adaptation is on but none ships for ``modality``.
        """
        if not self.settings.adapt:
            return None
        with self._lock:
            if modality not in self._adapters:
                self._adapters[modality] = model_spec(modality).load_adapter()
            return self._adapters[modality]

    def replay_guard(self, modality: str) -> ReplayGuard:
        """The replay rule of ``modality``'s pipeline, with the near-identical threshold shipped for it.

        A pipeline that is not the shipped model's (tests, experiments) gets no near-identical
        threshold: only byte-identical copies are caught.

        Raises:
            WeightsError: the shipped model's replay threshold file is missing or unreadable.
        """
        pipeline = self.pipeline(modality)
        with self._lock:
            if modality not in self._replay_thresholds:
                spec = model_spec(modality)
                shipped = spec.model_id == pipeline.model_id
                self._replay_thresholds[modality] = load_replay_threshold(spec.model_id).cosine if shipped else None
        return ReplayGuard(self.store, pipeline, self._replay_thresholds[modality])

    def screen_cues(self) -> ScreenCues:
        """The shipped passive screen/print cues (used by strict live sessions), loaded once.

        Raises:
            WeightsError: the shipped file is missing or unreadable.
        """
        from verify.screen_cues import load_screen_cues  # OpenCV: only for strict live sessions

        with self._lock:
            if self._screen_cues is None:
                self._screen_cues = load_screen_cues()
            return self._screen_cues

    # --- enrollment -----------------------------------------------------------------------------
    def enroll(self, name: str, *, face: Any = None, voice: Any = None, allow_low_quality: bool = False) -> EnrollResult:
        """Enroll ``name`` from one face and/or one voice sample (again: adds samples).

        A modality that fails is reported in the result's ``failed`` beside those that succeeded.

        Raises:
            VerifyError: nothing was enrolled (the first modality's error), or the name is invalid.
        """
        return self._enroll(name, samples_given(face, voice), allow_low_quality, replace=False)

    def reenroll(self, name: str, *, face: Any = None, voice: Any = None,
                 allow_low_quality: bool = False) -> EnrollResult:
        """Replace ``name``'s template of each modality given by one from the new sample.

        Raises:
            UnknownIdentityError: ``name`` is not enrolled.
            VerifyError: nothing was re-enrolled (the first modality's error).
        """
        identity = validate_identity(name)
        if not self.store.find(identity):
            raise UnknownIdentityError(f"{identity!r} is not enrolled; enroll them first")
        result = self._enroll(identity, samples_given(face, voice), allow_low_quality, replace=True)
        self._sync_galleries(result.enrolled)
        return result

    def _enroll(self, name: str, sources: dict[str, Any], allow_low_quality: bool, replace: bool) -> EnrollResult:
        identity = validate_identity(name)
        enrolled: dict[str, Enrollment] = {}
        failed: dict[str, VerifyError] = {}
        for modality, source in sources.items():
            try:
                enrolled[modality] = enroll(self.store, self.verifier(modality), identity, source,
                                            allow_low_quality=allow_low_quality, adapter=self.adapter(modality),
                                            replace=replace, gallery=self.gallery(self.pipeline(modality)))
            except VerifyError as error:
                failed[modality] = error
                continue
            if replace:
                forget(self.store, identity, modality)
            remember(self.store, identity, self.pipeline(modality), "enrolled", sample_digest(source),
                     enrolled[modality].sample.vector)
        if not enrolled:
            raise next(iter(failed.values()))
        return EnrollResult(identity, enrolled, failed)

    # --- 1:1 ------------------------------------------------------------------------------------
    def check(self, name: str, *, face: Any = None, voice: Any = None, level: str | None = None,
              caller: str | None = None) -> CheckResult:
        """Verify samples against the claimed ``name``; both must match when face and voice are given.

        Every check is logged and counts towards the lockout; the identity is looked up before
        anything is embedded.

        Raises:
            UnknownIdentityError: ``name`` has no template of a modality given.
            LockedOutError: too many recent failed checks against ``name``.
            VerifyError: a sample is unreadable, has no face or no speech.
        """
        identity = validate_identity(name)
        sources = samples_given(face, voice)
        self._enrolled_and_unlocked(identity, sources, caller)
        verifiers = {modality: self.verifier(modality, level) for modality in sources}
        for verifier in verifiers.values():
            enrolled_template(self.store, verifier.pipeline, identity)
        if len(sources) > 1 and self.settings.fusion == "sum":
            return self._check_by_llr_sum(identity, sources, verifiers, self._level(level), self._caller(caller))
        samples: dict[str, Embedding] = {}
        decisions: dict[str, Decision] = {}
        for modality, source in sources.items():
            review = ReplayReview(self.replay_guard(modality), identity, [source])
            decisions[modality] = check_embedded(
                self.store, verifiers[modality], identity, self._embedder(verifiers[modality], source, samples),
                policy=self.settings.lockout, adapter=self.adapter(modality), caller=self._caller(caller),
                review=review)
            review.remember_accepted([decisions[modality]])
        fused = fuse_and(decisions)
        return CheckResult(identity, fused.outcome, self._level(level), decisions, samples, fused.reason)

    def _check_by_llr_sum(self, identity: str, sources: Mapping[str, Any], verifiers: Mapping[str, Verifier],
                          level: str, caller: str) -> CheckResult:
        """Face and voice decided together by the sum of their calibrated LLRs (``fusion="sum"``).

        Both modalities' lockouts are checked before anything is embedded. Each modality keeps a
        veto below its ``low`` level's retry threshold; an accepted sum is refused when a sample is
        a copy of an earlier one (the replay guard). The fused answer is what each modality's
        audit row and lockout count record; the result holds each modality's own decision.
        """
        point = self._fusion_point(verifiers, level)
        policy = self.settings.lockout
        deciders = {modality: checked_decider(self.store, verifier, identity, policy=policy, caller=caller)[1]
                    for modality, verifier in verifiers.items()}
        samples: dict[str, Embedding] = {}
        decisions: dict[str, Decision] = {}
        for modality, source in sources.items():
            try:
                samples[modality] = verifiers[modality].pipeline.embed(source)
                decisions[modality] = deciders[modality](samples[modality])
            except VerifyError as error:
                record_results(self.store, identity, modality, [error], policy, caller=caller)
                raise
        fused = fuse_llr({modality: decision.calibrated for modality, decision in decisions.items()}, point,
                         {modality: sample.quality_issues for modality, sample in samples.items()}, decisions,
                         floors={modality: self.operating_point(modality, "low").retry_threshold
                                 for modality in sources})
        digests = {modality: sample_digest(source) for modality, source in sources.items()}
        if fused.accepted:
            for modality, sample in samples.items():
                why = self.replay_guard(modality).find(identity, digests[modality], [sample.vector])
                if why:
                    fused = dataclasses.replace(fused, outcome="rejected", reason=why)
                    break
        answers = [record_results(self.store, identity, modality,
                                  [dataclasses.replace(decisions[modality], outcome=fused.outcome, reason=fused.reason)],
                                  policy, caller=caller)[0] for modality in sources]
        for answer in answers:
            if isinstance(answer, VerifyError):  # locked out meanwhile by another caller
                raise answer
        if fused.accepted:
            for modality, sample in samples.items():
                self.replay_guard(modality).remember_accepted(identity, digests[modality], sample)
        return CheckResult(identity, fused.outcome, level, decisions, samples, fused.reason, rule="sum")

    def _fusion_point(self, verifiers: Mapping[str, Verifier], level: str) -> OperatingPoint:
        """The fused LLR thresholds of the level, for the face and voice models in use.

        Raises:
            ConfigError: the shipped fused thresholds are for other models, or a scorer is not calibrated.
        """
        uncalibrated = [modality for modality, verifier in verifiers.items()
                        if not isinstance(verifier.scorer, CalibratedScorer)]
        if uncalibrated:
            raise ConfigError(f"the sum fusion rule needs calibrated LLRs; the {' and '.join(uncalibrated)} "
                              "scorer gives none: use the 'and' rule")
        thresholds = fusion_thresholds()
        models = fusion_model_id(verifiers["face"].pipeline.model_id, verifiers["voice"].pipeline.model_id)
        if thresholds.model_id != models:
            raise ConfigError(f"the shipped fused thresholds are {thresholds.model_id}, not {models}: "
                              "use the 'and' fusion rule")
        return thresholds.operating_point(level)

    @staticmethod
    def _embedder(verifier: Verifier, source: Any, samples: dict[str, Embedding]) -> Callable[[], Embedding]:
        def embed() -> Embedding:
            samples[verifier.pipeline.modality] = verifier.pipeline.embed(source)
            return samples[verifier.pipeline.modality]

        return embed

    def _enrolled_and_unlocked(self, identity: str, modalities: Iterable[str], caller: str | None) -> None:
        """Raise before any model loads when ``identity`` has no template of a modality, or is
        locked out of one (logged as a ``locked`` attempt, as the use cases log it)."""
        for modality in modalities:
            self.store.get(identity, modality)
            ensure_not_locked(self.store, identity, modality, self.settings.lockout, caller=self._caller(caller))

    def check_many(self, name: str, sources: Sequence[Any], modality: str, *, level: str | None = None,
                   caller: str | None = None) -> list[Decision | VerifyError]:
        """Verify many samples of one modality against ``name`` in batches (each one logged and counted).

        Raises:
            UnknownIdentityError, LockedOutError: before the first sample.
        """
        identity = validate_identity(name)
        self._enrolled_and_unlocked(identity, [modality], caller)
        review = ReplayReview(self.replay_guard(modality), identity, sources)
        answers = check_many(self.store, self.verifier(modality, level), identity, sources,
                             policy=self.settings.lockout, adapter=self.adapter(modality),
                             caller=self._caller(caller), review=review)
        review.remember_accepted(answers)
        return answers

    def check_embedded_many(self, name: str, probes: Sequence[Embedding | VerifyError], modality: str, *,
                            sources: Sequence[Any] | None = None, level: str | None = None,
                            caller: str | None = None) -> list[Decision | VerifyError]:
        """:meth:`check_many` of samples embedded elsewhere (a cluster's workers), decided and logged here
        in the order given: the same rules and the same decisions as :meth:`check_many`.

        ``sources`` (aligned with ``probes``: paths readable here, or bytes) give the replay guard
        each sample's digest; without them (or for a path this machine cannot read) copies are
        recognised by their embedding only. With no probes it only checks that ``name`` is enrolled
        and not locked out.

        Raises:
            UnknownIdentityError, LockedOutError: before the first probe.
        """
        identity = validate_identity(name)
        self._enrolled_and_unlocked(identity, [modality], caller)
        review = ReplayReview(self.replay_guard(modality), identity, sources or [None] * len(probes))
        answers = check_embedded_many(self.store, self.verifier(modality, level), identity, probes,
                                      policy=self.settings.lockout, adapter=self.adapter(modality),
                                      caller=self._caller(caller), review=review)
        review.remember_accepted(answers)
        return answers

    # --- 1:N ------------------------------------------------------------------------------------
    def identify(self, *, face: Any = None, voice: Any = None, level: str | None = None,
                 caller: str | None = None) -> IdentifyResult:
        """Who among the enrolled people is this? Named only if every modality given names the same
        person clearly (accepted, and clear of the runner-up).

        Each modality searched is logged as an attempt of ``caller`` and counts towards its throttle.

        Raises:
            ThrottledError: ``caller`` has used up its identifications for now.
            UnknownIdentityError: nobody is enrolled for a modality given.
            VerifyError: a sample is unreadable, has no face or no speech.
        """
        sources = samples_given(face, voice)
        who = self._caller(caller)
        ensure_not_throttled(self.store, who, next(iter(sources)), self.settings.throttle)
        searches, samples = {}, {}
        for modality, source in sources.items():
            verifier = self.verifier(modality, level)
            try:
                samples[modality] = verifier.pipeline.embed(source)
                searches[modality] = self._unless_replay(
                    identify(self.store, verifier, samples[modality], gallery=self.gallery(verifier.pipeline)),
                    modality, source, samples[modality])
            except VerifyError as error:
                record_identification(self.store, who, modality, None, error)
                raise
            record_identification(self.store, who, modality, searches[modality].identity, searches[modality].decision)
        return self._identify_result(searches, samples, self._level(level))

    def identify_embedded(self, probes: Sequence[Embedding | VerifyError], modality: str, *,
                          sources: Sequence[Any] | None = None, level: str | None = None,
                          caller: str) -> list[IdentifyResult | VerifyError]:
        """Bulk 1:N for an operator: identify samples embedded elsewhere, in the order given.

        ``sources`` give the replay guard each sample's digest, as in :meth:`check_embedded_many`.

        Every search is logged for ``caller`` (an error as an error), as :meth:`identify` logs it,
        but **not throttled**: this is an offline job of whoever can open the store (and its key),
        who could read every template anyway; no front end serving other callers may use it. Name
        the job in ``caller`` (the CLI uses ``"cli-bulk:<user>"``) so the audit log shows it.

        Raises:
            UnknownIdentityError: nobody is enrolled for ``modality``.
        """
        verifier = self.verifier(modality, level)
        gallery = self.gallery(verifier.pipeline)
        results: list[IdentifyResult | VerifyError] = []
        logged: list[tuple[str | None, Decision | VerifyError]] = []
        for probe, source in zip(probes, sources or [None] * len(probes)):
            if isinstance(probe, VerifyError):
                results.append(probe)
                logged.append((None, probe))
                continue
            search = self._unless_replay(identify(self.store, verifier, probe, gallery=gallery), modality, source,
                                         probe)
            results.append(self._identify_result({modality: search}, {modality: probe}, self._level(level)))
            logged.append((search.identity, search.decision))
        record_identifications(self.store, caller, modality, logged)
        return results

    def gallery(self, pipeline: Pipeline) -> Gallery:
        """The 1:N gallery of the pipeline's modality and model, opened once and brought up to date;
        on the settings' device (a CUDA device scans large galleries on the GPU: :mod:`verify.search`)."""
        key = GalleryKey(pipeline.modality, pipeline.model_id, pipeline.model_version)
        with self._lock:
            gallery = self._galleries.get(key)
            if gallery is None:
                gallery = self._galleries[key] = Gallery.open(self.store, key, self._gallery_config())
                return gallery
        gallery.refresh(self.store)
        return gallery

    def _gallery_config(self) -> GalleryConfig:
        """The settings' gallery configuration, its index on the settings' device."""
        config = self.settings.gallery
        index = dataclasses.replace(config.index, device=str(select_device(self.settings.device)))
        return dataclasses.replace(config, index=index)

    def _sync_galleries(self, modalities: Sequence[str] | Mapping[str, Any]) -> None:
        """After a delete or a re-enrollment: update loaded galleries and saved ones (a removed vector
        must not stay on disk)."""
        for modality in modalities:
            loaded = [gallery for key, gallery in self._galleries.items() if key.modality == modality]
            for gallery in loaded:
                gallery.refresh(self.store)
            if not loaded:
                Gallery.sync_saved(self.store, modality, self._gallery_config())

    def _unless_replay(self, search: Identification, modality: str, source: Any, probe: Embedding) -> Identification:
        """The search, or nobody named when the probe is a copy of the named person's samples."""
        if search.identity is None:
            return search
        guard, digest = self.replay_guard(modality), sample_digest(source)
        decision = guard.review(search.identity, digest, probe, search.decision)
        if decision.accepted:
            guard.remember_accepted(search.identity, digest, probe)
            return search
        return Identification(None, decision, search.candidates, decision.reason, search.skipped)

    @staticmethod
    def _identify_result(searches: dict, samples: dict, level: str) -> IdentifyResult:
        names = {search.identity for search in searches.values()}
        fused = fuse_and({modality: search.decision for modality, search in searches.items()})
        found = next(iter(names)) if len(names) == 1 and fused.accepted else None
        if found:
            return IdentifyResult(found, "accepted", level, searches, samples)
        reasons = [search.reason for search in searches.values() if search.reason]
        if fused.accepted:
            reasons.append("face and voice name different people")
        outcome = "retry" if fused.outcome == "retry" else "rejected"
        return IdentifyResult(None, outcome, level, searches, samples, "; ".join(reasons))

    # --- live frames ----------------------------------------------------------------------------
    def live_session(self, name: str | None, *, level: str | None = None, caller: str | None = None,
                     strict: bool = False, challenge: bool | None = None, mirrored: bool = False) -> LiveSession:
        """A session a front end feeds webcam frames into, verifying ``name`` (``None``: identify).

        Args:
            strict: also require natural variation between frames.
            challenge: prompt head moves before deciding (default: the settings' ``live_challenge``,
                on unless turned off); without it each frame is decided on its own.
            mirrored: the frames are mirror images (a webcam preview), so the person's left is
                the image's left.
        """
        from enrollment.live import LiveConfig, LiveSession
        from verify.challenge import ChallengeConfig

        identity = validate_identity(name) if name is not None else None
        use_challenge = self.settings.live_challenge if challenge is None else challenge
        config = LiveConfig(ChallengeConfig(mirrored=mirrored) if use_challenge else None,
                            seed=self.settings.challenge_seed, strict=strict)
        return LiveSession(self, identity, self._level(level), self._caller(caller), config)

    def live_voice_session(self, name: str | None, *, level: str | None = None,
                           caller: str | None = None) -> LiveVoiceSession:
        """A session a front end feeds microphone chunks into, verifying ``name`` (``None``: identify)."""
        from enrollment.live_voice import LiveVoiceSession

        identity = validate_identity(name) if name is not None else None
        return LiveVoiceSession(self, identity, self._level(level), self._caller(caller))

    # --- gallery, backups, audit ----------------------------------------------------------------
    def templates(self) -> list[Template]:
        """Every stored template, sorted by identity and modality."""
        return self.store.list_templates()

    def identities(self) -> list[str]:
        """Enrolled names, sorted."""
        return sorted({template.identity for template in self.store.list_templates()})

    def delete(self, name: str, modality: str | None = None) -> int:
        """Delete ``name``'s templates (one modality, or all); returns how many.

        Raises:
            UnknownIdentityError: nothing matched.
        """
        which = None if modality in (None, "", "all") else modality
        deleted = self.store.delete(validate_identity(name), which)
        self._sync_galleries(MODALITIES if which is None else (which,))
        return deleted

    def export_templates(self, path: str | Path) -> int:
        """Write every template to a JSON backup (mode 0600); returns how many."""
        return export_store(self.store, path)

    def import_templates(self, path: str | Path, replace: bool = False) -> int:
        """Restore templates of the shipped models from a backup, all or nothing; returns how many."""
        models = {modality: (model_spec(modality).model_id, model_spec(modality).version) for modality in MODALITIES}
        return import_store(self.store, path, models, replace=replace)

    def audit(self, name: str | None = None, limit: int = 50) -> list[Attempt]:
        """The latest attempts (1:1 and 1:N), newest first, of everyone or of ``name``."""
        return recent_attempts(self.store, limit, name)

    def unlock(self, name: str, modality: str) -> bool:
        """Lift ``name``'s lockout for ``modality``; returns whether one was active."""
        return clear_lockout(self.store, name, modality)

    # --- plumbing -------------------------------------------------------------------------------
    def _caller(self, caller: str | None) -> str:
        return self.settings.caller if caller is None else caller

    def _level(self, level: str | None) -> str:
        return level or self.settings.level

    def close(self) -> None:
        """Close the store; the models are released with the service."""
        self.store.close()

    def __enter__(self) -> Service:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
