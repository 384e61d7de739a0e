"""Fit the voice probes' condition compensation (:mod:`verify.compensation`) on the calibration people.

Every calibration file is embedded clean and under the calibration conditions, as
``scripts/calibrate.py`` embeds them (same seed and cache). The shift of each degraded sample from
its clean recording is regressed on the ramps' weights (:data:`verify.compensation.DEFAULT_RAMPS`:
noise by estimated SNR, echo by decay), one direction per ramp by least squares
(:func:`verify.compensation_fit.fit_directions`). The script prints, and records in the file's
provenance, how far the samples moved along each direction by bins of its measure: the profile
that places the ramps' ends. Writes ``assets/models/<model_id>.compensation.json``; run
``scripts/calibrate.py --modality voice`` (then ``calibrate_narrowband.py`` and
``calibrate_fusion.py``) after it, since they fit on compensated probes. Evaluation people are
never used.

    python scripts/calibrate_compensation.py [--data ../shared/data] [--cache .cache/calibration]
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from calibrate import FIT_SETS, IDENTITIES_NOTE, voice_calibration_set  # noqa: E402

from verify.compensation import DEFAULT_RAMPS, ProbeCompensation, save_compensation  # noqa: E402
from verify.compensation_fit import fit_directions, shift_profile, shifts  # noqa: E402
from verify.models import model_spec  # noqa: E402

PROFILE_EDGES = {"snr_db": [-50, 0, 5, 8, 10, 15, 20, 25, 99], "decay_db": [-60, -20, -15, -12, -10, -8, -7, -6, -4, 10]}


def main() -> None:
    _, pipeline, samples = voice_calibration_set(__doc__.splitlines()[0])
    spec = model_spec("voice")
    (dataset,) = FIT_SETS["voice"]
    moved, measures = shifts(samples)
    directions = fit_directions(moved, measures, DEFAULT_RAMPS)
    profiles = {ramp.measure: shift_profile(moved, measures, direction, ramp.measure, PROFILE_EDGES[ramp.measure])
                for ramp, direction in zip(DEFAULT_RAMPS, directions)}
    weighed = {ramp.measure: int((ramp.weights(measures[ramp.measure]) > 0).sum()) for ramp in DEFAULT_RAMPS}
    print(json.dumps({"degraded samples": len(moved), "weighed by each ramp": weighed, "shift along each direction": profiles},
                     indent=1))
    provenance = {
        "data": [dataset], "identities": IDENTITIES_NOTE, "model_version": pipeline.model_version,
        "fitted_on": {"degraded_samples": len(moved), "weighed_by_ramp": weighed},
        "direction_norms": {ramp.measure: round(float((direction**2).sum() ** 0.5), 4)
                            for ramp, direction in zip(DEFAULT_RAMPS, directions)},
        "shift_profiles": profiles,
        "command": "python scripts/calibrate_compensation.py", "date": datetime.date.today().isoformat(),
    }
    path = spec.compensation_path()
    save_compensation(path, ProbeCompensation(spec.model_id, DEFAULT_RAMPS, directions, provenance))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
