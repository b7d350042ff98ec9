"""Client TLS for one registry: which CAs to trust beyond the system's and which client certificate to present
(mTLS). From the options (`--ca-file`, `--cert`/`--key`) and docker's certs.d layout, `<certs.d>/<host>/`: every
`*.crt` is a CA, `client.cert` + `client.key` (any `NAME.cert` with its `NAME.key`) the client certificate."""

from __future__ import annotations

import glob
import os
import ssl
import threading

from ocipush.errors import UsageError
from ocipush.registry.options import RegistryOptions

# Where docker, rootless docker, podman and skopeo look, in that order; `RegistryOptions.certs_dir` replaces them.
CERTS_D = ("/etc/docker/certs.d", "~/.config/docker/certs.d", "/etc/containers/certs.d", "~/.config/containers/certs.d")


def _host_dir(host: str, options: RegistryOptions) -> str | None:
    roots = [options.certs_dir] if options.certs_dir else [os.path.expanduser(root) for root in CERTS_D]
    return next((d for root in roots if os.path.isdir(d := os.path.join(root, host))), None)


def tls_files(host: str, options: RegistryOptions) -> tuple[list[str], tuple[str, str] | None]:
    """(extra CA files, (client cert, key) or None) for registry `host`."""
    cas = [options.ca_file] if options.ca_file else []
    client = (options.cert_file, options.key_file) if options.cert_file and options.key_file else None
    if bool(options.cert_file) != bool(options.key_file):
        raise UsageError("a client certificate needs both its certificate file and its key file")
    directory = _host_dir(host, options)
    if directory is not None:
        cas += sorted(glob.glob(os.path.join(directory, "*.crt")))
        for cert in sorted(glob.glob(os.path.join(directory, "*.cert"))):
            key = cert[: -len(".cert")] + ".key"
            if not os.path.isfile(key):
                raise UsageError(f"{os.path.basename(cert)} in certs.d/{host} has no matching .key file")
            client = client or (cert, key)
    return cas, client


_DEFAULT: ssl.SSLContext | None = None
_DEFAULT_LOCK = threading.Lock()


def _system_context() -> ssl.SSLContext:
    """The system's trust store (SSL_CERT_FILE / SSL_CERT_DIR honoured), loaded once per process (~20 ms); certifi's
    bundle when the system has none (a minimal container image without ca-certificates)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = _verified_context()
        return _DEFAULT


def _verified_context() -> ssl.SSLContext:
    paths = ssl.get_default_verify_paths()
    if any(p and os.path.exists(p) for p in (paths.cafile, paths.capath)):
        return ssl.create_default_context()
    try:
        import certifi
    except ImportError:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


def ssl_context(host: str, options: RegistryOptions, verify: bool) -> ssl.SSLContext:
    """The TLS context for registry `host`: the system's trust store, plus the host's extra CAs and client
    certificate when it has any; no verification at all when `verify` is False (--insecure HOST)."""
    cas, client = tls_files(host, options)
    if verify and not cas and client is None:
        return _system_context()
    if verify:
        context = _verified_context()
        for path in cas:
            try:
                context.load_verify_locations(path)
            except (OSError, ssl.SSLError) as exc:
                raise UsageError(f"cannot load CA file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    else:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if client is not None:
        try:
            context.load_cert_chain(*client)
        except (OSError, ssl.SSLError) as exc:
            names = " / ".join(os.path.basename(p) for p in client)
            why = getattr(exc, "strerror", None) or exc
            raise UsageError(f"cannot load the client certificate {names}: {why}") from None
    return context
