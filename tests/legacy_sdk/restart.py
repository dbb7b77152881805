"""Retries across a daemon restart: the vendor's examples retry a failed pushMessageToSingle
with its requestId, and a failed batch with retry() (the same body, same requestId). Run twice
by the harness, which restarts the daemon (same store, same port) in between:

  first: pushMessageToSingle(message, target, requestId) and a BatchImpl of the CIDS_FILE cids,
         submit(); saves the requestId, the answers and the batch's last body in STATE_FILE;
  again: the same pushMessageToSingle with the saved requestId, and retry() of a BatchImpl
         holding the saved body (what the first process's BatchImpl would re-send): the same
         taskIds as before the restart.

Env: HOST APPKEY MASTERSECRET APPID, CID, CIDS_FILE, STATE_FILE; argv[1] "first" or "again".
"""

import json
import sys
import uuid

from legacy_common import (APPKEY, PUSH_STATUSES, QUEUED_STATUSES, cids_from_env, client, emit, expect, expect_ok,
                           finish, setting, target, transmission_template)


def single_message():
    from gt_push_sdk.igetui.igt_message import IGtSingleMessage

    message = IGtSingleMessage()
    message.isOffline = True
    message.offlineExpireTime = 1000 * 3600 * 12
    message.data = transmission_template('{"legacy":"restart"}')
    return message


def check_batch(step, answer, n):
    expect_ok(step, answer, "info")
    info = answer["info"]
    expect(sorted(info) == sorted(str(i) for i in range(n)), "%s: info keys %r" % (step, sorted(info)[:5]))
    for seq, item in info.items():
        expect(item.get("result") == "ok" and item.get("taskId") and item.get("status") in QUEUED_STATUSES,
               "%s: item %s is %r" % (step, seq, item))


def main():
    phase = sys.argv[1] if len(sys.argv) > 1 else ""
    expect(phase in ("first", "again"), "usage: restart.py first|again")
    cid, cids, state_file = setting("CID"), cids_from_env("CIDS_FILE"), setting("STATE_FILE")
    push = client()

    from gt_push_sdk.BatchImpl import BatchImpl

    if phase == "first":
        request_id = str(uuid.uuid1())
        single = push.pushMessageToSingle(single_message(), target(cid), request_id)
        emit("single_first", single, requestId=request_id)
        expect_ok("single_first", single, "taskId")
        expect(single.get("status") in PUSH_STATUSES, "single_first: status %r" % single.get("status"))

        batch = BatchImpl(APPKEY, push)  # quirk 2
        for c in cids:
            batch.add(single_message(), target(c))
        submitted = batch.submit()
        emit("batch_first", {"result": submitted.get("result"), "items": len(submitted.get("info", {}))}
             if isinstance(submitted, dict) else submitted)
        check_batch("batch_first", submitted, len(cids))
        with open(state_file, "w", encoding="utf-8") as f:
            json.dump({"requestId": request_id, "single": single, "batchPost": batch.lastPostData,
                       "batch": submitted}, f)
        return

    with open(state_file, encoding="utf-8") as f:
        saved = json.load(f)
    single = push.pushMessageToSingle(single_message(), target(cid), saved["requestId"])
    emit("single_again", single, requestId=saved["requestId"])
    expect_ok("single_again", single, "taskId")
    expect(single["taskId"] == saved["single"]["taskId"],
           "single_again: taskId %r, before the restart %r" % (single["taskId"], saved["single"]["taskId"]))

    batch = BatchImpl(APPKEY, push)
    batch.lastPostData = saved["batchPost"]  # what the first process's BatchImpl would re-send
    again = batch.retry()
    emit("batch_again", {"result": again.get("result"), "items": len(again.get("info", {}))}
         if isinstance(again, dict) else again)
    check_batch("batch_again", again, len(cids))
    changed = [s for s, item in saved["batch"]["info"].items() if again["info"][s]["taskId"] != item["taskId"]]
    expect(not changed, "batch_again: seqIds %r got other taskIds than before the restart" % changed[:5])


if __name__ == "__main__":
    main()
    finish()
