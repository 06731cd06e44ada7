#![no_main]
//! The `targeting` target: see `fluxhook_fuzz::Target::Targeting`.

use fluxhook_fuzz::Target;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| Target::Targeting.run(data));
