//! SMS fallback's decisions for one pushed chunk, without I/O (issue 13): who was pushed and
//! reached, who is texted with which parameters in which call, and what a call's answer, a
//! stop or a crash mid-call does to the chunk's tally.
//!
//! The state is kept by the store between steps, so the texting of a chunk is a small state
//! machine: `pushed` (recipients with their push answer) → `planned` (calls of ≤ 200 numbers
//! grouped by identical parameters, decided once when the texts are due) → calls sent one by
//! one, each marked `inflight` durably before it leaves → finished. The gateway has no
//! idempotency key, so a call found in flight after a crash may have been sent: `at_most_once`
//! counts its recipients `maybe_sent` and moves on, `at_least_once` sends it again and counts
//! them `replayed`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::sms::{check_length, render_text, SmsFallback};
use crate::domain::texting::{receipt_bits, SkipReason, SmsTally};
use crate::domain::{CompactCid, Replay};
use crate::wire::tencent_sms::codes::PHONE_NUMBER_THIRTY_SECOND_LIMIT;
use crate::wire::tencent_sms::MAX_NUMBERS_PER_CALL;

/// One recipient of a pushed chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pushed {
    /// The cid.
    #[serde(with = "serde_bytes")]
    pub cid: [u8; 16],
    /// Getui answered `successed_online`.
    pub online: bool,
    /// Index into [`TextingState::taskids`] of the task that carried its push (for receipts).
    pub task: u32,
    /// Its parameters, when they use its `${vars}`; empty when the campaign's are static.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<String>,
}

/// One number to text: the cid it is bound to and the number sealed as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedNumber {
    /// The cid (the seal's associated data names it).
    #[serde(with = "serde_bytes")]
    pub cid: [u8; 16],
    /// The sealed E.164 number.
    #[serde(with = "serde_bytes")]
    pub sealed: Vec<u8>,
}

/// One planned `SendSms` call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedCall {
    /// The template's parameters, the same for every number of the call.
    pub params: Vec<String>,
    /// ≤ [`MAX_NUMBERS_PER_CALL`] numbers.
    pub numbers: Vec<SealedNumber>,
    /// How many times these numbers were refused for now and planned again (0 for a first
    /// call; absent from the stored bytes then, so states kept before it read the same).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u8,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

/// How many times a number the gateway refused for now (a hiccup of its own, not a refusal of
/// the number) is planned again before its code counts as a failure.
pub const MAX_NUMBER_RETRIES: u8 = 3;

/// The calls of a chunk and how far they got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextingPlan {
    /// Every call, in sending order.
    pub calls: Vec<PlannedCall>,
    /// The next call to send.
    pub next: usize,
    /// Call `next` may have left (marked before it is sent, cleared once its answer is kept).
    pub inflight: bool,
    /// The chunk's outcomes so far.
    pub tally: SmsTally,
}

/// A chunk's texting state, as the store keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextingState {
    /// The taskids of the chunk's pushes (one for a list chunk, one per message for a batch).
    pub taskids: Vec<String>,
    /// The pushed recipients; emptied once the plan is made.
    pub pushed: Vec<Pushed>,
    /// The plan, once the texts were due.
    pub plan: Option<TextingPlan>,
}

/// One recipient's push answer, as the shards collect them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushAnswer {
    /// The recipient.
    pub cid: CompactCid,
    /// The answer said `successed_online`.
    pub online: bool,
    /// The taskid that carried the push (`""` when no answer named one).
    pub taskid: String,
    /// Its SMS parameters when they use its `${vars}`; else empty.
    pub params: Vec<String>,
}

impl TextingState {
    /// A pushed chunk, from its recipients' push answers.
    pub fn pushed(answers: Vec<PushAnswer>) -> TextingState {
        let mut taskids: Vec<String> = Vec::new();
        let mut index: BTreeMap<String, u32> = BTreeMap::new();
        let mut pushed = Vec::with_capacity(answers.len());
        for a in answers {
            let task = match index.get(&a.taskid) {
                Some(t) => *t,
                None => {
                    let t = taskids.len() as u32;
                    taskids.push(a.taskid.clone());
                    index.insert(a.taskid, t);
                    t
                }
            };
            pushed.push(Pushed { cid: a.cid.0, online: a.online, task, params: a.params });
        }
        TextingState { taskids, pushed, plan: None }
    }

