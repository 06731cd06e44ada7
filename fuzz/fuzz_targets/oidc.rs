#![no_main]
//! The `oidc` target: see `fluxhook_fuzz::Target::Oidc`.

use fluxhook_fuzz::Target;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| Target::Oidc.run(data));
