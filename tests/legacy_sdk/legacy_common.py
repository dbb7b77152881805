"""What every scenario script shares: the settings from the environment, the SDK client, and
JSON-lines output (one line per SDK answer, read by tests/legacy_sdk.rs). Exit status: 0 all
answers as promised; 1 an answer broke the protocol (the script stops there); 2 the scenario
completed but some answer deviated from the vendor's documentation (DEVIATION lines).

Environment (set by the harness; the same names work by hand):
  HOST          the daemon's legacy URL, e.g. http://127.0.0.1:18999/apiex.htm
  APPKEY        AppKey    (shipped config: campaignd-dev-key)
  MASTERSECRET  MasterSecret (shipped config: campaignd-dev-master-secret)
  APPID         AppId     (shipped config: campaignd-dev-app)
  plus per-scenario variables named in each script.

The SDK is used unmodified. Quirks it needs (shared/reference/getui-legacy-and-sms.md §1.9):
quirk 1 is sitecustomize.py; quirk 8 is `gexin_default_domainurl` below, so that a fallback to
the default hosts never reaches the real Getui; quirk 7 (the host pool strips ":80"/":443") is
the harness's choice of port; this directory holds no module named GtConfig, so the SDK's
periodic "fastest host" probe never POSTs.
"""

import json
import os
import sys


def setting(name):
    value = os.environ.get(name)
    if value is None or value == "":
        fail("environment variable %s is not set" % name)
    return value


HOST = setting("HOST")
APPKEY = setting("APPKEY")
MASTERSECRET = setting("MASTERSECRET")
APPID = setting("APPID")

# Quirk 8: the SDK falls back to these hosts when discovery fails; never the real Getui.
os.environ["gexin_default_domainurl"] = HOST


def emit(step, answer, **extra):
    """Prints one SDK answer as a JSON line: {"step": ..., "answer": ..., ...extra}."""
    line = {"step": step, "answer": answer}
    line.update(extra)
    print(json.dumps(line, ensure_ascii=False, sort_keys=True), flush=True)


def fail(why):
    """Prints why the protocol was not kept and exits 1."""
    print(json.dumps({"step": "FAILED", "why": why}, ensure_ascii=False), flush=True)
    sys.exit(1)


DEVIATIONS = []


def deviate(why):
    """Notes an answer that differs from the vendor's documentation in a way the SDK itself
    survives; the scenario goes on, and `finish` exits 2 (the harness reports it as a failure
    after its own ledger checks)."""
    DEVIATIONS.append(why)
    print(json.dumps({"step": "DEVIATION", "why": why}, ensure_ascii=False), flush=True)


def finish():
    """Exits 2 when any answer deviated, else 0."""
    sys.exit(2 if DEVIATIONS else 0)


def expect(condition, why):
    if not condition:
        fail(why)


def expect_ok(step, answer, *keys):
    """The answer is a dict with result "ok" and every key in `keys`."""
    expect(isinstance(answer, dict), "%s: the SDK answered %r, not a dict" % (step, answer))
    expect(answer.get("result") == "ok", "%s: result is %r, not ok: %r" % (step, answer.get("result"), answer))
    for key in keys:
        expect(answer.get(key) not in (None, ""), "%s: the answer has no %s: %r" % (step, key, answer))


PUSH_STATUSES = ("successed_online", "successed_offline", "successed_ignore")
# A list or batch push is answered once its targets are durably recorded, before they are
# sent (paced): each target's status then is successed_async, a value of the protocol's
# PushResult.EPushResult (the SDK's descriptor).
QUEUED_STATUSES = PUSH_STATUSES + ("successed_async",)


def client():
    """The SDK client, built as the vendor's examples do: IGeTui(HOST, APPKEY, MASTERSECRET).

    Construction POSTs getOSPushDomailUrlListAction to HOST; the first real call then gets
    sign_error, connects (md5 sign) and replays itself.
    """
    from gt_push_sdk.igt_push import IGeTui

    return IGeTui(HOST, APPKEY, MASTERSECRET)


def transmission_template(content):
    """A TransmissionTemplate as in the vendor's TransmissionTemplateDemo."""
    from gt_push_sdk.igetui.template.igt_transmission_template import TransmissionTemplate

    template = TransmissionTemplate()
    template.transmissionType = 2
    template.appId = APPID
    template.appKey = APPKEY
    template.transmissionContent = content
    return template


def link_template(title, text, url):
    """A LinkTemplate as in the vendor's IGtLinkTemplateDemo."""
    from gt_push_sdk.igetui.template.igt_link_template import LinkTemplate

    template = LinkTemplate()
    template.appId = APPID
    template.appKey = APPKEY
    template.title = title
    template.text = text
    template.logo = ""
    template.url = url
    template.isRing = True
    template.isVibrate = True
    template.isClearable = True
    return template


def target(cid):
    from gt_push_sdk.igetui.igt_target import Target

    t = Target()
    t.appId = APPID
    t.clientId = cid
    return t


def cids_from_env(name):
    """Cids, one per line, from the file named by env `name`."""
    with open(setting(name), encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def beijing_push_time(seconds_from_now, at_least_s=5):
    """`pushTime` (yyyyMMddHHmm, Beijing time as Getui reads it) `seconds_from_now` ahead,
    rounded down to the minute but at least `at_least_s` ahead (a minute later otherwise);
    and that instant in ms since the epoch."""
    import datetime

    tz = datetime.timezone(datetime.timedelta(hours=8))
    now = datetime.datetime.now(tz)
    at = (now + datetime.timedelta(seconds=seconds_from_now)).replace(second=0, microsecond=0)
    if (at - now).total_seconds() < at_least_s:
        at += datetime.timedelta(minutes=1)
    return at.strftime("%Y%m%d%H%M"), int(at.timestamp() * 1000)
