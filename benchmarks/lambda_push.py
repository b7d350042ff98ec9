"""The Lambda profile's workload: the library push of an OCI layout, as a Lambda handler would call it.

    python lambda_push.py oci:DIR:tag HOST/REPO:tag

Run by bench.py under a read-only HOME and project tree, a writable temp dir and an address-space cap.
"""

from __future__ import annotations

import sys

from ocipush.api import push
from ocipush.registry.options import RegistryOptions


def main() -> None:
    source, target = sys.argv[1:3]
    result = push(source, target, options=RegistryOptions())
    print(result)


if __name__ == "__main__":
    main()
