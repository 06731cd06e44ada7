#![no_main]
//! The `signature` target: see `fluxhook_fuzz::Target::Signature`.

use fluxhook_fuzz::Target;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| Target::Signature.run(data));
