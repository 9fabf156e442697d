"""Train tiny models under several configs; dump rows (minus seconds), warnings and weight hashes."""

import hashlib
import json
import pathlib
import sys

import torch

from aslsr.config import preset
from aslsr.io import load_volume
from aslsr.pyramid import zoom_between
from aslsr.train import train

case_dir = pathlib.Path("/tmp/ref/case")
if not (case_dir / "asl_lr.nii.gz").exists():
    import conftest_tiny

    from aslsr import phantom

    phantom.simulate(case_dir, phantom.PhantomConfig(seed=3, lesion=True, **conftest_tiny.TINY))
asl, nr, t1 = (load_volume(case_dir / f"{r}.nii.gz") for r in ("asl_lr", "asl_nr", "t1w"))
zoom = zoom_between(asl.grid, nr.grid)
configs = {
    "test2": dict(n_scales=2),
    "fastlike": dict(n_scales=2, use_adversarial=False, ema_decay=0.9, grad_clip_relative=5.0),
    "extend": dict(n_scales=2, use_adversarial=False, extend_iterations=40, extend_window=10),
    "generated": dict(input_source="generated"),
    "matched": dict(n_scales=2, input_noise="matched", input_noise_sd=4.0, use_adversarial=False),
}
out = {}
for name, kw in configs.items():
    model = train(asl, t1, config=preset("test", **kw), zoom=zoom, progress=False)
    w = torch.cat([p.detach().flatten() for p in model.generator.parameters()]).numpy()
    rows = [{k: v for k, v in r.items() if k != "seconds"} for r in model.history]
    out[name] = {"hash": hashlib.sha256(w.tobytes()).hexdigest(), "rows": rows, "warnings": model.warnings}
    print(name, out[name]["hash"][:16], len(rows), flush=True)
json.dump(out, open(sys.argv[1], "w"), indent=0, default=float)
