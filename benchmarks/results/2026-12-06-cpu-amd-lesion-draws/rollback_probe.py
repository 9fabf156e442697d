import json

import numpy as np
import torch

import aslsr.networks as networks
import aslsr.stability as stab
import aslsr.train as train
from aslsr.cli import main

LOG = {"data": [], "update": [], "gnorm": []}
live = {}
orig_forward = networks.Generator.forward


def forward(self, *a, **k):
    if torch.is_grad_enabled():
        live["g"] = self
    return orig_forward(self, *a, **k)


networks.Generator.forward = forward
orig_check = stab.Guard.check if hasattr(stab, "Guard") else None
cls = [c for c in vars(stab).values() if isinstance(c, type) and hasattr(c, "check") and hasattr(c, "roll_back")][0]
orig_check = cls.check


def check(self, terms, **k):
    LOG["data"].append(terms.get("data"))
    return orig_check(self, terms, **k)


cls.check = check
orig_data_terms = train.data_terms


def data_terms(generator, batch, *a, **k):
    image, t1, real, weight = batch
    with torch.no_grad():
        out_live = live["g"](image, t1, residual=a[-1] if a else k.get("residual"))
        out_rem = generator(image, t1, residual=a[-1] if a else k.get("residual"))
    np.savez(
        f"/tmp/s18/rep/spike{len(LOG['data'])}.npz",
        image=image.numpy(),
        t1=t1.numpy(),
        real=real.numpy(),
        weight=weight.numpy(),
        live=out_live.float().numpy(),
        rem=out_rem.float().numpy(),
    )
    return orig_data_terms(generator, batch, *a, **k)


train.data_terms = data_terms
orig_step = torch.optim.Adam.step


def step(self, *a, **k):
    before = [p.detach().clone() for g in self.param_groups for p in g["params"]]
    gn = float(
        torch.sqrt(
            sum((p.grad.float() ** 2).sum() for g in self.param_groups for p in g["params"] if p.grad is not None)
        )
    )
    out = orig_step(self, *a, **k)
    after = [p.detach() for g in self.param_groups for p in g["params"]]
    rel = [float((x - y).norm() / (y.norm() + 1e-12)) for x, y in zip(after, before)]
    LOG["update"].append(max(rel))
    LOG.setdefault("per", []).append(rel)
    LOG.setdefault("norms", []).append([float(y.norm()) for y in before])
    LOG.setdefault("grads", []).append(
        [float(p.grad.norm()) if p.grad is not None else 0.0 for g in self.param_groups for p in g["params"]]
    )
    LOG["gnorm"].append(gn)
    return out


torch.optim.Adam.step = step
C = "/tmp/w/cases/hyper-gauss-las"
rc = main(
    [
        "run",
        "--asl",
        f"{C}/asl_lr.nii.gz",
        "--t1",
        f"{C}/t1.nii.gz",
        "--m0",
        f"{C}/m0_lr.nii.gz",
        "--like",
        f"{C}/ref_clean.nii.gz",
        "--out",
        "/tmp/s18/rep/probe_out2",
        "--seed",
        "0",
        "--overwrite",
        "--quiet",
        "--no-register",
        "--config",
        "/tmp/s18/rep/rep.toml",
    ]
)
g = live["g"]
LOG["names"] = [n for n, _ in g.named_parameters()]
json.dump(LOG, open("/tmp/s18/rep/probe.json", "w"))
print("rc", rc)
