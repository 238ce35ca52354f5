//! The instance-class catalog: how many vCPUs and how much memory each RDS
//! (`db.*`) instance class and ElastiCache (`cache.*`) node type has, and the
//! "satisfies" rule built on it — a class satisfies a requirement when it has
//! at least the required vCPUs and memory, so a bigger class (of any family)
//! passes, not only the same one.
//!
//! Pure data and arithmetic. The numbers are AWS's published ones. RDS
//! classes are regular (memory is a fixed multiple of the vCPUs within a
//! family), so they are listed as families; ElastiCache reports the memory
//! usable by the cache, which is irregular, so node types are listed one by one.

use std::fmt;

/// What a class offers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Size {
    pub vcpu: u32,
    pub memory_gib: f64,
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `f64`'s Display prints 16 as "16" and 6.38 as "6.38".
        write!(f, "{} vCPU / {} GiB", self.vcpu, self.memory_gib)
    }
}

/// An RDS family whose memory is `gib_per_vcpu` times its vCPUs, with the
/// sizes AWS offers in it.
struct Family {
    prefix: &'static str,
    gib_per_vcpu: f64,
    sizes: &'static [&'static str],
}

const TO_16X: &[&str] = &[
    "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge",
];
const TO_24X: &[&str] = &[
    "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge",
];
const TO_32X: &[&str] = &[
    "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge",
    "32xlarge",
];
const TO_48X: &[&str] = &[
    "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge",
    "48xlarge",
];

const RDS_FAMILIES: &[Family] = &[
    // General purpose: 4 GiB per vCPU.
    Family {
        prefix: "db.m5",
        gib_per_vcpu: 4.0,
        sizes: TO_24X,
    },
    Family {
        prefix: "db.m5d",
        gib_per_vcpu: 4.0,
        sizes: TO_24X,
    },
    Family {
        prefix: "db.m6g",
        gib_per_vcpu: 4.0,
        sizes: TO_16X,
    },
    Family {
        prefix: "db.m6gd",
        gib_per_vcpu: 4.0,
        sizes: TO_16X,
    },
    Family {
        prefix: "db.m6i",
        gib_per_vcpu: 4.0,
        sizes: TO_32X,
    },
    Family {
        prefix: "db.m6id",
        gib_per_vcpu: 4.0,
        sizes: TO_32X,
    },
    Family {
        prefix: "db.m7g",
        gib_per_vcpu: 4.0,
        sizes: TO_16X,
    },
    Family {
        prefix: "db.m7i",
        gib_per_vcpu: 4.0,
        sizes: TO_48X,
    },
    Family {
        prefix: "db.m8g",
        gib_per_vcpu: 4.0,
        sizes: TO_48X,
    },
    // Memory optimised: 8 GiB per vCPU (r4: 7.625).
    Family {
        prefix: "db.r4",
        gib_per_vcpu: 7.625,
        sizes: &[
            "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge",
        ],
    },
    Family {
        prefix: "db.r5",
        gib_per_vcpu: 8.0,
        sizes: TO_24X,
    },
    Family {
        prefix: "db.r5b",
        gib_per_vcpu: 8.0,
        sizes: TO_24X,
    },
    Family {
        prefix: "db.r5d",
        gib_per_vcpu: 8.0,
        sizes: TO_24X,
    },
    Family {
        prefix: "db.r6g",
        gib_per_vcpu: 8.0,
        sizes: TO_16X,
    },
    Family {
        prefix: "db.r6i",
        gib_per_vcpu: 8.0,
        sizes: TO_32X,
    },
    Family {
        prefix: "db.r7g",
        gib_per_vcpu: 8.0,
        sizes: TO_16X,
    },
    Family {
        prefix: "db.r7i",
        gib_per_vcpu: 8.0,
        sizes: TO_48X,
    },
    Family {
        prefix: "db.r8g",
        gib_per_vcpu: 8.0,
        sizes: TO_48X,
    },
    // Extra memory: 16 and 32 GiB per vCPU.
    Family {
        prefix: "db.x2g",
        gib_per_vcpu: 16.0,
        sizes: TO_16X,
    },
    Family {
        prefix: "db.x2iedn",
        gib_per_vcpu: 32.0,
        sizes: &[
            "xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge", "24xlarge", "32xlarge",
        ],
    },
];

