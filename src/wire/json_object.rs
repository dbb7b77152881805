//! JSON objects read straight into lists of pairs (no map built per object), made to mean what
//! a sorted map would.

/// Sorts `pairs` by key and keeps the last of each run of equal keys: the entries, in order,
/// that reading the object into a `BTreeMap` would give (a repeated key keeps its last value).
pub fn sorted_last_wins<K: Ord, V>(mut pairs: Vec<(K, V)>) -> Vec<(K, V)> {
    pairs.sort_by(|a, b| a.0.cmp(&b.0)); // stable: equal keys stay in the order written
    let mut out: Vec<(K, V)> = Vec::with_capacity(pairs.len());
    for pair in pairs {
        match out.last_mut() {
            Some(last) if last.0 == pair.0 => *last = pair,
            _ => out.push(pair),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_come_out_sorted_with_the_last_value_of_a_repeated_key() {
        let pairs = vec![("b", 1), ("a", 2), ("b", 3), ("c", 4), ("a", 5)];
        assert_eq!(sorted_last_wins(pairs), [("a", 5), ("b", 3), ("c", 4)]);
        assert!(sorted_last_wins(Vec::<(u8, u8)>::new()).is_empty());
    }
}
