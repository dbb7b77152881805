"""Scenario c: pushMessageToApp with AppConditions, as the vendor's pushMessageToApp example:
city OR list && NOT tag && phoneType. Two pushes:

  1. scheduled: message.pushTime = "yyyyMMddHHmm" (Beijing time) PUSH_AHEAD_S seconds ahead,
     message.speed = 100 (quirk 3: IGtAppMessage has no setPushTime and its second `setSpeed`
     sets pushTime, so both are set as attributes);
  2. now: the same conditions without pushTime.

Each must answer result ok with a contentId (getContentIdAction, then pushMessageToAppAction).

Env: HOST APPKEY MASTERSECRET APPID, PUSH_AHEAD_S (default 300) and PUSH_AT_LEAST_S (default
5): pushTime is PUSH_AHEAD_S ahead rounded down to the minute, a minute later if that is not
PUSH_AT_LEAST_S away. The harness gives 60 and 20, so that it sees the scheduled push fire.
"""

import os

from legacy_common import (APPID, beijing_push_time, client, emit, expect, expect_ok, finish,
                           transmission_template)

CITIES = ["33010000", "51010000", "上海"]  # Hangzhou, Chengdu (city codes), Shanghai (by name)
NOT_TAGS = ["tagtest"]
PHONE_TYPES = ["ANDROID"]


def app_message(push_time, speed):
    from gt_push_sdk.igetui.igt_message import IGtAppMessage
    from gt_push_sdk.igetui.utils.AppConditions import AppConditions, OptType

    message = IGtAppMessage()
    message.isOffline = True
    message.offlineExpireTime = 10 * 60 * 1000
    message.data = transmission_template('{"legacy":"app"}')
    message.appIdList = [APPID]
    conditions = AppConditions()
    conditions.addCondition(AppConditions.REGION, CITIES, OptType.OR)
    conditions.addCondition(AppConditions.TAG, NOT_TAGS, OptType.NOT)
    conditions.addCondition(AppConditions.PHONE_TYPE, PHONE_TYPES, OptType.OR)
    message.conditions = conditions
    if push_time is not None:
        message.pushTime = push_time  # quirk 3
    message.speed = speed  # quirk 3
    return message


def main():
    ahead = int(os.environ.get("PUSH_AHEAD_S", "300"))
    at_least = int(os.environ.get("PUSH_AT_LEAST_S", "5"))
    push = client()

    push_time, at_ms = beijing_push_time(ahead, at_least)
    scheduled = push.pushMessageToApp(app_message(push_time, 100), "legacy-app-scheduled")
    emit("push_app_scheduled", scheduled, pushTime=push_time, pushTimeMs=at_ms, speed=100)
    expect_ok("push_app_scheduled", scheduled, "contentId")

    now = push.pushMessageToApp(app_message(None, 100), "legacy-app-now")
    emit("push_app_now", now, speed=100)
    expect_ok("push_app_now", now, "contentId")
    expect(now["contentId"] != scheduled["contentId"], "two app pushes got one contentId %r" % now["contentId"])


if __name__ == "__main__":
    main()
    finish()