/// Classes that follow no family ratio: burstable RDS classes and every
/// ElastiCache node type (memory as ElastiCache reports it for the cache).
const LISTED: &[(&str, u32, f64)] = &[
    // RDS burstable.
    ("db.t2.micro", 1, 1.0),
    ("db.t2.small", 1, 2.0),
    ("db.t2.medium", 2, 4.0),
    ("db.t2.large", 2, 8.0),
    ("db.t2.xlarge", 4, 16.0),
    ("db.t2.2xlarge", 8, 32.0),
    ("db.t3.micro", 2, 1.0),
    ("db.t3.small", 2, 2.0),
    ("db.t3.medium", 2, 4.0),
    ("db.t3.large", 2, 8.0),
    ("db.t3.xlarge", 4, 16.0),
    ("db.t3.2xlarge", 8, 32.0),
    ("db.t4g.micro", 2, 1.0),
    ("db.t4g.small", 2, 2.0),
    ("db.t4g.medium", 2, 4.0),
    ("db.t4g.large", 2, 8.0),
    ("db.t4g.xlarge", 4, 16.0),
    ("db.t4g.2xlarge", 8, 32.0),
    // ElastiCache burstable.
    ("cache.t2.micro", 1, 0.555),
    ("cache.t2.small", 1, 1.55),
    ("cache.t2.medium", 2, 3.22),
    ("cache.t3.micro", 2, 0.5),
    ("cache.t3.small", 2, 1.37),
    ("cache.t3.medium", 2, 3.09),
    ("cache.t4g.micro", 2, 0.5),
    ("cache.t4g.small", 2, 1.37),
    ("cache.t4g.medium", 2, 3.09),
    // ElastiCache general purpose.
    ("cache.m4.large", 2, 6.42),
    ("cache.m4.xlarge", 4, 14.28),
    ("cache.m4.2xlarge", 8, 29.70),
    ("cache.m4.4xlarge", 16, 60.78),
    ("cache.m4.10xlarge", 40, 154.64),
    ("cache.m5.large", 2, 6.38),
    ("cache.m5.xlarge", 4, 12.93),
    ("cache.m5.2xlarge", 8, 26.04),
    ("cache.m5.4xlarge", 16, 52.26),
    ("cache.m5.12xlarge", 48, 157.12),
    ("cache.m5.24xlarge", 96, 314.32),
    ("cache.m6g.large", 2, 6.38),
    ("cache.m6g.xlarge", 4, 12.93),
    ("cache.m6g.2xlarge", 8, 26.04),
    ("cache.m6g.4xlarge", 16, 52.26),
    ("cache.m6g.8xlarge", 32, 103.68),
    ("cache.m6g.12xlarge", 48, 157.12),
    ("cache.m6g.16xlarge", 64, 209.55),
    ("cache.m7g.large", 2, 6.38),
    ("cache.m7g.xlarge", 4, 12.93),
    ("cache.m7g.2xlarge", 8, 26.04),
    ("cache.m7g.4xlarge", 16, 52.26),
    ("cache.m7g.8xlarge", 32, 103.68),
    ("cache.m7g.12xlarge", 48, 157.12),
    ("cache.m7g.16xlarge", 64, 209.55),
    // ElastiCache memory optimised.
    ("cache.r4.large", 2, 12.3),
    ("cache.r4.xlarge", 4, 25.05),
    ("cache.r4.2xlarge", 8, 50.47),
    ("cache.r4.4xlarge", 16, 101.38),
    ("cache.r4.8xlarge", 32, 203.26),
    ("cache.r4.16xlarge", 64, 407.0),
    ("cache.r5.large", 2, 13.07),
    ("cache.r5.xlarge", 4, 26.32),
    ("cache.r5.2xlarge", 8, 52.82),
    ("cache.r5.4xlarge", 16, 105.81),
    ("cache.r5.12xlarge", 48, 317.77),
    ("cache.r5.24xlarge", 96, 635.61),
    ("cache.r6g.large", 2, 13.07),
    ("cache.r6g.xlarge", 4, 26.32),
    ("cache.r6g.2xlarge", 8, 52.82),
    ("cache.r6g.4xlarge", 16, 105.81),
    ("cache.r6g.8xlarge", 32, 209.55),
    ("cache.r6g.12xlarge", 48, 317.77),
    ("cache.r6g.16xlarge", 64, 419.09),
    ("cache.r6gd.xlarge", 4, 26.32),
    ("cache.r6gd.2xlarge", 8, 52.82),
    ("cache.r6gd.4xlarge", 16, 105.81),
    ("cache.r6gd.8xlarge", 32, 209.55),
    ("cache.r6gd.12xlarge", 48, 317.77),
    ("cache.r6gd.16xlarge", 64, 419.09),
    ("cache.r7g.large", 2, 13.07),
    ("cache.r7g.xlarge", 4, 26.32),
    ("cache.r7g.2xlarge", 8, 52.82),
    ("cache.r7g.4xlarge", 16, 105.81),
    ("cache.r7g.8xlarge", 32, 209.55),
    ("cache.r7g.12xlarge", 48, 317.77),
    ("cache.r7g.16xlarge", 64, 419.09),
    // ElastiCache network optimised.
    ("cache.c7gn.large", 2, 3.09),
    ("cache.c7gn.xlarge", 4, 6.38),
    ("cache.c7gn.2xlarge", 8, 12.94),
    ("cache.c7gn.4xlarge", 16, 26.05),
    ("cache.c7gn.8xlarge", 32, 52.26),
    ("cache.c7gn.12xlarge", 48, 78.56),
    ("cache.c7gn.16xlarge", 64, 105.81),
];

