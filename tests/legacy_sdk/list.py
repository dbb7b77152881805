"""Scenario b: getContentId(template, "group-name"), then pushMessageToList of every cid in
calls of at most 1000 (the SDK's synchronous limit) with needDetails on, as the vendor's
example does with putenv("gexin_pushList_needDetails=true").

Env: HOST APPKEY MASTERSECRET APPID, CIDS_FILE (one cid a line), GROUP (task group name).
"""

import os

from legacy_common import (QUEUED_STATUSES, cids_from_env, client, emit, expect, expect_ok, finish,
                           link_template, setting, target)

# The SDK reads this at each pushMessageToList (GtConfig.isPushListNeedDetails: "needDetails",
# else the old "gexin_pushList_needDetails"); it is sent as the string "true".
os.environ["needDetails"] = "true"


def main():
    cids = cids_from_env("CIDS_FILE")
    group = setting("GROUP")
    push = client()

    from gt_push_sdk.igetui.igt_message import IGtListMessage

    message = IGtListMessage()
    message.isOffline = True
    message.offlineExpireTime = 1000 * 3600 * 12
    message.data = link_template("春季促销", "全场八折，今日有效", "https://example.com/sale")
    message.pushNetWorkType = 0

    content_id = push.getContentId(message, group)
    emit("get_content_id", {"contentId": content_id}, group=group)
    expect(isinstance(content_id, str) and content_id != "", "getContentId returned %r" % content_id)

    sent = 0
    for start in range(0, len(cids), 1000):
        part = cids[start:start + 1000]
        answer = push.pushMessageToList(content_id, [target(c) for c in part])
        details = answer.get("details") if isinstance(answer, dict) else None
        # The details map is long: print its size and the statuses it uses, not every cid.
        summary = dict(answer) if isinstance(answer, dict) else answer
        if isinstance(details, dict):
            statuses = {}
            for status in details.values():
                statuses[status] = statuses.get(status, 0) + 1
            summary["details"] = {"cids": len(details), "statuses": statuses}
        emit("push_list", summary, cids=len(part), first=start)
        expect_ok("push_list", answer)
        expect(answer.get("contentId") == content_id,
               "push_list answered contentId %r for %r" % (answer.get("contentId"), content_id))
        expect(isinstance(details, dict), "needDetails is on but the answer has no details map: %r" % summary)
        expect(set(details) == set(part), "details name %d cids, the call sent %d (or other ones)"
               % (len(details), len(part)))
        bad = [s for s in details.values() if s not in QUEUED_STATUSES]
        expect(not bad, "details hold statuses outside %r: %r" % (QUEUED_STATUSES, bad[:5]))
        sent += len(part)
    emit("done", {"cids": sent, "contentId": content_id})


if __name__ == "__main__":
    main()
    finish()
