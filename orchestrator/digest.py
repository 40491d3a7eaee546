"""SHA-256 for the keys every kto start computes (job ids, the YAML and initramfs caches).

`import hashlib` initialises OpenSSL's libcrypto: ~3 ms, a share of each boot's overhead
(issue 12). CPython's built-in SHA-256 gives the same digests without it; large inputs
(kernel trees, archives) still go through hashlib elsewhere.
"""

from __future__ import annotations

try:
    from _sha2 import sha256  # type: ignore[import-not-found,unused-ignore]  # CPython 3.12+
except ImportError:
    try:
        from _sha256 import sha256  # type: ignore[import-not-found,no-redef,unused-ignore]
    except ImportError:  # not CPython
        from hashlib import sha256  # type: ignore[assignment,no-redef,unused-ignore]


def hexdigest(data: bytes) -> str:
    return str(sha256(data).hexdigest())
