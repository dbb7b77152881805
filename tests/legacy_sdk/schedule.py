"""Scenario e: scheduled app pushes, as the vendor's 定时任务 examples (getScheduleTask,
delScheduleTask):

  1. an app push with pushTime about FAR_AHEAD_S seconds ahead: getScheduleTask(contentId,
     appId) answers its fields (pushContent, pushTime, creatTime, sendResult);
     delScheduleTask answers ok; getScheduleTask again;
  2. an app push with pushTime the next whole minute (yyyyMMddHHmm cannot say closer), so it
     is due within 60 s: delScheduleTask must be refused (Getui: "距离下发还有一分钟的任务
     将无法删除").

Env: HOST APPKEY MASTERSECRET APPID, FAR_AHEAD_S (default 600).
"""

import os
import time

from legacy_common import (APPID, beijing_push_time, client, deviate, emit, expect, expect_ok, finish,
                           transmission_template)

FIELDS = ("pushContent", "pushTime", "creatTime", "sendResult")


def app_message(push_time, content):
    from gt_push_sdk.igetui.igt_message import IGtAppMessage

    message = IGtAppMessage()
    message.isOffline = True
    message.offlineExpireTime = 10 * 60 * 1000
    message.data = transmission_template(content)
    message.appIdList = [APPID]
    message.pushTime = push_time  # quirk 3: no setPushTime in the Python SDK
    return message


def main():
    far = int(os.environ.get("FAR_AHEAD_S", "600"))
    push = client()

    push_time, at_ms = beijing_push_time(far)
    pushed = push.pushMessageToApp(app_message(push_time, '{"legacy":"schedule-far"}'))
    emit("push_app_far", pushed, pushTime=push_time, pushTimeMs=at_ms)
    expect_ok("push_app_far", pushed, "contentId")
    task = pushed["contentId"]

    info = push.getScheduleTask(task, APPID)
    emit("get_schedule_task", info, taskId=task)
    expect_ok("get_schedule_task", info)
    for field in FIELDS:
        expect(field in info, "get_schedule_task: no %s in %r" % (field, info))
    expect(str(info.get("taskId", task)) == task, "get_schedule_task: taskId %r, asked %r" % (info.get("taskId"), task))
    if info["pushContent"] != '{"legacy":"schedule-far"}':
        deviate("get_schedule_task: pushContent is %r; the vendor's page says it is the transmission content %r"
                % (info["pushContent"], '{"legacy":"schedule-far"}'))

    deleted = push.delScheduleTask(task, APPID)
    emit("del_schedule_task", deleted, taskId=task)
    expect_ok("del_schedule_task", deleted)

    after = push.getScheduleTask(task, APPID)
    emit("get_schedule_task_after_delete", after, taskId=task)

    # Due the next whole minute: at most 60 s away. A minute boundary less than 5 s away could
    # pass before the delete arrives; wait it out first.
    if 60 - time.time() % 60 < 5:
        time.sleep(60 - time.time() % 60 + 0.5)
    near_time, near_ms = beijing_push_time(60, at_least_s=0)
    near = push.pushMessageToApp(app_message(near_time, '{"legacy":"schedule-near"}'))
    emit("push_app_near", near, pushTime=near_time, pushTimeMs=near_ms)
    expect_ok("push_app_near", near, "contentId")
    refused = push.delScheduleTask(near["contentId"], APPID)
    emit("del_schedule_task_near", refused, taskId=near["contentId"], dueInMs=near_ms - int(time.time() * 1000))
    expect(isinstance(refused, dict) and refused.get("result") not in (None, "ok"),
           "deleting a task due within a minute was not refused: %r" % (refused,))


if __name__ == "__main__":
    main()
    finish()
