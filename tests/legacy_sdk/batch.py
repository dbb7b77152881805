"""Scenario d: a batch of single pushes, as the vendor's pushMessageToSingleBatch example
(add, submit, and retry on failure), built with BatchImpl(appKey, push) because
IGeTui.getBatch() is broken in 4.1.1.2 (quirk 2). After submit() the script calls retry(),
which re-sends the identical body (same requestId): both answers must be ok, with one
{"result": "ok", "taskId": ...} per seqId in `info`, and the retry must answer the same.

Env: HOST APPKEY MASTERSECRET APPID, CIDS_FILE (one cid a line).
"""

from legacy_common import (APPKEY, QUEUED_STATUSES, cids_from_env, client, emit, expect, expect_ok, finish,
                           target, transmission_template)


def check(step, answer, n):
    expect_ok(step, answer, "info")
    info = answer["info"]
    expect(isinstance(info, dict), "%s: info is %r, not a map by seqId" % (step, type(info)))
    expect(sorted(info) == sorted(str(i) for i in range(n)),
           "%s: info is keyed %r..., not by the seqIds 0..%d" % (step, sorted(info)[:5], n - 1))
    for seq, item in info.items():
        expect(isinstance(item, dict) and item.get("result") == "ok" and item.get("taskId"),
               "%s: item %s is %r" % (step, seq, item))
        expect(item.get("status") in QUEUED_STATUSES, "%s: item %s has status %r" % (step, seq, item.get("status")))


def summary(answer):
    """The answer with `info` shortened to its size, statuses and first items."""
    if not isinstance(answer, dict) or not isinstance(answer.get("info"), dict):
        return answer
    info = answer["info"]
    statuses = {}
    for item in info.values():
        s = item.get("status") if isinstance(item, dict) else repr(item)
        statuses[s] = statuses.get(s, 0) + 1
    task_ids = {item.get("taskId") for item in info.values() if isinstance(item, dict)}
    short = dict(answer)
    short["info"] = {"items": len(info), "statuses": statuses, "distinctTaskIds": len(task_ids),
                     "first": {k: info[k] for k in sorted(info, key=lambda k: int(k) if k.isdigit() else -1)[:2]}}
    return short


def main():
    cids = cids_from_env("CIDS_FILE")
    push = client()

    from gt_push_sdk.BatchImpl import BatchImpl
    from gt_push_sdk.igetui.igt_message import IGtSingleMessage

    batch = BatchImpl(APPKEY, push)  # quirk 2
    for i, cid in enumerate(cids):
        message = IGtSingleMessage()
        message.isOffline = True
        message.offlineExpireTime = 1000 * 3600 * 12
        message.data = transmission_template('{"legacy":"batch","n":%d}' % i)
        message.pushNetWorkType = 0
        batch.add(message, target(cid))

    first = batch.submit()
    emit("batch_submit", summary(first), items=len(cids), batchId=batch.getBatchId())
    check("batch_submit", first, len(cids))

    again = batch.retry()
    emit("batch_retry", summary(again), items=len(cids))
    check("batch_retry", again, len(cids))
    for seq, item in first["info"].items():
        expect(again["info"][seq]["taskId"] == item["taskId"],
               "batch_retry: seqId %s got taskId %r, the submit %r" % (seq, again["info"][seq]["taskId"], item["taskId"]))


if __name__ == "__main__":
    main()
    finish()
