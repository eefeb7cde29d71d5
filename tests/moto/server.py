"""moto's server, with S3's conditional writes made atomic as they are on S3.

moto checks `If-None-Match: *` (and `If-Match`) and then stores the object in two steps, on
a server that handles requests on many threads: two concurrent conditional puts of one key
can both pass the check. The window is short (under the GIL it is rarely hit), but a test of
concurrent writers must not depend on luck. On S3 exactly one succeeds and the other gets 412, and the
pipeline's exactly-once writes (detect's alerts, notify's claims and delivery markers) rest
on that, so the tests start moto through this script, which makes each PutObject one step.

Usage: python tests/moto/server.py -H 127.0.0.1 -p PORT (moto_server's arguments).
"""

import sys
import threading

from moto.s3.responses import S3Response
from moto.server import main

_put_object = S3Response.put_object
_one_put_at_a_time = threading.Lock()


def put_object(self, *args, **kwargs):
    # The check and the write of one PutObject happen with no other PutObject in between.
    with _one_put_at_a_time:
        return _put_object(self, *args, **kwargs)


S3Response.put_object = put_object

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
