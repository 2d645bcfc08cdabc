"""Split a batch axis across every device with jax.sharding (one device: nothing to do)."""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def batch_sharding():
    """A NamedSharding that splits axis 0 over all local devices, or None with a single device."""
    devices = jax.local_devices()
    if len(devices) < 2:
        return None
    return NamedSharding(Mesh(np.asarray(devices), ("batch",)), PartitionSpec("batch"))


def round_up(size: int, sharding) -> int:
    """The smallest multiple of the device count at least ``size`` (sharded chunks divide evenly)."""
    k = 1 if sharding is None else sharding.mesh.size
    return -(-size // k) * k


def put(x, sharding):
    """x on the devices, split along axis 0 when sharded."""
    return jax.device_put(x) if sharding is None else jax.device_put(x, sharding)
