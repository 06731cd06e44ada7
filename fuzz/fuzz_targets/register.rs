#![no_main]
//! The `register` target: see `fluxhook_fuzz::Target::Register`.

use fluxhook_fuzz::Target;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| Target::Register.run(data));
