#![no_main]
//! The `receiver` target: see `fluxhook_fuzz::Target::Receiver`.

use fluxhook_fuzz::Target;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| Target::Receiver.run(data));
