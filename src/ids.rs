//! SSM's identifiers, as the configuration, the events and the simulator all check them, and
//! as the exporter compares them: nothing here depends on the rest of the crate.

/// Whether `s` matches SSM's pattern for association and execution IDs,
/// `[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}`.
pub fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `id` as the exporter keeps association and execution IDs: in lower case, because SSM's
/// pattern takes either case for the same ID and the configuration, events and API may differ.
pub fn fold(id: &str) -> String {
    id.to_ascii_lowercase()
}

/// Whether `a` and `b` name the same association or execution, whatever their case.
pub fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

#[cfg(test)]
mod tests {
    use super::{fold, is_uuid, same};

    #[test]
    fn ids() {
        const A1: &str = "fa94c678-85c6-4d40-926b-7c791a0b1c2d";
        assert!(is_uuid(A1));
        assert!(is_uuid(&A1.to_ascii_uppercase()));
        for bad in [
            "fa94c678-85c6-4d40-926b-7c791EXAMPLE",
            "fa94c678-85c6-4d40-926b",
            "fa94c67885c64d40926b7c791a0b1c2d",
            "fa94c678-85c6-4d40-926b-7c791a0b1c2d-",
            "",
        ] {
            assert!(!is_uuid(bad), "{bad}");
        }
    }

    #[test]
    fn case_does_not_matter() {
        const UPPER: &str = "FA94C678-85C6-4D40-926B-7C791A0B1C2D";
        assert_eq!(fold(UPPER), "fa94c678-85c6-4d40-926b-7c791a0b1c2d");
        assert!(same(UPPER, "fa94c678-85c6-4d40-926b-7C791a0b1c2d"));
        assert!(!same(UPPER, "fa94c678-85c6-4d40-926b-7c791a0b1c2e"));
    }
}
