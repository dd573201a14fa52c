"""Hostile: never returns from `push`. The host's deadline must stop it."""

from floe_plugin import transform_plugin


def transform(config, batch):
    while True:
        pass


Meta, Transform = transform_plugin(name="evil-loop-py", transform=transform)
