"""Which torch device the models run on: the `device` key of params.yaml turned into a torch.device.

`auto` takes CUDA, then Apple's MPS, then the CPU. The availability checks are parameters
(defaulting to torch's own) so the choice can be tested on a machine that has neither."""

from __future__ import annotations

import logging

import torch

from augflow.errors import AugflowError

log = logging.getLogger("augflow.device")

DEVICES = ("auto", "cpu", "cuda", "mps")
_announced: set[tuple[str, str]] = set()   # (setting, choice) pairs already logged


def _mps_available() -> bool:
    # torch.backends.mps exists on every build since 1.12, but only reports True on Apple silicon
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(setting: str = "auto", *, cuda_available: bool | None = None,
                   mps_available: bool | None = None) -> torch.device:
    """The device for `setting` (auto, cpu, cuda, mps). Asking for an accelerator this machine
    lacks is an error, not a silent fall back to the CPU: the user asked for speed on purpose."""
    if setting not in DEVICES:
        raise AugflowError(f"unknown device {setting!r}", file="params.yaml", field="device",
                           rule="one of " + ", ".join(DEVICES))
    cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    mps = _mps_available() if mps_available is None else mps_available
    if setting == "auto":
        chosen = "cuda" if cuda else "mps" if mps else "cpu"
    elif (setting == "cuda" and not cuda) or (setting == "mps" and not mps):
        raise AugflowError(f"{setting} was asked for but this machine has no {setting} device "
                           "torch can use; set device: auto or cpu", file="params.yaml",
                           field="device", rule="available device")
    else:
        chosen = setting
    if (setting, chosen) not in _announced:   # once per process: lowdata resolves per stage
        _announced.add((setting, chosen))
        log.info("models run on %s (device: %s)", chosen, setting)
    return torch.device(chosen)


def module_device(module: torch.nn.Module) -> torch.device:
    """Where a module's weights live (the CPU for a module without any)."""
    param = next(module.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def state_on_cpu(state: dict) -> dict:
    """A module's fresh state_dict with every tensor on the CPU, changed in place and returned.

    In place, not rebuilt: the OrderedDict's `_metadata` (module versions, read back by
    load_state_dict) stays, and on the CPU nothing changes at all, so a checkpoint written
    from it has the same bytes as one written from the state_dict itself."""
    for key in list(state):
        state[key] = state[key].cpu()   # the same tensor when it is already there
    return state
