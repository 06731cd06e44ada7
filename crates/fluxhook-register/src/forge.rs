//! Which Git host software a repository lives on: [`Forge`], a handle on one host's file under
//! `src/hosts/`, and its [`HostProfile`].

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use crate::hosts::{HostApi, Subscription};

/// A Git host's API family: GitHub, GitLab, Bitbucket Cloud, Bitbucket Server, Gitea (and
/// Forgejo) or Gogs ([`Forge::ALL`]). Everything that names a host, where it lives and how its
/// API works is in that host's own file under `src/hosts/`; a `Forge` is a handle on it.
///
/// Forges compare, hash and order by their place in [`Forge::ALL`].
///
/// ```
/// use fluxhook_register::Forge;
/// let gitea: Forge = "forgejo".parse()?;
/// assert_eq!(gitea, Forge::GITEA);
/// assert_eq!(gitea.name(), "gitea");
/// assert_eq!(gitea.to_string(), "Gitea");
/// assert_eq!(gitea.profile().token_variables, ["GITEA_TOKEN", "FORGEJO_TOKEN"]);
/// # Ok::<(), fluxhook_register::UnknownForge>(())
/// ```
#[derive(Clone, Copy)]
pub struct Forge(&'static dyn HostApi);

/// What names a Git host, where it lives, and what its hooks subscribe to and deliver.
#[derive(Debug)]
#[non_exhaustive]
pub struct HostProfile {
    /// The name flags, annotations and reports write (`github`, `bitbucket-server`...).
    pub name: &'static str,
    /// Other names read as this host (`forgejo`, `bitbucket-datacenter`...).
    pub aliases: &'static [&'static str],
    /// The name messages show (`GitHub`, `Bitbucket Server`...).
    pub title: &'static str,
    /// The products that speak this API, as help texts list them (`Gitea`, `Forgejo`).
    pub products: &'static [&'static str],
    /// Host names of the SaaS instance and its SSH aliases, which name this host.
    pub hostnames: &'static [&'static str],
    /// The SaaS instances as help texts name them (`github.com`, `*.ghe.com`).
    pub saas: &'static [&'static str],
    /// Where a self-hosted instance serves this API, after its web root (`api/v3`...).
    pub api_suffix: &'static str,
    /// The environment variables `fluxhook-register` reads an access token from, in order.
    pub token_variables: &'static [&'static str],
    /// The header naming the event of a delivery, which a Receiver's `spec.events` list: one
    /// of [`fluxhook_payload::header`]'s names, where every header name is defined.
    pub event_header: &'static str,
    /// The hook field that turns off TLS verification of deliveries (`insecure_ssl`...);
    /// `None` where the instance, not the hook, decides.
    pub hook_tls_setting: Option<&'static str>,
    /// The Flux Receiver types that verify this host's deliveries (besides `generic`, which
    /// verifies nothing).
    pub receiver_types: &'static [&'static str],
    /// The hook events this client may subscribe to, and what they deliver.
    pub(crate) subscriptions: &'static [Subscription],
}

impl Forge {
    /// The forge whose API `api` is; each host's file names its own.
    pub(crate) const fn new(api: &'static dyn HostApi) -> Forge {
        Forge(api)
    }

