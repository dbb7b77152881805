"""Scenario f: cid <-> pn bindings, as the vendor's bindCidPn / queryCidPn / unbindCidPn
examples (pn = md5 of the phone number, 32 lowercase hex), with the per-cid codes of
"pn与cid操作的相关状态码": 0 success, 5 cid empty, 6 pn empty, 7 the cid has no pn.

Env: HOST APPKEY MASTERSECRET APPID,
  CID1, CID2 and PHONE1, PHONE2: cids whose numbers the harness bound through /v1 first;
  CID3: a cid bound to nothing.
At the end CID1 is unbound and CID2 stays bound.
"""

import hashlib

from legacy_common import APPID, client, emit, expect, finish, setting


def md5(text):
    return hashlib.md5(text.encode()).hexdigest()


def codes(step, answer):
    """{cid: code} of an answer {"result": "0", "batchRet": [{"cid", "code"}, ...]}."""
    expect(isinstance(answer, dict), "%s: the SDK answered %r" % (step, answer))
    expect(str(answer.get("result")) == "0", "%s: result is %r, not \"0\"" % (step, answer.get("result")))
    rets = answer.get("batchRet")
    expect(isinstance(rets, list), "%s: batchRet is %r, not a list" % (step, rets))
    return {r.get("cid"): str(r.get("code")) for r in rets}


def main():
    cid1, cid2, cid3 = setting("CID1"), setting("CID2"), setting("CID3")
    pn1, pn2 = md5(setting("PHONE1")), md5(setting("PHONE2"))
    push = client()

    bound = push.bindCidPn(APPID, {cid1: pn1, cid2: pn2})
    emit("bind", bound)
    got = codes("bind", bound)
    expect(got == {cid1: "0", cid2: "0"}, "bind: codes %r, expected 0 for both" % got)

    empty_cid = push.bindCidPn(APPID, {"": pn1})
    emit("bind_empty_cid", empty_cid)
    got = codes("bind_empty_cid", empty_cid)
    expect(list(got.values()) == ["5"], "bind with an empty cid: codes %r, expected 5" % got)

    empty_pn = push.bindCidPn(APPID, {cid3: ""})
    emit("bind_empty_pn", empty_pn)
    got = codes("bind_empty_pn", empty_pn)
    expect(got == {cid3: "6"}, "bind with an empty pn: codes %r, expected 6" % got)

    queried = push.queryCidPn(APPID, [cid1, cid2, cid3])
    emit("query", queried)
    got = codes("query", queried)
    expect(got == {cid1: "0", cid2: "0", cid3: "7"}, "query: codes %r, expected 0, 0, 7" % got)
    pns = {r["cid"]: r.get("pn") for r in queried["batchRet"]}
    expect(pns[cid1] == pn1 and pns[cid2] == pn2, "query: pn %r, expected the md5s %r" % (pns, [pn1, pn2]))

    unbound = push.unbindCidPn(APPID, [cid1, cid3])
    emit("unbind", unbound)
    got = codes("unbind", unbound)
    expect(got == {cid1: "0", cid3: "7"}, "unbind: codes %r, expected 0 and 7 (cid3 was never bound)" % got)

    again = push.queryCidPn(APPID, [cid1, cid2])
    emit("query_after_unbind", again)
    got = codes("query_after_unbind", again)
    expect(got == {cid1: "7", cid2: "0"}, "query after unbind: codes %r, expected 7 and 0" % got)


if __name__ == "__main__":
    main()
    finish()
