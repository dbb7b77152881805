"""Scenario a: pushMessageToSingle with a TransmissionTemplate, then the SAME call again with
the same requestId (the SDK's third argument, what the vendor's example passes when retrying
after a RequestException). Both answers must be result ok with one taskId.

Env: HOST APPKEY MASTERSECRET APPID, CID (the recipient).
"""

import uuid

from legacy_common import (APPID, PUSH_STATUSES, client, emit, expect, expect_ok, finish, setting, target,
                           transmission_template)


def main():
    cid = setting("CID")
    push = client()

    from gt_push_sdk.igetui.igt_message import IGtSingleMessage

    message = IGtSingleMessage()
    message.isOffline = True
    message.offlineExpireTime = 1000 * 3600 * 12
    message.data = transmission_template('{"legacy":"single","透传":"内容"}')
    message.pushNetWorkType = 0

    request_id = str(uuid.uuid1())
    first = push.pushMessageToSingle(message, target(cid), request_id)
    emit("push_single", first, requestId=request_id, appId=APPID)
    expect_ok("push_single", first, "taskId")
    expect(first.get("status") in PUSH_STATUSES, "push_single: status %r" % first.get("status"))

    # The retry of the vendor's example: the same message, target and requestId.
    again = push.pushMessageToSingle(message, target(cid), request_id)
    emit("push_single_again", again, requestId=request_id)
    expect_ok("push_single_again", again, "taskId")
    expect(again["taskId"] == first["taskId"],
           "the retry with the same requestId got taskId %r, the first call %r" % (again["taskId"], first["taskId"]))


if __name__ == "__main__":
    main()
    finish()
