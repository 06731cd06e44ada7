#![no_main]
//! The `cel` target: see `fluxhook_fuzz::Target::Cel`.

use fluxhook_fuzz::Target;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| Target::Cel.run(data));
