"""supervisord as ``rosey run`` starts it: the same ``main``, without OpenSSL.

supervisord here only serves XML-RPC on a Unix socket and spawns processes, but
``supervisor.xmlrpc`` imports ``xmlrpc.client`` → ``http.client`` → ``ssl`` and
``hashlib`` → ``_hashlib``, which map and initialise libssl and libcrypto: 4.7 MiB of the
25 MiB it holds.  Both modules cope with their absence (``http.client`` and ``hashlib``
import them in ``try``), so hiding them costs nothing: password hashing falls back to
the built-in ``_sha1``, and there is no TLS to speak.
"""

import sys


def main() -> None:
    for name in ("ssl", "_ssl", "_hashlib"):
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # "import ssl" fails
    from supervisor.supervisord import main as supervisord

    supervisord()


if __name__ == "__main__":
    main()
