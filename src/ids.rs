//! SSM's identifiers, as the configuration, the events and the simulator all check them:
//! nothing here depends on the rest of the crate.

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

#[cfg(test)]
mod tests {
    use super::is_uuid;

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
}
