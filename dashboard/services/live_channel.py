"""The Redis pub/sub channel every occupancy change is announced on, and the wire settings of the
Server-Sent Events stream that relays it to open pages.

A module of constants with no imports, so that the stream process (``dashboard.push_asgi``) can
read them without loading Flask, SQLAlchemy and the models it never uses (about 50 MB per process).
"""

CHANNEL = "parkops:occupancy"
STREAM_PATH = "/api/v1/occupancy/stream"
HEARTBEAT_SECONDS = 15.0  # a comment this often keeps idle proxies from cutting a stream
RETRY_MS = 3000  # the browser's EventSource reconnects after this long
