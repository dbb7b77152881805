//! Region values of `/push/tag` conditions: Getui's 8-digit region codes and the Chinese names
//! that older senders still use.
//!
//! A code is `PPCC0000`: `PP` the province-level division (the GB/T 2260 prefix), `CC` the city
//! within it (`00` for the whole province), e.g. `33000000` Zhejiang and `33010000` Hangzhou.
//! The v1 document (seed 000, "按城市接口推送") says cities are given only as codes and that
//! province names are still accepted for old users; campaignd accepts the names below too and
//! always sends codes. The table covers every province-level division and the large cities; any
//! other well-formed code with a known province prefix is passed through unchanged.

/// Province-level divisions: two-digit prefix and name (without 省/市/自治区).
const PROVINCES: [(&str, &str); 34] = [
    ("11", "北京"),
    ("12", "天津"),
    ("13", "河北"),
    ("14", "山西"),
    ("15", "内蒙古"),
    ("21", "辽宁"),
    ("22", "吉林"),
    ("23", "黑龙江"),
    ("31", "上海"),
    ("32", "江苏"),
    ("33", "浙江"),
    ("34", "安徽"),
    ("35", "福建"),
    ("36", "江西"),
    ("37", "山东"),
    ("41", "河南"),
    ("42", "湖北"),
    ("43", "湖南"),
    ("44", "广东"),
    ("45", "广西"),
    ("46", "海南"),
    ("50", "重庆"),
    ("51", "四川"),
    ("52", "贵州"),
    ("53", "云南"),
    ("54", "西藏"),
    ("61", "陕西"),
    ("62", "甘肃"),
    ("63", "青海"),
    ("64", "宁夏"),
    ("65", "新疆"),
    ("71", "台湾"),
    ("81", "香港"),
    ("82", "澳门"),
];

/// Cities known by name: 8-digit code and name (without 市).
pub const CITIES: [(&str, &str); 24] = [
    ("11010000", "北京"),
    ("12010000", "天津"),
    ("31010000", "上海"),
    ("50010000", "重庆"),
    ("33010000", "杭州"),
    ("33020000", "宁波"),
    ("33030000", "温州"),
    ("32010000", "南京"),
    ("32050000", "苏州"),
    ("44010000", "广州"),
    ("44030000", "深圳"),
    ("51010000", "成都"),
    ("42010000", "武汉"),
    ("61010000", "西安"),
    ("37010000", "济南"),
    ("37020000", "青岛"),
    ("21010000", "沈阳"),
    ("21020000", "大连"),
    ("35010000", "福州"),
    ("35020000", "厦门"),
    ("43010000", "长沙"),
    ("41010000", "郑州"),
    ("34010000", "合肥"),
    ("53010000", "昆明"),
];

/// Suffixes a written name may carry.
const SUFFIXES: [&str; 6] = ["壮族自治区", "回族自治区", "维吾尔自治区", "自治区", "省", "市"];

/// Resolves a condition value to its 8-digit code: a well-formed code with a known province
/// prefix as it is, a province or city name (with or without its 省/市 suffix) by the tables.
/// The four municipalities resolve by name to their province codes, which cover them whole.
pub fn resolve(value: &str) -> Option<String> {
    let v = value.trim();
    if v.len() == 8 && v.bytes().all(|b| b.is_ascii_digit()) {
        return province_known(&v[..2]).then(|| v.to_owned());
    }
    let name = SUFFIXES.iter().find_map(|s| v.strip_suffix(s)).unwrap_or(v);
    if let Some((prefix, _)) = PROVINCES.iter().find(|(_, p)| *p == name) {
        return Some(format!("{prefix}000000"));
    }
    CITIES.iter().find(|(_, c)| *c == name).map(|(code, _)| (*code).to_owned())
}

/// The province code (`PP000000`) that contains `code`.
pub fn province_of(code: &str) -> String {
    format!("{}000000", code.get(..2).unwrap_or("00"))
}

/// True when a (resolved) condition code covers a device located in `city_code`: the same
/// city, or the city's province.
pub fn covers(condition_code: &str, city_code: &str) -> bool {
    condition_code == city_code || condition_code == province_of(city_code)
}

fn province_known(prefix: &str) -> bool {
    PROVINCES.iter().any(|(p, _)| *p == prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_resolve_to_codes() {
        assert_eq!(resolve("33010000").as_deref(), Some("33010000"));
        assert_eq!(resolve("浙江").as_deref(), Some("33000000"));
        assert_eq!(resolve("浙江省").as_deref(), Some("33000000"));
        assert_eq!(resolve("杭州市").as_deref(), Some("33010000"));
        assert_eq!(resolve("上海").as_deref(), Some("31000000"));
        assert_eq!(resolve("广西壮族自治区").as_deref(), Some("45000000"));
        assert_eq!(resolve("99010000"), None, "unknown province prefix");
        assert_eq!(resolve("3301000"), None, "seven digits");
        assert_eq!(resolve("Atlantis"), None);
    }

    #[test]
    fn a_province_covers_its_cities() {
        assert!(covers("33000000", "33010000"));
        assert!(covers("33010000", "33010000"));
        assert!(!covers("33020000", "33010000"));
        assert!(!covers("51000000", "33010000"));
    }
}
