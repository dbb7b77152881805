//! The simulated app's installed base: a fixed population of devices whose attributes follow
//! from their cid, so that an app push with tag conditions reaches an exact, checkable set.
//!
//! Served at `GET /_sim/devices` (each device with its attributes and deliveries) so a test can
//! evaluate the conditions itself and compare with what the ledger recorded.

use std::sync::OnceLock;

use serde::Serialize;

use crate::domain::CompactCid;
use crate::wire::getui::regions;
use crate::wire::getui::{Condition, OptType};

/// How many devices the simulated app has.
pub const POPULATION: usize = 20_000;

/// Custom tags devices may carry (each with its own share, see [`Device::of`]).
const TAGS: [&str; 5] = ["tagtest", "vip", "haha", "new_user", "sports"];
/// User-portrait codes (Getui's `portrait.data` style), one per device.
const PORTRAITS: [&str; 4] = ["si0901", "025000", "si0702", "030100"];

/// One device of the population.
#[derive(Debug, Clone, Serialize)]
pub struct Device {
    /// Its client id.
    pub cid: String,
    /// `android` (about 70 %) or `ios`.
    pub phone_type: &'static str,
    /// 8-digit city code from the region table.
    pub region: &'static str,
    /// Custom tags.
    pub custom_tag: Vec<&'static str>,
    /// User-portrait code.
    pub portrait: &'static str,
    /// Whether it is on Wi-Fi (decides Wi-Fi-only messages).
    pub wifi: bool,
}

impl Device {
    /// The device a cid names; every attribute is a pure function of the cid.
    pub fn of(cid: &CompactCid) -> Device {
        let h = crate::domain::ids::mix64(cid.spread() ^ 0x2545_f491_4f6c_dd1d);
        let pick = |shift: u32, n: usize| ((h >> shift) as usize) % n;
        let custom_tag = TAGS.iter().enumerate().filter(|(i, _)| (h >> (40 + 3 * i)) & 0b111 < 2).map(|(_, t)| *t);
        Device {
            cid: cid.to_string(),
            phone_type: if (h & 0xff) < 179 { "android" } else { "ios" },
            region: regions::CITIES[pick(8, regions::CITIES.len())].0,
            custom_tag: custom_tag.collect(),
            portrait: PORTRAITS[pick(24, PORTRAITS.len())],
            wifi: (h >> 32) & 0b11 != 0,
        }
    }

    /// True when the device meets every condition (conditions are ANDed).
    pub fn matches_all(&self, conditions: &[Condition]) -> bool {
        conditions.iter().all(|c| self.matches(c))
    }

    fn matches(&self, c: &Condition) -> bool {
        let mut hits = c.values.iter().map(|v| self.has(&c.key, v));
        match c.opt_type {
            OptType::Or => hits.any(|h| h),
            OptType::And => hits.all(|h| h),
            OptType::Not => !hits.any(|h| h),
        }
    }

    fn has(&self, key: &str, value: &str) -> bool {
        match key {
            "phone_type" => self.phone_type.eq_ignore_ascii_case(value),
            "region" => regions::resolve(value).is_some_and(|code| regions::covers(&code, self.region)),
            "custom_tag" => self.custom_tag.contains(&value),
            "portrait" => self.portrait == value,
            _ => false,
        }
    }
}

/// The cid of device number `i`.
pub fn device_cid(i: usize) -> CompactCid {
    let a = crate::domain::ids::mix64(i as u64 ^ 0x9e37_79b9_7f4a_7c15);
    let b = crate::domain::ids::mix64(a ^ 0xd1b5_4a32_d192_ed03);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_be_bytes());
    bytes[8..].copy_from_slice(&b.to_be_bytes());
    CompactCid(bytes)
}

/// Every device, built once.
pub fn devices() -> &'static [(CompactCid, Device)] {
    static ALL: OnceLock<Vec<(CompactCid, Device)>> = OnceLock::new();
    ALL.get_or_init(|| {
        (0..POPULATION)
            .map(|i| {
                let cid = device_cid(i);
                (cid, Device::of(&cid))
            })
            .collect()
    })
}

/// Why a condition cannot be evaluated, in the upstream's words (answered as 20001).
pub fn check_values(c: &Condition) -> Result<(), &'static str> {
    if c.key == "region" && c.values.iter().any(|v| regions::resolve(v).is_none()) {
        return Err("region value is invalid");
    }
    if c.key == "phone_type" && c.values.iter().any(|v| !["android", "ios"].contains(&v.to_ascii_lowercase().as_str()))
    {
        return Err("phone_type value is invalid");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(key: &str, values: &[&str], opt_type: OptType) -> Condition {
        Condition { key: key.into(), values: values.iter().map(|v| (*v).to_owned()).collect(), opt_type }
    }

    #[test]
    fn attributes_are_spread_and_stable() {
        let all = devices();
        assert_eq!(all.len(), POPULATION);
        let android = all.iter().filter(|(_, d)| d.phone_type == "android").count();
        assert!((12_000..16_000).contains(&android), "{android}");
        let tagtest = all.iter().filter(|(_, d)| d.custom_tag.contains(&"tagtest")).count();
        assert!((4_000..6_000).contains(&tagtest), "{tagtest}");
        assert_eq!(Device::of(&all[7].0).region, all[7].1.region);
    }

    #[test]
    fn the_seed_scenario_selects_exactly_its_devices() {
        // city(A|B|C) && !tag(tagtest) && phonetype(android)
        let conditions = [
            cond("region", &["33010000", "51010000", "上海"], OptType::Or),
            cond("custom_tag", &["tagtest"], OptType::Not),
            cond("phone_type", &["ANDROID"], OptType::Or),
        ];
        let reached: Vec<&Device> = devices().iter().map(|(_, d)| d).filter(|d| d.matches_all(&conditions)).collect();
        assert!(!reached.is_empty());
        for d in &reached {
            assert!(["33010000", "51010000", "31010000"].contains(&d.region), "{d:?}");
            assert!(!d.custom_tag.contains(&"tagtest"));
            assert_eq!(d.phone_type, "android");
        }
        let province = [cond("region", &["浙江"], OptType::Or)];
        let zhejiang = devices().iter().filter(|(_, d)| d.matches_all(&province)).count();
        let by_cities = devices().iter().filter(|(_, d)| d.region.starts_with("33")).count();
        assert_eq!(zhejiang, by_cities);
    }

    #[test]
    fn and_needs_every_value() {
        let both = [cond("custom_tag", &["vip", "sports"], OptType::And)];
        for (_, d) in devices().iter().filter(|(_, d)| d.matches_all(&both)) {
            assert!(d.custom_tag.contains(&"vip") && d.custom_tag.contains(&"sports"));
        }
        assert!(check_values(&cond("region", &["nowhere"], OptType::Or)).is_err());
    }
}