    /// Each pushed recipient's (taskid, cid), in order: what to look the receipts up by.
    pub fn receipt_keys(&self) -> impl Iterator<Item = (&str, CompactCid)> + '_ {
        self.pushed.iter().map(|p| (self.taskids.get(p.task as usize).map_or("", String::as_str), CompactCid(p.cid)))
    }

    /// The cids that need a number: not online by the push answer.
    pub fn unanswered(&self) -> Vec<CompactCid> {
        self.pushed.iter().filter(|p| !p.online).map(|p| CompactCid(p.cid)).collect()
    }
}

/// What the plan is made from, besides the state.
pub struct PlanFacts<'a> {
    /// The campaign's setting.
    pub fallback: &'a SmsFallback,
    /// The template's text.
    pub template_text: &'a str,
    /// The app's signature.
    pub sign_name: &'a str,
    /// `sms/stop` was called.
    pub stopped: bool,
    /// Receipt bits of each pushed recipient, in order.
    pub receipts: &'a [u8],
    /// The sealed number of each recipient of [`TextingState::unanswered`], in order.
    pub numbers: &'a [Option<Vec<u8>>],
}

/// Decides every pushed recipient once the texts are due: reached ones (push answer or an
/// arrival receipt) and those without a number or with a text over one SMS are skipped, the
/// rest grouped by parameters into calls of at most [`MAX_NUMBERS_PER_CALL`], in a stable order.
pub fn plan(state: &TextingState, facts: &PlanFacts<'_>) -> TextingPlan {
    let mut tally = SmsTally::default();
    let mut groups: BTreeMap<Vec<String>, Vec<SealedNumber>> = BTreeMap::new();
    let mut numbers = facts.numbers.iter();
    for (i, p) in state.pushed.iter().enumerate() {
        let bits = facts.receipts.get(i).copied().unwrap_or(0);
        if bits & receipt_bits::CLICKED != 0 {
            tally.clicked += 1;
        }
        if p.online {
            tally.skip(SkipReason::Reached, 1);
            continue;
        }
        let number = numbers.next().cloned().flatten();
        if receipt_bits::reached(bits) {
            tally.skip(SkipReason::Reached, 1);
        } else if facts.stopped {
            tally.skip(SkipReason::Stopped, 1);
        } else if number.as_ref().is_some_and(|sealed| sealed.is_empty()) {
            // A legacy md5-only binding: the store keeps no sealed number for it.
            tally.skip(SkipReason::NoNumber, 1);
        } else if let Some(sealed) = number {
            let params = if p.params.is_empty() { facts.fallback.params.clone() } else { p.params.clone() };
            if check_length(&render_text(facts.sign_name, facts.template_text, &params)).is_err() {
                tally.skip(SkipReason::TooLong, 1);
            } else {
                groups.entry(params).or_default().push(SealedNumber { cid: p.cid, sealed });
            }
        } else {
            tally.skip(SkipReason::NoBinding, 1);
        }
    }
    let mut calls = Vec::new();
    for (params, numbers) in groups {
        for part in numbers.chunks(MAX_NUMBERS_PER_CALL) {
            calls.push(PlannedCall { params: params.clone(), numbers: part.to_vec(), retries: 0 });
        }
    }
    TextingPlan { calls, next: 0, inflight: false, tally }
}

/// What became of one number of a call the gateway answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberResult {
    /// Accepted, with its serial number (the delivery report's `sid`).
    Sent(String),
    /// Not sent for now, with the gateway's code: an error of the gateway's own or its rate
    /// limit. Surely not sent, so the number is planned again (up to [`MAX_NUMBER_RETRIES`]).
    Later(String),
    /// Not sent because the marketing window is closed: planned again, however often, to go
    /// once it opens.
    Window(String),
    /// Not sent, for good, with the gateway's code.
    Failed(String),
}

/// What [`TextingPlan::answered`] made of an answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnswerKept {
    /// The serial numbers of the accepted texts.
    pub serials: Vec<String>,
    /// Numbers planned again in a call at the end of the plan.
    pub again: usize,
    /// Some number was refused for the marketing window.
    pub window: bool,
}

impl TextingPlan {
    /// True when every call is settled.
    pub fn is_done(&self) -> bool {
        self.next >= self.calls.len()
    }

    /// Recipients of call `next`.
    fn current_len(&self) -> u64 {
        self.calls.get(self.next).map_or(0, |c| c.numbers.len() as u64)
    }

    /// After a restart: call `next` was marked in flight and its answer never kept, so it may
    /// have been sent. `at_most_once` counts it `maybe_sent` and moves on; `at_least_once`
    /// keeps it to be sent again and counts it `replayed`. Answers the recipients replayed.
    pub fn settle_inflight(&mut self, replay: Replay) -> u64 {
        if !self.inflight || self.is_done() {
            self.inflight = false;
            return 0;
        }
        let n = self.current_len();
        self.inflight = false;
        match replay {
            Replay::AtMostOnce => {
                self.tally.maybe_sent += n;
                self.next += 1;
                0
            }
            Replay::AtLeastOnce => {
                self.tally.replayed += n;
                n
            }
        }
    }

