"""Per-user adapted scorer parameters, stored beside the template they were adapted to.

The ``adapted`` table's rows are removed with their template (a trigger, see
:mod:`enrollment.schema`); rows made from an older template are told apart by
``template_updated_at``. With a key they are sealed like templates.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from enrollment.crypto import associated_data
from enrollment.errors import TemplateIntegrityError, UnknownIdentityError
from enrollment.store import TemplateStore
from enrollment.template import validate_identity, validate_modality


@dataclass(frozen=True)
class AdaptedParams:
    """One identity's adapted scorer: flat float32 ``params`` ``(P,)`` made by ``method`` from the
    checkpoint with sha256 ``checkpoint``, for the template as of ``template_updated_at``;
    ``guard`` is the JSON record of whether adaptation was kept or fell back."""

    identity: str
    modality: str
    method: str
    checkpoint: str
    params: np.ndarray
    guard: str
    template_updated_at: float
    created_at: float


def _bound_data(adapted: AdaptedParams, size: int) -> bytes:
    return associated_data(adapted.identity, adapted.modality, f"adapted:{adapted.method}",
                           f"{adapted.checkpoint}:{adapted.guard}:{adapted.template_updated_at!r}", size, 1)


def save_adapted(store: TemplateStore, adapted: AdaptedParams) -> None:
    """Store (replace) the adapted parameters of an enrolled template; sealed under the key.

    Raises:
        UnknownIdentityError: no template is enrolled for that identity and modality.
    """
    identity, modality = validate_identity(adapted.identity), validate_modality(adapted.modality)
    params = np.ascontiguousarray(adapted.params, dtype="<f4").reshape(-1)
    blob, seal = store.seal(params.tobytes(), _bound_data(adapted, params.size))
    with store.transaction(write=True) as connection:
        if not store.select_templates(connection, "WHERE identity = ? AND modality = ?", (identity, modality)):
            raise UnknownIdentityError(f"no {modality} template enrolled for {identity!r}")
        connection.execute(
            "INSERT OR REPLACE INTO adapted VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (identity, modality, adapted.method, adapted.checkpoint, blob, params.size,
             adapted.guard, adapted.template_updated_at, adapted.created_at, seal),
        )


def load_adapted(store: TemplateStore, identity: str, modality: str) -> AdaptedParams | None:
    """The adapted parameters stored for a template, or ``None`` when there are none.

    Raises:
        TemplateIntegrityError: the row's sealing does not match the store's key, or it fails
            authentication.
    """
    identity, modality = validate_identity(identity), validate_modality(modality)
    with store.transaction() as connection:
        row = connection.execute(
            "SELECT method, checkpoint, params, dim, guard, template_updated_at, created_at, seal"
            " FROM adapted WHERE identity = ? AND modality = ?", (identity, modality),
        ).fetchone()
    if row is None:
        return None
    method, checkpoint, blob, dim, guard, updated, created, seal = row
    adapted = AdaptedParams(identity, modality, method, checkpoint, np.empty(0), guard, updated, created)
    what = f"enrollment store {store.path}: adapted parameters of {identity!r} ({modality})"
    if store.encrypted != (seal is not None):
        state = "sealed but the store was opened without a key" if seal is not None else "not sealed"
        raise TemplateIntegrityError(f"{what} are {state}; they were not used")
    blob = store.unseal(blob, seal, _bound_data(adapted, dim), what)
    return dataclasses.replace(adapted, params=np.frombuffer(blob, dtype="<f4").astype(np.float32))
