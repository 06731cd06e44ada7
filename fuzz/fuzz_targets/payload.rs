#![no_main]
//! The `payload` target: see `fluxhook_fuzz::Target::Payload`.

use fluxhook_fuzz::Target;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| Target::Payload.run(data));
