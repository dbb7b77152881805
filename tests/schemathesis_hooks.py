# Schemathesis hooks for tests/api_contract.rs (loaded through SCHEMATHESIS_HOOKS).
#
# Schemathesis has no serializer for NDJSON, which the recipient upload and the cid-pn import
# take. The document describes those bodies as text (a JSON object a line), so a generated body
# is a string, sent as its UTF-8 bytes; anything else (negative testing may generate any JSON
# value) goes out as one line of JSON.
import json

import schemathesis


@schemathesis.serializer("application/x-ndjson", "application/ndjson")
def ndjson(ctx, value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return (json.dumps(value) + "\n").encode("utf-8")
