#![no_main]

use audithound::ingest::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    audithound::ingest::fuzzing::file(data, Some(Format::Parquet));
});