/// vCPUs of an `N`xlarge size: `large` is 2, `xlarge` 4, `Nxlarge` 4N.
fn vcpus_of_size(size: &str) -> Option<u32> {
    match size {
        "large" => Some(2),
        "xlarge" => Some(4),
        _ => size
            .strip_suffix("xlarge")?
            .parse::<u32>()
            .ok()
            .map(|n| n * 4),
    }
}

/// The catalog's size of `class` (case and surrounding blanks ignored).
pub fn size(class: &str) -> Option<Size> {
    let class = normalise(class);
    if let Some((_, vcpu, memory_gib)) = LISTED.iter().find(|(c, _, _)| *c == class) {
        return Some(Size {
            vcpu: *vcpu,
            memory_gib: *memory_gib,
        });
    }
    let (prefix, size) = class.rsplit_once('.')?;
    let family = RDS_FAMILIES.iter().find(|f| f.prefix == prefix)?;
    if !family.sizes.contains(&size) {
        return None;
    }
    let vcpu = vcpus_of_size(size)?;
    Some(Size {
        vcpu,
        memory_gib: f64::from(vcpu) * family.gib_per_vcpu,
    })
}

/// Every class the catalog knows, RDS then ElastiCache.
pub fn classes() -> Vec<String> {
    let mut out: Vec<String> = RDS_FAMILIES
        .iter()
        .flat_map(|f| f.sizes.iter().map(move |s| format!("{}.{s}", f.prefix)))
        .collect();
    out.extend(LISTED.iter().map(|(c, _, _)| c.to_string()));
    out
}

fn normalise(class: &str) -> String {
    class.trim().to_ascii_lowercase()
}

/// `db` or `cache`: which service a class belongs to.
fn service(class: &str) -> &str {
    class.split('.').next().unwrap_or_default()
}

fn service_name(prefix: &str) -> &str {
    match prefix {
        "db" => "an RDS instance class",
        "cache" => "an ElastiCache node type",
        _ => "neither an RDS class (db.*) nor an ElastiCache node type (cache.*)",
    }
}

