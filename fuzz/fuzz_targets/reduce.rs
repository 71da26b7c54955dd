#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    audithound::ingest::fuzzing::reduce(data);
});
