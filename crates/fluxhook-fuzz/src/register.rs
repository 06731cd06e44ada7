//! Git repository URLs and Git host API replies.
//!
//! Input: a selector byte. Bit 0 clear, a repository: `url NUL api-base NUL
//! webhook-path`, with the host's provider given (the rest of the selector,
//! modulo 7, 0 for none: recognised from the host name). Bit 0 set, a
//! reply of the provider the rest of the selector picks: `page-url NUL
//! headers NUL body`.

use fluxhook_register::{
    Forge, GitScheme, GitUrl, HostConfig, HostedRepository, read_error_message, read_hook,
    read_hooks_page, receiver_url,
};
use url::Url;

use crate::input::{fields, headers, selector, text};

pub(crate) fn run(data: &[u8]) {
    let (select, rest) = selector(data);
    if select & 1 == 0 {
        let provider = match usize::from(select >> 1) % (Forge::ALL.len() + 1) {
            0 => None,
            n => Forge::ALL.get(n - 1).copied(),
        };
        repository(provider, rest);
    } else {
        let provider = Forge::ALL[usize::from(select >> 1) % Forge::ALL.len()];
        reply(provider, rest);
    }
}

fn repository(provider: Option<Forge>, data: &[u8]) {
    let parts = fields(data, 3);
    let (git_url, api_base, path) = (text(parts[0]), text(parts[1]), text(parts[2]));

    if let Ok(url) = GitUrl::parse(&git_url) {
        assert!(!url.host.is_empty(), "a Git URL without host: {url:?}");
        assert_eq!(url.host, url.host.to_ascii_lowercase());
        assert!(!url.segments.is_empty());
        assert!(
            url.segments
                .iter()
                .all(|s| !s.is_empty() && s != "." && s != ".."),
            "a Git URL with an empty or relative segment: {url:?}"
        );
        assert!(url.port.is_none() || url.scheme != GitScheme::Scp);
    }

    let api_base = Url::parse(&api_base).ok();
    let host = provider.map(|provider| HostConfig {
        provider,
        api_base: api_base.clone(),
    });
    match HostedRepository::from_git_url(&git_url, host.as_ref()) {
        Ok(repository) => {
            assert!(!repository.owner().is_empty() && !repository.name().is_empty());
            assert_eq!(
                repository.full_name(),
                format!("{}/{}", repository.owner(), repository.name())
            );
            if let Some(provider) = provider {
                assert_eq!(repository.forge(), provider);
            }
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }

    // The hook's URL stays on the receiver's host: the secret goes there.
    if let Some(base) = api_base
        && let Ok(url) = receiver_url(&base, &path)
    {
        assert_eq!(url.scheme(), base.scheme());
        assert_eq!(url.host_str(), base.host_str());
        assert_eq!(url.port(), base.port());
        assert_eq!(url.query(), None, "{base} + {path:?} = {url}");
        assert_eq!(url.fragment(), None, "{base} + {path:?} = {url}");
    }
}

fn reply(provider: Forge, data: &[u8]) {
    let parts = fields(data, 3);
    let page_url = Url::parse(&text(parts[0]))
        .unwrap_or_else(|_| Url::parse("https://api.example/hooks").expect("a URL"));
    let headers = headers(parts[1]);
    let body = parts[2];

    let page = read_hooks_page(provider, &page_url, &headers, body);
    // A page that is a plain array holds what each element reads as alone.
    if let (Ok(page), Ok(serde_json::Value::Array(items))) =
        (&page, serde_json::from_slice::<serde_json::Value>(body))
    {
        assert_eq!(page.hooks.len(), items.len());
        for (hook, item) in page.hooks.iter().zip(&items) {
            // Only where printing the element keeps it: serde_json reads a
            // long decimal to a nearby float, not the one it prints.
            let printed = item.to_string();
            if serde_json::from_str::<serde_json::Value>(&printed)
                .ok()
                .as_ref()
                != Some(item)
            {
                continue;
            }
            let alone = read_hook(provider, printed.as_bytes());
            assert_eq!(alone.as_ref(), Ok(hook));
        }
    }
    let _ = read_hook(provider, body);
    let _ = read_error_message(provider, body);
}
