//! The kubeconfig that points a client at the server.

/// The name of the cluster, user and context in the kubeconfig.
const NAME: &str = "fluxhook-test";

/// A kubeconfig whose current context reaches `server` (plain HTTP) with bearer `token` and
/// namespace `default`.
pub(crate) fn kubeconfig_yaml(server: &str, token: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {NAME}
  cluster:
    server: {server}
users:
- name: {NAME}
  user:
    token: {token}
contexts:
- name: {NAME}
  context:
    cluster: {NAME}
    user: {NAME}
    namespace: default
current-context: {NAME}
preferences: {{}}
"
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn names_the_server_in_the_current_context() {
        let yaml = kubeconfig_yaml("http://127.0.0.1:4321", "secret-token");
        let parsed: serde_json::Value = serde_yaml_ng::from_str(&yaml).unwrap();
        assert_eq!(parsed["current-context"], NAME);
        assert_eq!(
            parsed["clusters"][0]["cluster"]["server"],
            "http://127.0.0.1:4321"
        );
        assert_eq!(parsed["contexts"][0]["context"]["cluster"], NAME);
        assert_eq!(parsed["users"][0]["user"]["token"], "secret-token");
    }
}
