//! Region names: the form every region must have, and the regions this exporter knows. A
//! well-formed name it does not know is only warned about: AWS opens regions more often than
//! the exporter is released, and refusing them would refuse new regions.

/// Every region of the partitions the SDK knows (aws-sdk-ssm 1.133's partition data): the
/// commercial one, China, GovCloud, the European Sovereign Cloud and the isolated ones.
pub const KNOWN_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    // China
    "cn-north-1",
    "cn-northwest-1",
    // GovCloud
    "us-gov-east-1",
    "us-gov-west-1",
    // European Sovereign Cloud
    "eusc-de-east-1",
    // Isolated partitions
    "eu-isoe-west-1",
    "us-iso-east-1",
    "us-iso-west-1",
    "us-isob-east-1",
    "us-isob-west-1",
    "us-isof-east-1",
    "us-isof-south-1",
];

/// A region name as AWS spells them: `us-east-1`, `ap-southeast-2`, `us-gov-west-1`,
/// `eusc-de-east-1`; it becomes part of a host name and of every series' labels.
pub(super) fn valid_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    region.len() <= 32
        && parts.len() >= 3
        && (2..=4).contains(&parts[0].len())
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

pub(super) fn region_name(region: &str) -> Result<(), String> {
    if valid_region(region) {
        Ok(())
    } else {
        Err(format!("{region:?} is not a region name like us-east-1"))
    }
}

/// The warning for a region this exporter does not know, naming the known one nearest to it.
pub(super) fn unknown_region(region: &str) -> Option<String> {
    if KNOWN_REGIONS.contains(&region) {
        return None;
    }
    // The list is not empty, so there is always a nearest; ties go to the first listed.
    let nearest = KNOWN_REGIONS
        .iter()
        .min_by_key(|known| edit_distance(region, known))
        .map_or("us-east-1", |known| known);
    Some(format!(
        "{region:?} is not a region this exporter knows; did you mean {nearest:?}?"
    ))
}

/// Levenshtein distance: the fewest single-character insertions, deletions and substitutions
/// that turn `a` into `b`. Region names are short ASCII, so bytes will do.
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    // One row of the table at a time: `row[j]` is the distance between the prefix of `a` read
    // so far and `b[..j]`.
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names() {
        for ok in [
            "us-east-1",
            "ap-southeast-2",
            "us-gov-west-1",
            "us-isob-east-1",
            "eusc-de-east-1",
        ] {
            assert!(valid_region(ok), "{ok}");
        }
        let long = format!("us-{}-1", "a".repeat(40));
        for bad in [
            "",
            "../../etc",
            "true",
            "US-East-1",
            "us-east",
            "us-east-1-",
            "useast1",
            &long,
        ] {
            assert!(!valid_region(bad), "{bad}");
        }
        assert!(KNOWN_REGIONS.iter().all(|r| valid_region(r)));
    }

    #[test]
    fn unknown_regions_name_the_nearest_known_one() {
        for (region, warning) in [
            ("us-east-1", None),
            ("cn-northwest-1", None),
            ("us-gov-west-1", None),
            (
                "us-est-1",
                Some(
                    "\"us-est-1\" is not a region this exporter knows; did you mean \"us-east-1\"?",
                ),
            ),
            (
                "eu-wset-2",
                Some(
                    "\"eu-wset-2\" is not a region this exporter knows; did you mean \"eu-west-2\"?",
                ),
            ),
            (
                "us-gov-west-2",
                Some(
                    "\"us-gov-west-2\" is not a region this exporter knows; did you mean \"us-gov-west-1\"?",
                ),
            ),
            (
                "ap-southeast-9",
                Some(
                    "\"ap-southeast-9\" is not a region this exporter knows; did you mean \"ap-southeast-1\"?",
                ),
            ),
        ] {
            assert_eq!(unknown_region(region).as_deref(), warning, "{region}");
        }
    }

    #[test]
    fn edit_distances() {
        for (a, b, d) in [
            ("", "", 0),
            ("", "abc", 3),
            ("abc", "", 3),
            ("kitten", "sitting", 3),
            ("us-est-1", "us-east-1", 1),
            ("eu-wset-1", "eu-west-1", 2),
            ("us-east-1", "us-east-1", 0),
        ] {
            assert_eq!(edit_distance(a, b), d, "{a} → {b}");
            assert_eq!(edit_distance(b, a), d, "{b} → {a}");
        }
    }
}