/// Whether `have` satisfies the requirement `need`: `Err` says why not, in
/// words an operator can act on.
///
/// The same class always satisfies itself (even one the catalog does not
/// know); otherwise both must be in the catalog and `have` must have at
/// least `need`'s vCPUs and memory.
pub fn satisfies(have: &str, need: &str) -> Result<(), String> {
    let (h, n) = (normalise(have), normalise(need));
    if h == n {
        return Ok(());
    }
    if service(&h) != service(&n) {
        return Err(format!(
            "{have} is {}, but {need} is {}",
            service_name(service(&h)),
            service_name(service(&n))
        ));
    }
    match (size(&h), size(&n)) {
        (_, None) => Err(format!(
            "{need} is not in the catalog, so only {need} itself satisfies it"
        )),
        (None, Some(ns)) => Err(format!(
            "{have} is not in the catalog, so it satisfies only a requirement of exactly {have}, \
             not {need} ({ns})"
        )),
        (Some(hs), Some(ns)) => {
            if hs.vcpu >= ns.vcpu && hs.memory_gib >= ns.memory_gib {
                Ok(())
            } else {
                Err(format!("{have} has {hs}, {need} needs {ns}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sz(class: &str) -> (u32, f64) {
        let s = size(class).unwrap_or_else(|| panic!("{class} is not in the catalog"));
        (s.vcpu, s.memory_gib)
    }

    #[test]
    fn the_classes_of_the_built_in_tier_table_are_known() {
        let cases = [
            ("cache.m6g.large", 2, 6.38),
            ("cache.c7gn.xlarge", 4, 6.38),
            ("db.r7g.large", 2, 16.0),
            ("db.r5.8xlarge", 32, 256.0),
            ("db.r5.12xlarge", 48, 384.0),
        ];
        for (class, vcpu, mem) in cases {
            assert_eq!(sz(class), (vcpu, mem), "{class}");
        }
    }

    #[test]
    fn every_required_family_is_covered_with_aws_numbers() {
        // One or two sizes per family, from AWS's instance-class tables.
        let cases = [
            ("db.t3.micro", 2, 1.0),
            ("db.t3.2xlarge", 8, 32.0),
            ("db.t4g.medium", 2, 4.0),
            ("db.t4g.xlarge", 4, 16.0),
            ("cache.t3.micro", 2, 0.5),
            ("cache.t4g.medium", 2, 3.09),
            ("db.m5.large", 2, 8.0),
            ("db.m5.24xlarge", 96, 384.0),
            ("cache.m5.12xlarge", 48, 157.12),
            ("db.m6g.16xlarge", 64, 256.0),
            ("cache.m6g.8xlarge", 32, 103.68),
            ("db.m6i.32xlarge", 128, 512.0),
            ("db.m7g.4xlarge", 16, 64.0),
            ("cache.m7g.xlarge", 4, 12.93),
            ("db.r5.large", 2, 16.0),
            ("db.r5.24xlarge", 96, 768.0),
            ("cache.r5.large", 2, 13.07),
            ("db.r6g.xlarge", 4, 32.0),
            ("cache.r6g.16xlarge", 64, 419.09),
            ("db.r6i.32xlarge", 128, 1024.0),
            ("db.r7g.16xlarge", 64, 512.0),
            ("cache.r7g.2xlarge", 8, 52.82),
            ("db.r7i.48xlarge", 192, 1536.0),
            ("db.r8g.2xlarge", 8, 64.0),
            ("db.r8g.48xlarge", 192, 1536.0),
            ("db.x2g.large", 2, 32.0),
            ("db.x2g.16xlarge", 64, 1024.0),
            ("cache.c7gn.large", 2, 3.09),
            ("cache.c7gn.16xlarge", 64, 105.81),
            ("db.r4.large", 2, 15.25),
            ("db.x2iedn.xlarge", 4, 128.0),
        ];
        for (class, vcpu, mem) in cases {
            assert_eq!(sz(class), (vcpu, mem), "{class}");
        }
    }

    #[test]
    fn sizes_a_family_does_not_offer_are_unknown() {
        for class in [
            "db.m6g.24xlarge", // m6g stops at 16xlarge
            "db.r5.32xlarge",
            "db.x2g.medium",
            "db.r5.huge",
            "cache.c7gn.24xlarge",
            "db.foo.bar",
            "r5.large",
            "",
        ] {
            assert_eq!(size(class), None, "{class}");
        }
    }

    #[test]
    fn every_listed_class_has_a_plausible_size() {
        let all = classes();
        assert!(all.len() > 200, "{}", all.len());
        for class in &all {
            let s = size(class).unwrap();
            assert!(s.vcpu >= 1 && s.memory_gib > 0.0, "{class}: {s}");
            assert!(class.starts_with("db.") || class.starts_with("cache."));
        }
        let mut dedup = all.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), all.len(), "a class is listed twice");
    }

    #[test]
    fn lookup_ignores_case_and_blanks() {
        assert_eq!(sz(" DB.R5.8XLARGE "), (32, 256.0));
    }

    #[test]
    fn satisfies_means_at_least_the_vcpus_and_the_memory() {
        // (have, need, satisfied)
        let cases = [
            ("db.r5.8xlarge", "db.r5.8xlarge", true),  // identical
            ("db.r5.12xlarge", "db.r5.8xlarge", true), // bigger, same family
            ("db.r7g.8xlarge", "db.r5.8xlarge", true), // same size, other family
            ("db.r6i.16xlarge", "db.r5.12xlarge", true),
            ("db.x2g.8xlarge", "db.r5.8xlarge", true), // more memory, same vCPU
            ("db.m5.16xlarge", "db.r5.8xlarge", true), // 64 vCPU / 256 GiB
            ("db.r7g.large", "db.r5.8xlarge", false),  // smaller
            ("db.r5.8xlarge", "db.r5.12xlarge", false),
            ("db.m5.8xlarge", "db.r5.8xlarge", false), // enough vCPU, too little memory
            ("db.x2g.4xlarge", "db.r5.8xlarge", false), // enough memory, too few vCPU
            ("cache.c7gn.xlarge", "cache.m6g.large", true),
            ("cache.m6g.large", "cache.c7gn.xlarge", false), // 2 < 4 vCPU
            ("cache.r6g.xlarge", "cache.c7gn.xlarge", true),
            ("cache.m6g.xlarge", "cache.c7gn.xlarge", true), // 12.93 >= 6.38 GiB
            ("cache.t3.medium", "cache.c7gn.large", true),   // 3.09 == 3.09
            ("cache.t3.small", "cache.c7gn.large", false),
            ("db.foo.bar", "db.foo.bar", true), // unknown but identical
            ("DB.R5.8XLARGE", "db.r5.8xlarge", true),
            ("db.foo.bar", "db.r5.large", false),
            ("db.r5.24xlarge", "db.foo.bar", false),
            ("cache.r6g.16xlarge", "db.r5.large", false), // other service
        ];
        for (have, need, ok) in cases {
            assert_eq!(satisfies(have, need).is_ok(), ok, "{have} vs {need}");
        }
    }

    #[test]
    fn why_names_both_sizes_or_the_unknown_class() {
        assert_eq!(
            satisfies("db.r7g.large", "db.r5.8xlarge").unwrap_err(),
            "db.r7g.large has 2 vCPU / 16 GiB, db.r5.8xlarge needs 32 vCPU / 256 GiB"
        );
        assert_eq!(
            satisfies("cache.m6g.large", "cache.c7gn.xlarge").unwrap_err(),
            "cache.m6g.large has 2 vCPU / 6.38 GiB, cache.c7gn.xlarge needs 4 vCPU / 6.38 GiB"
        );
        assert_eq!(
            satisfies("db.r5.24xlarge", "db.foo.bar").unwrap_err(),
            "db.foo.bar is not in the catalog, so only db.foo.bar itself satisfies it"
        );
        let e = satisfies("db.serverless", "db.r5.8xlarge").unwrap_err();
        assert!(
            e.starts_with("db.serverless is not in the catalog")
                && e.contains("db.r5.8xlarge (32 vCPU / 256 GiB)"),
            "{e}"
        );
        let e = satisfies("cache.r6g.large", "db.r5.large").unwrap_err();
        assert!(
            e.contains("ElastiCache node type") && e.contains("RDS instance class"),
            "{e}"
        );
    }
}