    /// How this host's API works.
    pub(crate) fn api(self) -> &'static dyn HostApi {
        self.0
    }

    /// What names this host and what its hooks deliver.
    pub fn profile(self) -> &'static HostProfile {
        self.0.profile()
    }

    /// The forge of a known SaaS host name (`github.com`, `<name>.ghe.com`, `gitlab.com`,
    /// `bitbucket.org`, `codeberg.org`, `gitea.com`, and their SSH aliases); `None` for any
    /// other host.
    ///
    /// ```
    /// use fluxhook_register::Forge;
    /// assert_eq!(Forge::from_hostname("GitHub.com"), Some(Forge::GITHUB));
    /// assert_eq!(Forge::from_hostname("octo.ghe.com"), Some(Forge::GITHUB));
    /// assert_eq!(Forge::from_hostname("codeberg.org"), Some(Forge::GITEA));
    /// assert_eq!(Forge::from_hostname("git.example.com"), None);
    /// ```
    pub fn from_hostname(host: &str) -> Option<Forge> {
        let host = host.to_ascii_lowercase();
        Forge::ALL
            .iter()
            .copied()
            .find(|forge| forge.api().recognises(&host))
    }

    /// The name [`FromStr`] reads for this forge, as flags, annotations and reports write
    /// it: `github`, `gitlab`, `bitbucket-cloud`, `bitbucket-server`, `gitea` or `gogs`.
    ///
    /// ```
    /// use fluxhook_register::Forge;
    /// for forge in Forge::ALL {
    ///     assert_eq!(forge.name().parse(), Ok(*forge));
    /// }
    /// assert_eq!(Forge::BITBUCKET_SERVER.name(), "bitbucket-server");
    /// ```
    pub fn name(self) -> &'static str {
        self.profile().name
    }

    /// The environment variables an access token for this forge is read from, in order
    /// of preference.
    ///
    /// ```
    /// use fluxhook_register::Forge;
    /// assert_eq!(Forge::GITEA.token_variables(), ["GITEA_TOKEN", "FORGEJO_TOKEN"]);
    /// ```
    pub fn token_variables(self) -> &'static [&'static str] {
        self.profile().token_variables
    }

    /// The place of this forge in [`Forge::ALL`].
    fn index(self) -> usize {
        Forge::ALL
            .iter()
            .position(|forge| forge.name() == self.name())
            .unwrap_or(usize::MAX)
    }
}

impl PartialEq for Forge {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Forge {}

impl Hash for Forge {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl PartialOrd for Forge {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Forge {
    fn cmp(&self, other: &Self) -> Ordering {
        self.index().cmp(&other.index())
    }
}

impl fmt::Debug for Forge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Forge").field(&self.name()).finish()
    }
}

impl fmt::Display for Forge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.profile().title)
    }
}

/// A forge name that is not one [`Forge::name`] writes (or an alias of one:
/// `bitbucket`, `bitbucket-datacenter`, `forgejo`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Git provider {0:?}: expected {names}", names = forge_names())]
pub struct UnknownForge(pub String);

fn forge_names() -> String {
    let names: Vec<&str> = Forge::ALL
        .iter()
        .flat_map(|forge| {
            let profile = forge.profile();
            std::iter::once(profile.name).chain(profile.aliases.iter().copied())
        })
        .collect();
    names.join(", ")
}

impl FromStr for Forge {
    type Err = UnknownForge;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let name = name.trim().to_ascii_lowercase();
        Forge::ALL
            .iter()
            .copied()
            .find(|forge| {
                let profile = forge.profile();
                profile.name == name || profile.aliases.contains(&name.as_str())
            })
            .ok_or(UnknownForge(name))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_parse_back_and_are_unique() {
        let mut seen = HashSet::new();
        for forge in Forge::ALL {
            let profile = forge.profile();
            for name in std::iter::once(profile.name).chain(profile.aliases.iter().copied()) {
                assert!(seen.insert(name), "{name} names two forges");
                assert_eq!(name.parse::<Forge>().unwrap(), *forge);
            }
            let title = forge.to_string().to_ascii_lowercase().replace(' ', "-");
            assert_eq!(title.parse::<Forge>().unwrap(), *forge);
            assert!(!profile.products.is_empty(), "{forge}");
            assert!(!profile.token_variables.is_empty(), "{forge}");
        }
        assert_eq!("Gogs".parse::<Forge>().unwrap(), Forge::GOGS);
        let unknown = "sourcehut".parse::<Forge>().unwrap_err().to_string();
        assert!(
            unknown.contains("gogs") && unknown.contains("forgejo"),
            "{unknown}"
        );
    }

    #[test]
    fn every_forge_has_a_fake() {
        for forge in Forge::ALL {
            assert!(
                fluxhook_test_githost::HostKind::ALL
                    .iter()
                    .any(|kind| kind.name() == forge.name()),
                "no fake host imitates {forge}: add one to fluxhook-test-githost"
            );
        }
    }

    #[test]
    fn forges_order_as_listed() {
        let mut sorted = Forge::ALL.to_vec();
        sorted.reverse();
        sorted.sort();
        assert_eq!(sorted, Forge::ALL);
        assert_eq!(format!("{:?}", Forge::GITHUB), "Forge(\"github\")");
    }
}
