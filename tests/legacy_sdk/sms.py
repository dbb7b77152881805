"""Scenario g: SMS fallback (短信补量) through the SDK, as the vendor's pushMessageToSingle
example with setSmsInfo: bindCidPn(appId, {cid: md5(phone)}) (the harness bound the real
number through campaignd's /v1 API first), then a TransmissionTemplate with an SmsMessage
(template 1234567, {"name": "张三", "money": "12"} in that order, offlineSendtime OFFLINE_MS,
isApplink = False: quirk 4, the SDK defaults it to True and then demands a url) pushed to the
cid. The answer must be result ok with smsResult accept.

With CID2 and PHONE2 set, a second push to CID2 names an SMS template that does not exist
(9999999): per the vendor's page, the push goes out all the same and the answer says
smsResult error with an smsResultMsg.

Env: HOST APPKEY MASTERSECRET APPID, CID, PHONE, OFFLINE_MS (default 3000); CID2, PHONE2.
"""

import hashlib
import os

from legacy_common import (APPID, PUSH_STATUSES, client, emit, expect, expect_ok, finish, setting, target,
                           transmission_template)


def main():
    cid = setting("CID")
    phone = setting("PHONE")
    offline_ms = int(os.environ.get("OFFLINE_MS", "3000"))
    push = client()

    bound = push.bindCidPn(APPID, {cid: hashlib.md5(phone.encode()).hexdigest()})
    emit("bind", bound)
    expect(isinstance(bound, dict) and str(bound.get("result")) == "0", "bind: %r" % (bound,))
    expect([str(r.get("code")) for r in bound.get("batchRet", [])] == ["0"], "bind: %r" % (bound,))

    from gt_push_sdk.igetui.igt_message import IGtSingleMessage
    from gt_push_sdk.igetui.template.notify.igt_smsmessage import SmsMessage

    sms = SmsMessage()
    sms.setSmsTemplateId("1234567")
    sms.setSmsContent({"name": "张三", "money": "12"})
    sms.setOfflineSendtime(offline_ms)
    sms.isApplink = False  # quirk 4

    template = transmission_template('{"legacy":"sms"}')
    template.setSmsInfo(sms)

    message = IGtSingleMessage()
    message.isOffline = True
    message.offlineExpireTime = 1000 * 3600 * 2
    message.data = template
    message.pushNetWorkType = 0

    answer = push.pushMessageToSingle(message, target(cid))
    emit("push_single_sms", answer, smsTemplateId="1234567", offlineSendtime=offline_ms)
    expect_ok("push_single_sms", answer, "taskId")
    expect(answer.get("status") in PUSH_STATUSES, "push_single_sms: status %r" % answer.get("status"))
    expect(answer.get("smsResult") == "accept",
           "push_single_sms: smsResult %r (%r), expected accept" % (answer.get("smsResult"), answer.get("smsResultMsg")))

    cid2, phone2 = os.environ.get("CID2"), os.environ.get("PHONE2")
    if not cid2 or not phone2:
        return
    bound = push.bindCidPn(APPID, {cid2: hashlib.md5(phone2.encode()).hexdigest()})
    emit("bind_2", bound)
    expect([str(r.get("code")) for r in bound.get("batchRet", [])] == ["0"], "bind_2: %r" % (bound,))
    unknown = SmsMessage()
    unknown.setSmsTemplateId("9999999")
    unknown.setSmsContent({"name": "李四", "money": "3"})
    unknown.setOfflineSendtime(offline_ms)
    unknown.isApplink = False  # quirk 4
    template2 = transmission_template('{"legacy":"sms-unknown-template"}')
    template2.setSmsInfo(unknown)
    message.data = template2
    answer = push.pushMessageToSingle(message, target(cid2))
    emit("push_single_sms_unknown_template", answer, smsTemplateId="9999999")
    expect_ok("push_single_sms_unknown_template", answer, "taskId")
    expect(answer.get("smsResult") == "error" and answer.get("smsResultMsg"),
           "push_single_sms_unknown_template: smsResult %r (%r), expected error with a message"
           % (answer.get("smsResult"), answer.get("smsResultMsg")))


if __name__ == "__main__":
    main()
    finish()