    /// Marks call `next` as about to leave (to be stored before it does).
    pub fn begin_call(&mut self) {
        self.inflight = true;
    }

    /// Keeps the answer of call `next` (one result per number of the call, in order) and moves
    /// on. `resent`: the call went out before and its answer was lost; the gateway then refuses
    /// the same text to the same number within 30 s, which means the first one went out, so
    /// such a number counts as sent. Numbers refused for now go into a new call at the end of
    /// the plan, which is stored before anything else is sent, so each is still texted once.
    pub fn answered(&mut self, results: Vec<NumberResult>, resent: bool) -> AnswerKept {
        let mut kept = AnswerKept::default();
        let (params, retries) = match self.calls.get(self.next) {
            Some(c) => (c.params.clone(), c.retries),
            None => (Vec::new(), 0),
        };
        let mut again = Vec::new();
        for (i, r) in results.into_iter().enumerate() {
            let number = self.calls.get(self.next).and_then(|c| c.numbers.get(i));
            match r {
                NumberResult::Sent(sid) => {
                    self.tally.sent += 1;
                    kept.serials.push(sid);
                }
                NumberResult::Failed(code) if resent && code == PHONE_NUMBER_THIRTY_SECOND_LIMIT => {
                    self.tally.sent += 1
                }
                NumberResult::Window(code) => match number {
                    Some(n) => {
                        kept.window = true;
                        again.push((n.clone(), retries));
                    }
                    None => self.tally.fail(&code, 1),
                },
                NumberResult::Later(code) => match number {
                    Some(n) if retries < MAX_NUMBER_RETRIES => again.push((n.clone(), retries + 1)),
                    _ => self.tally.fail(&code, 1),
                },
                NumberResult::Failed(code) => self.tally.fail(&code, 1),
            }
        }
        kept.again = again.len();
        // One call per retry count, in the order the numbers came.
        let mut by_retries: BTreeMap<u8, Vec<SealedNumber>> = BTreeMap::new();
        for (n, r) in again {
            by_retries.entry(r).or_default().push(n);
        }
        for (retries, numbers) in by_retries {
            self.calls.push(PlannedCall { params: params.clone(), numbers, retries });
        }
        self.inflight = false;
        self.next += 1;
        kept
    }

    /// Call `next` failed for good without being sent (or, `at_most_once`, maybe sent: `code`
    /// is then `None`); every number of it counts so.
    pub fn call_failed(&mut self, code: Option<&str>) {
        let n = self.current_len();
        match code {
            Some(code) => self.tally.fail(code, n),
            None => self.tally.maybe_sent += n,
        }
        self.inflight = false;
        self.next += 1;
    }

    /// Call `next` is about to be sent again after a lost answer (`at_least_once`).
    pub fn resending(&mut self) {
        self.tally.replayed += self.current_len();
    }

    /// `sms/stop`: the calls not yet sent are skipped.
    pub fn stop(&mut self) {
        let rest: u64 = self.calls.get(self.next..).map_or(0, |c| c.iter().map(|c| c.numbers.len() as u64).sum());
        self.tally.skip(SkipReason::Stopped, rest);
        self.next = self.calls.len();
        self.inflight = false;
    }

