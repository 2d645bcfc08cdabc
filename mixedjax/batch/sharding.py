"""Split a batch axis across every device with jax.sharding (one device: nothing to do)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
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


def on_devices(fn, mesh, items, count, *shared):
    """``fn(items, count, *shared)`` (a chunk of fits whose first ``count`` items are real), or with a mesh of several
    devices, ``fn`` on each device's share of the items (jax.shard_map: every device runs its own lanes), the
    ``shared`` arguments replicated."""
    if mesh is None:
        return fn(items, count, *shared)
    per = items.shape[0] // mesh.size
    counts = jnp.clip(count - per * jnp.arange(mesh.size, dtype=jnp.int32), 0, per).astype(jnp.int32)
    spec = PartitionSpec("batch")
    return jax.shard_map(lambda it, c, *sh: fn(it, c[0], *sh), mesh=mesh,
                         in_specs=(spec, spec) + (PartitionSpec(),) * len(shared), out_specs=spec,
                         check_vma=False)(items, counts, *shared)
