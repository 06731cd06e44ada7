//! Checks on the names, namespaces and labels a reference carries, made
//! before they reach a request path or a label selector.
//!
//! kube-rs puts an object's name into the request path as it is, so a name
//! such as `../../secrets/x` would address another resource, and one such as
//! `x?dryRun=All` would change the request; a label value such as `a,b!=c`
//! would add requirements to a selector. Receivers are
//! written by people with fewer rights than the controller that serves them,
//! so every part is held to Kubernetes' own rules first.

use std::collections::BTreeMap;

/// Why a reference cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// The name is not a DNS-1123 subdomain (at most 253 lower-case letters,
    /// digits, `-` and `.`, each dot-separated part starting and ending with a
    /// letter or digit): the rule for the names of custom resources and of
    /// nearly every built-in kind.
    #[error("{name:?} is not a valid object name")]
    Name {
        /// The name given.
        name: String,
    },
    /// The namespace is not a DNS-1123 label (at most 63 lower-case letters,
    /// digits and `-`, starting and ending with a letter or digit).
    #[error("{namespace:?} is not a valid namespace")]
    Namespace {
        /// The namespace given.
        namespace: String,
    },
    /// A `matchLabels` key is not a valid label key (an optional DNS-1123
    /// subdomain prefix and `/`, then a name of at most 63 letters, digits,
    /// `-`, `_` and `.`, starting and ending with a letter or digit).
    #[error("{key:?} is not a valid label key")]
    LabelKey {
        /// The key given.
        key: String,
    },
    /// A `matchLabels` value is not a valid label value (empty, or at most 63
    /// letters, digits, `-`, `_` and `.`, starting and ending with a letter or
    /// digit).
    #[error("{value:?} is not a valid value for label {key:?}")]
    LabelValue {
        /// The key of the label.
        key: String,
        /// The value given.
        value: String,
    },
}

/// Checks an object name, which becomes a request path segment.
pub(crate) fn check_name(name: &str) -> Result<(), ReferenceError> {
    if is_dns_subdomain(name) {
        Ok(())
    } else {
        Err(ReferenceError::Name {
            name: name.to_owned(),
        })
    }
}

/// Checks a namespace name.
pub(crate) fn check_namespace(namespace: &str) -> Result<(), ReferenceError> {
    if is_dns_label(namespace) {
        Ok(())
    } else {
        Err(ReferenceError::Namespace {
            namespace: namespace.to_owned(),
        })
    }
}

/// The label selector requiring every label of `labels` (`k1=v1,k2=v2`).
pub(crate) fn label_selector(labels: &BTreeMap<String, String>) -> Result<String, ReferenceError> {
    let mut requirements = Vec::with_capacity(labels.len());
    for (key, value) in labels {
        if !is_label_key(key) {
            return Err(ReferenceError::LabelKey { key: key.clone() });
        }
        if !value.is_empty() && !is_label_name(value) {
            return Err(ReferenceError::LabelValue {
                key: key.clone(),
                value: value.clone(),
            });
        }
        requirements.push(format!("{key}={value}"));
    }
    Ok(requirements.join(","))
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
fn is_dns_label(s: &str) -> bool {
    s.len() <= 63
        && alphanumeric_ends(
            s,
            |c| c.is_ascii_lowercase() || c.is_ascii_digit(),
            |c| c == '-',
        )
}

/// Dot-separated DNS labels, at most 253 characters.
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, at most 63 characters.
fn is_label_name(s: &str) -> bool {
    s.len() <= 63
        && alphanumeric_ends(
            s,
            |c| c.is_ascii_alphanumeric(),
            |c| matches!(c, '-' | '_' | '.'),
        )
}

/// A label name, optionally prefixed by a DNS subdomain and `/`.
fn is_label_key(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_label_name(name),
        None => is_label_name(key),
    }
}

/// Non-empty; every character `edge` or `inner`, the first and last `edge`.
fn alphanumeric_ends(s: &str, edge: impl Fn(char) -> bool, inner: impl Fn(char) -> bool) -> bool {
    let (Some(first), Some(last)) = (s.chars().next(), s.chars().last()) else {
        return false;
    };
    edge(first) && edge(last) && s.chars().all(|c| edge(c) || inner(c))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_are_dns_subdomains() {
        let longest_name = format!("{0}.{0}.{0}.{1}", "a".repeat(63), "a".repeat(61));
        assert!(check_name(&format!("{longest_name}a")).is_err());
        for bad in [
            "",
            ".",
            "..",
            "../secrets",
            "a/b",
            "a%2Fb",
            "a?dryRun=All",
            "a..b",
            "Podinfo",
            "a_b",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["podinfo", "flux-system", "a.b", "0", &longest_name] {
            assert!(check_name(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn namespaces_are_dns_labels() {
        for bad in ["", "Flux", "-a", "a-", "a.b", &"a".repeat(64)] {
            assert!(check_namespace(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "flux-system", "0", &"a".repeat(63)] {
            assert!(check_namespace(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn selects_every_label() {
        let labels = BTreeMap::from([
            ("app".to_owned(), "podinfo".to_owned()),
            ("fluxcd.io/tier".to_owned(), String::new()),
            ("team".to_owned(), "a.b-c_D".to_owned()),
        ]);
        assert_eq!(
            label_selector(&labels).unwrap(),
            "app=podinfo,fluxcd.io/tier=,team=a.b-c_D"
        );
        assert_eq!(label_selector(&BTreeMap::new()).unwrap(), "");
    }

    #[test]
    fn refuses_labels_that_would_change_the_selector() {
        let refused = |key: &str, value: &str| {
            label_selector(&BTreeMap::from([(key.to_owned(), value.to_owned())])).is_err()
        };
        assert!(refused("app", "a,b!=c"));
        assert!(refused("app", "a b"));
        assert!(refused("app in (a)", "x"));
        assert!(refused("", "x"));
        assert!(refused("/app", "x"));
        assert!(refused("Example.com/app", "x"));
        assert!(refused("app", &"v".repeat(64)));
        assert!(!refused("example.com/app", &"v".repeat(63)));
    }

    proptest! {
        #[test]
        fn accepted_labels_read_back_as_exactly_their_pairs(
            labels in proptest::collection::btree_map(".{0,12}", ".{0,12}", 0..5),
        ) {
            if let Ok(selector) = label_selector(&labels) {
                let pairs: Vec<(String, String)> = if selector.is_empty() {
                    Vec::new()
                } else {
                    selector
                        .split(',')
                        .map(|r| {
                            let (k, v) = r.split_once('=').unwrap();
                            (k.to_owned(), v.to_owned())
                        })
                        .collect()
                };
                prop_assert_eq!(pairs, labels.into_iter().collect::<Vec<_>>());
            }
        }

        #[test]
        fn valid_labels_are_accepted(
            labels in proptest::collection::btree_map(
                "([a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?\\.){0,2}[a-z]{1,5}/[A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?",
                "([A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?)?",
                0..5,
            ),
        ) {
            prop_assert!(label_selector(&labels).is_ok());
        }

        #[test]
        fn accepted_names_stay_in_one_path_segment(name in ".{0,12}|[a-z.-]{0,12}") {
            if check_name(&name).is_ok() {
                prop_assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'));
                prop_assert!(name != "." && name != ".." && !name.starts_with('.'));
            }
        }
    }
}
