//! How a chunk is cut into upstream calls ("parts"), which parts a pause or cancel can still
//! hold back, and which recipients of a batch fail before anything is sent.

use std::num::NonZeroU32;

use crate::domain::{Mode, ResultName};
use crate::wire::getui::{MAX_BATCH_MESSAGES, MAX_LIST_CIDS};
use crate::wire::wecom::MAX_USERS_PER_SEND;

/// A campaign's pacing: its speed bucket's shape and the size of each call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartPlan {
    /// Messages per second and burst of the campaign's bucket; `None` when unlimited.
    pub speed: Option<(NonZeroU32, NonZeroU32)>,
    /// Most recipients per upstream call: the endpoint's limit when unpaced; half the speed
    /// burst when paced. A part must fit in one wait for the bucket, and a part of half the
    /// burst leaves the bucket room to make up a late timer wake (a millisecond or so each,
    /// which at a full burst per part cost about 2% of the speed at 20,000/s).
    pub part_size: usize,
}

impl PartPlan {
    /// The plan of a campaign sending in `mode` at `speed` messages/s (`None` or 0: unlimited).
    pub fn new(mode: Mode, speed: Option<u32>) -> PartPlan {
        let per_call = if mode == Mode::BatchSingle { MAX_BATCH_MESSAGES } else { MAX_LIST_CIDS };
        match speed.and_then(NonZeroU32::new) {
            Some(s) => {
                let burst = NonZeroU32::new(s.get().min(per_call as u32)).unwrap_or(s);
                PartPlan { speed: Some((s, burst)), part_size: half(burst) }
            }
            None => PartPlan { speed: None, part_size: per_call },
        }
    }
}

impl PartPlan {
    /// This daemon's share of the plan when `members` daemons send the campaign together: the
    /// rate and the burst divided among them (rounded up), so the group together stays within
    /// the campaign's speed plus one burst in any second. Parts shrink to the smaller burst.
    pub fn shared(self, members: usize) -> PartPlan {
        let n = u32::try_from(members.max(1)).unwrap_or(u32::MAX);
        match self.speed {
            Some((rate, burst)) if n > 1 => {
                let rate = NonZeroU32::new(rate.get().div_ceil(n)).unwrap_or(NonZeroU32::MIN);
                let burst = NonZeroU32::new(burst.get().div_ceil(n)).unwrap_or(NonZeroU32::MIN);
                PartPlan { speed: Some((rate, burst)), part_size: half(burst) }
            }
            _ => self,
        }
    }
}

/// Half a burst, rounded up: the size of a paced part.
fn half(burst: NonZeroU32) -> usize {
    burst.get().div_ceil(2) as usize
}

/// An app's call budget (`calls_per_second`) shared among `members` daemons (rounded up).
pub fn shared_calls(calls_per_second: NonZeroU32, members: usize) -> NonZeroU32 {
    let n = u32::try_from(members.max(1)).unwrap_or(u32::MAX);
    NonZeroU32::new(calls_per_second.get().div_ceil(n)).unwrap_or(NonZeroU32::MIN)
}

/// The parts of a chunk's `items`, in order, each with its index: at most `part_size` items
/// each, all full but the last.
pub fn cut<T>(items: &[T], part_size: usize) -> impl Iterator<Item = (usize, &[T])> {
    items.chunks(part_size.max(1)).enumerate()
}

/// Members per WeCom `message/send` of a campaign cut in parts of `part_size`.
pub fn wecom_part_size(part_size: usize) -> usize {
    part_size.min(MAX_USERS_PER_SEND)
}

/// Whether a pause or cancel can still hold back part `index` of a chunk (counted from 0).
/// Only the first part is held: once part of a chunk is sent the rest follows, so the chunk
/// is either all pending or all acknowledged.
pub fn held_by_stop(index: usize) -> bool {
    index == 0
}

/// Whether part `index` may start now that the campaign is `stopped` (paused or cancelled) or
/// not; when it may not, the chunk is left pending.
pub fn may_start(index: usize, stopped: bool) -> bool {
    !(stopped && held_by_stop(index))
}

