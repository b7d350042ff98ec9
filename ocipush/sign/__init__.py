"""cosign-compatible signing and verification, offline: key files (cosign's encrypted format), AWS KMS keys, the
simple-signing payload, signatures stored as cosign stores them (the `sha256-<hex>.sig` tag) or as OCI 1.1
referrers. Keyless signing (Fulcio certificates, Rekor entries) needs those online services and is not done;
annotations it leaves on a signature layer (certificate, chain, bundle) are kept untouched when appending."""