    /// Numbers that could not be opened (the seal key changed) leave call `next` before it is
    /// sent.
    pub fn drop_unreadable(&mut self, unreadable: &[usize]) {
        let Some(call) = self.calls.get_mut(self.next) else { return };
        let mut i = 0;
        call.numbers.retain(|_| {
            let keep = !unreadable.contains(&i);
            i += 1;
            keep
        });
        self.tally.skip(SkipReason::Unreadable, unreadable.len() as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cid(n: u8) -> CompactCid {
        CompactCid([n; 16])
    }

    fn fallback(params: &[&str]) -> SmsFallback {
        SmsFallback { template_id: "1".into(), params: params.iter().map(|p| (*p).into()).collect(), after_ms: 1 }
    }

    /// Ten recipients: 0–2 online, 3 with an arrival receipt, 4 clicked, 5 unbound, the rest
    /// bound; 9 with a parameter making the text too long.
    fn ten() -> (TextingState, Vec<u8>) {
        let rows = (0..10u8).map(|n| {
            let params = if n == 9 { vec!["x".repeat(80)] } else { vec![] };
            let taskid = if n % 2 == 0 { "RASS_a" } else { "RASS_b" }.to_owned();
            PushAnswer { cid: cid(n), online: n < 3, taskid, params }
        });
        let state = TextingState::pushed(rows.collect());
        let mut receipts = vec![0u8; 10];
        receipts[3] = receipt_bits::ARRIVED;
        receipts[4] = receipt_bits::ARRIVED | receipt_bits::CLICKED;
        (state, receipts)
    }

    fn numbers(state: &TextingState) -> Vec<Option<Vec<u8>>> {
        state.unanswered().iter().map(|c| (c.0[0] != 5).then(|| vec![c.0[0]])).collect()
    }

    /// The plan of [`ten`] with `numbers`, and the first cid byte of each number texted.
    fn plan_of_ten(state: &TextingState, receipts: &[u8], numbers: &[Option<Vec<u8>>]) -> (TextingPlan, Vec<u8>) {
        let f = fallback(&["9"]);
        let facts =
            PlanFacts { fallback: &f, template_text: "code {1}", sign_name: "s", stopped: false, receipts, numbers };
        let plan = plan(state, &facts);
        let texted = plan.calls.iter().flat_map(|c| c.numbers.iter().map(|n| n.cid[0])).collect();
        (plan, texted)
    }

    #[test]
    fn the_plan_texts_exactly_the_bound_unreached_recipients() {
        let (state, receipts) = ten();
        assert_eq!(state.taskids, ["RASS_a", "RASS_b"]);
        let (plan, texted) = plan_of_ten(&state, &receipts, &numbers(&state));
        assert_eq!(texted, [6, 7, 8]);
        assert_eq!(plan.tally.reached, 5, "3 online, 2 by receipt");
        assert_eq!(plan.tally.clicked, 1);
        assert_eq!(plan.tally.skipped["no_binding"], 1);
        assert_eq!(plan.tally.skipped["too_long"], 1);
    }

    #[test]
    fn an_md5_only_binding_is_skipped_as_no_number() {
        let (state, receipts) = ten();
        // Recipient 6 was bound through the legacy SDK: a binding without a sealed number.
        let numbers: Vec<_> =
            numbers(&state).into_iter().map(|n| if n == Some(vec![6]) { Some(Vec::new()) } else { n }).collect();
        let (plan, texted) = plan_of_ten(&state, &receipts, &numbers);
        assert_eq!(texted, [7, 8]);
        assert_eq!(plan.tally.skipped["no_number"], 1);
        assert_eq!(plan.tally.skipped["no_binding"], 1);
    }

    #[test]
    fn calls_group_identical_parameters_and_hold_at_most_200_numbers() {
        let rows: Vec<_> = (0..450u32)
            .map(|i| {
                let mut c = [0u8; 16];
                c[..4].copy_from_slice(&i.to_be_bytes());
                let params = vec![if i % 3 == 0 { "a" } else { "b" }.to_owned()];
                PushAnswer { cid: CompactCid(c), online: false, taskid: "t".into(), params }
            })
            .collect();
        let state = TextingState::pushed(rows);
        let numbers: Vec<_> = state.unanswered().iter().map(|_| Some(vec![1])).collect();
        let f = fallback(&[]);
        let facts = PlanFacts {
            fallback: &f,
            template_text: "{1}",
            sign_name: "s",
            stopped: false,
            receipts: &[],
            numbers: &numbers,
        };
        let plan = plan(&state, &facts);
        let sizes: Vec<(String, usize)> = plan.calls.iter().map(|c| (c.params[0].clone(), c.numbers.len())).collect();
        assert_eq!(sizes, [("a".into(), 150), ("b".into(), 200), ("b".into(), 100)]);
    }

    fn two_calls() -> TextingPlan {
        let call = |n: u8| PlannedCall {
            params: vec![],
            numbers: vec![SealedNumber { cid: [n; 16], sealed: vec![n] }; 3],
            retries: 0,
        };
        TextingPlan { calls: vec![call(1), call(2)], ..TextingPlan::default() }
    }

    #[test]
    fn a_call_in_flight_at_a_crash_is_skipped_at_most_once_and_resent_at_least_once() {
        let mut p = two_calls();
        p.begin_call();
        assert_eq!(p.settle_inflight(Replay::AtMostOnce), 0);
        assert_eq!((p.next, p.tally.maybe_sent, p.inflight), (1, 3, false));
        let mut p = two_calls();
        p.begin_call();
        assert_eq!(p.settle_inflight(Replay::AtLeastOnce), 3);
        assert_eq!((p.next, p.tally.replayed, p.inflight), (0, 3, false), "call 0 goes again");
        let mut p = two_calls();
        assert_eq!(p.settle_inflight(Replay::AtMostOnce), 0, "nothing was in flight");
        assert_eq!(p.next, 0);
    }

    #[test]
    fn answers_count_per_number_and_a_stop_skips_the_rest() {
        let mut p = two_calls();
        p.begin_call();
        let serials = p.answered(
            vec![
                NumberResult::Sent("s1".into()),
                NumberResult::Failed("LimitExceeded.PhoneNumberDailyLimit".into()),
                NumberResult::Sent("s2".into()),
            ],
            false,
        );
        assert_eq!(serials.serials, ["s1", "s2"]);
        assert_eq!((p.tally.sent, p.next, p.inflight), (2, 1, false));
        p.stop();
        assert!(p.is_done());
        assert_eq!(p.tally.skipped["stopped"], 3);
        assert_eq!(p.tally.failed["LimitExceeded.PhoneNumberDailyLimit"], 1);
    }

    #[test]
    fn a_resent_call_refused_as_a_repeat_within_30_s_counts_as_sent() {
        let repeat = || NumberResult::Failed(PHONE_NUMBER_THIRTY_SECOND_LIMIT.into());
        let mut p = two_calls();
        p.answered(vec![repeat(), NumberResult::Sent("s".into()), repeat()], true);
        assert_eq!((p.tally.sent, p.tally.failed.len()), (3, 0), "the first sending went out");
        p.answered(vec![repeat(), repeat(), repeat()], false);
        assert_eq!(p.tally.failed[PHONE_NUMBER_THIRTY_SECOND_LIMIT], 3, "a first sending refused is a failure");
    }

    #[test]
    fn numbers_refused_for_now_are_planned_again_a_few_times_then_fail() {
        let mut p = two_calls();
        p.calls[0].numbers = (1..=3u8).map(|n| SealedNumber { cid: [n; 16], sealed: vec![n] }).collect();
        let later = || NumberResult::Later("InternalError.Timeout".into());
        let kept = p.answered(vec![NumberResult::Sent("s1".into()), later(), later()], false);
        assert_eq!((kept.again, kept.window, p.calls.len(), p.next), (2, false, 3, 1));
        let again = &p.calls[2];
        assert_eq!((again.retries, again.numbers.iter().map(|n| n.cid[0]).collect::<Vec<_>>()), (1, vec![2, 3]));
        p.answered(vec![later(), later(), later()], false); // call 1: planned again too
        for _ in 0..20 {
            if p.is_done() {
                break;
            }
            let n = p.calls[p.next].numbers.len();
            p.answered(vec![later(); n], false);
        }
        assert!(p.is_done(), "{p:?}");
        assert_eq!(p.tally.sent, 1);
        assert_eq!(p.tally.failed["InternalError.Timeout"], 5, "each number tried 1 + {MAX_NUMBER_RETRIES} times");
        assert_eq!(p.calls.iter().map(|c| c.numbers.len()).sum::<usize>(), 6 + 5 * 3, "every retry was a call");
    }

    #[test]
    fn numbers_refused_for_the_window_wait_however_often_without_spending_retries() {
        let mut p = two_calls();
        let window = || NumberResult::Window("FailedOperation.MarketingSendTimeConstraint".into());
        for round in 0..10 {
            let n = p.calls[p.next].numbers.len();
            let kept = p.answered(vec![window(); n], false);
            assert!(kept.window && kept.again == n, "round {round}");
        }
        let n = p.calls[p.next].numbers.len();
        assert_eq!(p.calls[p.next].retries, 0);
        p.answered(vec![NumberResult::Sent("s".into()); n], false);
        assert_eq!((p.tally.sent, p.tally.failed.len()), (3, 0));
    }

    #[test]
    fn a_first_call_is_stored_without_the_retry_count() {
        let first = two_calls().calls[0].clone();
        let named = rmp_serde::to_vec_named(&first).expect("encodes");
        assert!(!named.windows(7).any(|w| w == b"retries"), "a first call keeps the bytes it had");
        let again = PlannedCall { retries: 2, ..first };
        let back: PlannedCall =
            rmp_serde::from_slice(&rmp_serde::to_vec_named(&again).expect("encodes")).expect("decodes");
        assert_eq!(back.retries, 2);
    }

    #[test]
    fn the_state_survives_its_encoding() {
        let (state, _) = ten();
        let bytes = rmp_serde::to_vec_named(&state).expect("encodes");
        let back: TextingState = rmp_serde::from_slice(&bytes).expect("decodes");
        assert_eq!(back, state);
    }
}
