"""Hostile: tries a file (`probe_path` and /etc/passwd), the environment
(`FLOE_TEST_SECRET`, every variable) and the network (`addr`, TCP), and
logs what each attempt got. CPython's os, socket and open() sit on WASI,
which the host links granting nothing. The batches pass through unchanged."""

import os
import socket

from floe_plugin import log, transform_plugin


def attempt(what, f):
    try:
        log("warn", f"escape {what}: got {f()!r}")
    except BaseException as error:  # whatever the platform raises
        log("warn", f"escape {what}: refused ({type(error).__name__}: {error})")


def transform(config, batch):
    attempt("read /etc/passwd", lambda: open("/etc/passwd").read(64))
    attempt("read secret", lambda: open(config.get("probe_path", "/nonexistent")).read())
    attempt("env FLOE_TEST_SECRET", lambda: os.environ.get("FLOE_TEST_SECRET", "unset"))
    attempt("env count", lambda: len(os.environ))
    host, port = config.get("addr", "127.0.0.1:9").rsplit(":", 1)
    attempt("tcp connect", lambda: socket.create_connection((host, int(port)), timeout=1))
    return batch


Meta, Transform = transform_plugin(name="evil-escape-py", transform=transform)
