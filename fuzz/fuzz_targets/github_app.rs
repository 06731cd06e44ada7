#![no_main]
//! The `github_app` target: see `fluxhook_fuzz::Target::GitHubApp`.

use fluxhook_fuzz::Target;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| Target::GitHubApp.run(data));
