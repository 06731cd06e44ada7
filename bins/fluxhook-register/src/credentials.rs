//! The webhook secret and the host's access token, read from files or the environment and
//! never from flag values (which `ps` shows). No message here ever holds either.

use std::path::Path;

use anyhow::{Context, bail};
use fluxhook_register::{Forge, Secret, Token};

/// Looks up an environment variable; the real environment in `main`, a table in tests.
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// `text` without the line endings at its end: files written by `echo` end in one.
pub(crate) fn trim_line_end(text: &str) -> &str {
    text.trim_end_matches(['\r', '\n'])
}

fn read_file(path: &Path, what: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} file {}", path.display()))?;
    // A webhook secret is used byte for byte but the line ending `echo` adds; an access
    // token never holds whitespace, and an HTTP header cannot carry a line ending.
    let text = match what {
        "token" => text.trim(),
        _ => trim_line_end(&text),
    };
    if text.is_empty() {
        bail!("the {what} file {} is empty", path.display());
    }
    Ok(text.to_owned())
}

/// The webhook secret from a file.
pub(crate) fn secret_from_file(path: &Path) -> anyhow::Result<Secret> {
    read_file(path, "secret").map(Secret::new)
}

/// The webhook secret from the environment variable `name`.
pub(crate) fn secret_from_env(name: &str, env: Env<'_>) -> anyhow::Result<Secret> {
    match env(name).filter(|v| !v.is_empty()) {
        Some(secret) => Ok(Secret::new(secret)),
        None => bail!("the environment variable {name} (--secret-env) is not set or empty"),
    }
}

/// Where access tokens come from: one file for every repository, or each provider's
/// environment variable.
#[derive(Debug)]
pub(crate) struct Tokens {
    from_file: Option<Token>,
}

impl Tokens {
    /// Reads `--token-file` now, when given, so that a bad file fails before any request.
    pub(crate) fn new(token_file: Option<&Path>) -> anyhow::Result<Tokens> {
        let from_file = match token_file {
            Some(path) => Some(Token::new(read_file(path, "token")?)),
            None => None,
        };
        Ok(Tokens { from_file })
    }

    /// The token for a repository on `provider`.
    pub(crate) fn for_provider(&self, provider: Forge, env: Env<'_>) -> Result<Token, String> {
        if let Some(token) = &self.from_file {
            return Ok(token.clone());
        }
        let vars = provider.token_variables();
        vars.iter()
            .find_map(|name| env(name).filter(|v| !v.trim().is_empty()))
            .map(|token| Token::new(token.trim()))
            .ok_or_else(|| {
                format!(
                    "no access token: set {} or pass --token-file",
                    vars.join(" or ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;

    use super::*;
    use proptest::prelude::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn temp_file(name: &str, contents: &str) -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("fluxhook-register-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn tokens_come_from_each_providers_variable() {
        let env = env_of(&[
            ("GITHUB_TOKEN", "gh"),
            ("GITLAB_TOKEN", "gl"),
            ("BITBUCKET_TOKEN", "bb"),
            ("FORGEJO_TOKEN", "fj"),
            ("GOGS_TOKEN", "gg"),
        ]);
        let tokens = Tokens::new(None).unwrap();
        let token = |p| tokens.for_provider(p, &env).unwrap();
        assert_eq!(token(Forge::GITHUB), Token::new("gh"));
        assert_eq!(token(Forge::GITLAB), Token::new("gl"));
        assert_eq!(token(Forge::BITBUCKET_CLOUD), Token::new("bb"));
        assert_eq!(token(Forge::BITBUCKET_SERVER), Token::new("bb"));
        assert_eq!(token(Forge::GITEA), Token::new("fj"));
        assert_eq!(token(Forge::GOGS), Token::new("gg"));
        let both = env_of(&[("GITEA_TOKEN", "gt"), ("FORGEJO_TOKEN", "fj")]);
        assert_eq!(
            tokens.for_provider(Forge::GITEA, &both).unwrap(),
            Token::new("gt")
        );
    }

    #[test]
    fn a_missing_token_names_the_variables() {
        let env = env_of(&[("GITHUB_TOKEN", "")]);
        let error = Tokens::new(None)
            .unwrap()
            .for_provider(Forge::GITEA, &env)
            .unwrap_err();
        assert_eq!(
            error,
            "no access token: set GITEA_TOKEN or FORGEJO_TOKEN or pass --token-file"
        );
        assert!(
            Tokens::new(None)
                .unwrap()
                .for_provider(Forge::GITHUB, &env)
                .is_err()
        );
    }

    #[test]
    fn a_token_file_wins_over_the_environment() {
        let path = temp_file("token", "from-file\n");
        let tokens = Tokens::new(Some(&path)).unwrap();
        let env = env_of(&[("GITHUB_TOKEN", "from-env")]);
        assert_eq!(
            tokens.for_provider(Forge::GITHUB, &env).unwrap(),
            Token::new("from-file")
        );
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn access_tokens_lose_surrounding_whitespace() {
        let path = temp_file("padded-token", "  from-file \r\n");
        let tokens = Tokens::new(Some(&path)).unwrap();
        let env = env_of(&[]);
        assert_eq!(
            tokens.for_provider(Forge::GITHUB, &env).unwrap(),
            Token::new("from-file")
        );
        std::fs::remove_file(path).unwrap();
        let env = env_of(&[("GITLAB_TOKEN", "glpat-x\n"), ("GITHUB_TOKEN", " \n")]);
        let tokens = Tokens::new(None).unwrap();
        assert_eq!(
            tokens.for_provider(Forge::GITLAB, &env).unwrap(),
            Token::new("glpat-x")
        );
        assert!(tokens.for_provider(Forge::GITHUB, &env).is_err());
    }

    #[test]
    fn secret_files_lose_their_line_ending_and_must_not_be_empty() {
        let path = temp_file("secret", "receiver-token\r\n");
        assert_eq!(
            secret_from_file(&path).unwrap(),
            Secret::new("receiver-token")
        );
        std::fs::write(&path, "\n").unwrap();
        let error = secret_from_file(&path).unwrap_err().to_string();
        assert!(error.contains("is empty"), "{error}");
        std::fs::remove_file(&path).unwrap();
        let error = format!("{:#}", secret_from_file(&path).unwrap_err());
        assert!(error.contains("cannot read the secret file"), "{error}");
    }

    #[test]
    fn secrets_from_the_environment_must_be_set() {
        let env = env_of(&[("HOOK_SECRET", "s3cr3t"), ("EMPTY", "")]);
        assert_eq!(
            secret_from_env("HOOK_SECRET", &env).unwrap(),
            Secret::new("s3cr3t")
        );
        let error = secret_from_env("EMPTY", &env).unwrap_err().to_string();
        assert!(error.contains("EMPTY"), "{error}");
        assert!(secret_from_env("UNSET", &env).is_err());
    }

    proptest! {
        #[test]
        fn only_line_endings_at_the_end_are_trimmed(text in "[a-z \t\r\n]{0,40}") {
            let trimmed = trim_line_end(&text);
            prop_assert!(text.starts_with(trimmed));
            prop_assert!(!trimmed.ends_with(['\r', '\n']));
            let removed = text.get(trimmed.len()..).unwrap();
            prop_assert!(removed.chars().all(|c| c == '\r' || c == '\n'));
        }
    }
}
