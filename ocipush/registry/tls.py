"""Client TLS for one registry: which CAs to trust beyond the system's and which client certificate to present
(mTLS). From the options (`--ca-file`, `--cert`/`--key`) and docker's certs.d layout, `<certs.d>/<host>/`: every
`*.crt` is a CA, `client.cert` + `client.key` (any `NAME.cert` with its `NAME.key`) the client certificate."""

from __future__ import annotations

import glob
import os
import ssl

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


def ssl_context(host: str, options: RegistryOptions, verify: bool) -> ssl.SSLContext | bool:
    """What httpx's `verify` gets for `host`: True/False when nothing host-specific applies (the system's trust
    store, or none), else a context with the extra CAs and the client certificate."""
    cas, client = tls_files(host, options)
    if not cas and client is None:
        return verify
    context = ssl.create_default_context()
    if verify:
        for path in cas:
            try:
                context.load_verify_locations(path)
            except (OSError, ssl.SSLError) as exc:
                raise UsageError(f"cannot load CA file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    else:
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
