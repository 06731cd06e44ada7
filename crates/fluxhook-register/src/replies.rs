//! What [`HookClient`](crate::HookClient) reads from a Git host's replies, callable without
//! a request: the same functions the client runs on each reply body, so that fuzzing them
//! exercises the client's own code.

use reqwest::header::HeaderMap;
use serde_json::Value;
use url::Url;

use crate::{Forge, Hook};

/// One page of a host's "list hooks" reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HooksPage {
    /// The hooks on the page, in the host's order.
    pub hooks: Vec<Hook>,
    /// The next page's URL as the host gave it (unchecked: the client refuses one that
    /// leaves the API URL), or `None` on the last page.
    pub next: Option<String>,
}

/// Reads one page of `provider`'s "list hooks" reply to a request for `page_url`; an error
/// says what is wrong with the reply.
///
/// ```
/// use fluxhook_register::{Forge, read_hooks_page};
/// use reqwest::header::HeaderMap;
/// use url::Url;
///
/// let url = Url::parse("https://api.github.com/repos/o/r/hooks?per_page=100")?;
/// let body = br#"[{"id": 1, "active": true, "events": ["push"],
///   "config": {"url": "https://flux.example/hook/1", "content_type": "json", "insecure_ssl": "0"}}]"#;
/// let page = read_hooks_page(Forge::GITHUB, &url, &HeaderMap::new(), body).unwrap();
/// assert_eq!(page.hooks[0].url, "https://flux.example/hook/1");
/// assert_eq!(page.next, None);
/// assert!(read_hooks_page(Forge::GITHUB, &url, &HeaderMap::new(), b"{}").is_err());
/// # Ok::<(), url::ParseError>(())
/// ```
pub fn read_hooks_page(
    provider: Forge,
    page_url: &Url,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<HooksPage, String> {
    let api = provider.api();
    let body = json(body)?;
    let next = api.next_page(page_url, headers, &body);
    let hooks = api
        .page_items(body)?
        .iter()
        .map(|item| api.parse_hook(item))
        .collect::<Result<_, _>>()?;
    Ok(HooksPage { hooks, next })
}

/// Reads `provider`'s reply describing one hook (to a create or an update).
///
/// ```
/// use fluxhook_register::{Forge, read_hook};
///
/// assert!(read_hook(Forge::GITHUB, b"[]").is_err());
/// ```
pub fn read_hook(provider: Forge, body: &[u8]) -> Result<Hook, String> {
    provider.api().parse_hook(&json(body)?)
}

/// The message in `provider`'s error reply, when it has one where the host puts it.
///
/// ```
/// use fluxhook_register::{Forge, read_error_message};
///
/// let message = read_error_message(Forge::GITHUB, br#"{"message": "Not Found"}"#);
/// assert_eq!(message.as_deref(), Some("Not Found"));
/// ```
pub fn read_error_message(provider: Forge, body: &[u8]) -> Option<String> {
    let body = serde_json::from_slice::<Value>(body).ok()?;
    provider.api().error_message(&body)
}

fn json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))
}
