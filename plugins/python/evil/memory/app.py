"""Hostile: allocates until something stops it. The host's memory limit must."""

from floe_plugin import transform_plugin


def transform(config, batch):
    hoard = []
    while True:
        hoard.append(bytearray(16 << 20))


Meta, Transform = transform_plugin(name="evil-memory-py", transform=transform)
