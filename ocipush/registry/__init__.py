"""The OCI distribution v2 protocol: transport, auth, blob/manifest calls, chunked uploads and verified downloads."""