/// A batch recipient's fate before sending: its rendered copy must fit (a copy can outgrow a
/// limit its template met: that recipient alone fails `param_invalid`), then its request id
/// must derive (else `failed`). `Ok` holds the request id to send with.
pub fn admit<R, E>(fits: bool, request_id: impl FnOnce() -> Result<R, E>) -> Result<R, ResultName> {
    if !fits {
        return Err(ResultName::ParamInvalid);
    }
    request_id().map_err(|_| ResultName::Failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
    }

    #[test]
    fn three_daemons_share_a_speed_and_its_burst_so_the_group_stays_within_speed_plus_one_burst() {
        let whole = PartPlan::new(Mode::List, Some(20_000));
        assert_eq!(whole.speed, Some((nz(20_000), nz(1_000))));
        let share = whole.shared(3);
        assert_eq!(share, PartPlan { speed: Some((nz(6_667), nz(334))), part_size: 167 });
        let (rate, burst) = share.speed.unwrap_or((nz(1), nz(1)));
        // In any second one bucket lets through at most its rate plus its burst.
        assert!(3 * (rate.get() + burst.get()) <= 20_000 + 1_000 + 3);
        assert_eq!(whole.shared(1), whole);
        assert_eq!(PartPlan::new(Mode::List, None).shared(3), PartPlan::new(Mode::List, None));
        assert_eq!(PartPlan::new(Mode::List, Some(2)).shared(3).speed, Some((nz(1), nz(1))), "never zero");
        assert_eq!(shared_calls(nz(1_000), 3), nz(334));
    }

    #[test]
    fn unlimited_campaigns_fill_each_call_to_the_endpoint_limit() {
        assert_eq!(PartPlan::new(Mode::List, None), PartPlan { speed: None, part_size: 1000 });
        assert_eq!(PartPlan::new(Mode::Auto, Some(0)), PartPlan { speed: None, part_size: 1000 });
        assert_eq!(PartPlan::new(Mode::BatchSingle, None), PartPlan { speed: None, part_size: 200 });
    }

    #[test]
    fn a_paced_campaign_cuts_parts_to_half_its_burst_and_the_burst_to_its_speed_or_the_endpoint() {
        assert_eq!(PartPlan::new(Mode::List, Some(50)), PartPlan { speed: Some((nz(50), nz(50))), part_size: 25 });
        let fast = PartPlan::new(Mode::BatchSingle, Some(5000));
        assert_eq!(fast, PartPlan { speed: Some((nz(5000), nz(200))), part_size: 100 });
        assert_eq!(PartPlan::new(Mode::List, Some(1)).part_size, 1, "never empty");
    }

    #[test]
    fn parts_keep_the_chunk_order_and_only_the_last_is_short() {
        let items: Vec<u32> = (0..7).collect();
        let parts: Vec<(usize, &[u32])> = cut(&items, 3).collect();
        assert_eq!(parts, [(0, &[0, 1, 2][..]), (1, &[3, 4, 5][..]), (2, &[6][..])]);
        assert_eq!(cut(&items, 0).count(), 7, "a zero size still makes progress");
        assert_eq!(cut::<u32>(&[], 3).count(), 0);
    }

    #[test]
    fn wecom_parts_never_exceed_a_thousand_members() {
        assert_eq!(wecom_part_size(1000), 1000);
        assert_eq!(wecom_part_size(50), 50);
        assert_eq!(wecom_part_size(5000), MAX_USERS_PER_SEND);
    }

    #[test]
    fn a_pause_holds_back_only_the_first_part_of_a_chunk() {
        assert!(!may_start(0, true), "nothing sent yet: the chunk stays pending");
        assert!(may_start(0, false));
        assert!(may_start(1, true), "part of the chunk went: the rest follows");
        assert!(may_start(7, true));
        let held: Vec<bool> = (0..4).map(held_by_stop).collect();
        assert_eq!(held, [true, false, false, false]);
    }

    #[test]
    fn a_batch_recipient_whose_copy_does_not_fit_fails_before_its_request_id_is_made() {
        let mut derived = false;
        let r: Result<u8, ResultName> = admit(false, || {
            derived = true;
            Ok::<u8, ()>(1)
        });
        assert_eq!(r, Err(ResultName::ParamInvalid));
        assert!(!derived);
        assert_eq!(admit(true, || Err::<u8, ()>(())), Err(ResultName::Failed));
        assert_eq!(admit(true, || Ok::<u8, ()>(9)), Ok(9));
    }
}
