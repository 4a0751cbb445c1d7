//! Fuzzes reading applied documents as the apply endpoint does: any bytes, as UTF-8
//! text, through the YAML and the JSON parser, and every document read through the
//! validator. Nothing may panic, and no text may take much memory to parse (the
//! parsers' budget): the RSS and malloc limits below turn a blow-up into a finding.
//!
//! Run from the repository root, with nightly and `cargo install cargo-fuzz`:
//!
//!     cargo +nightly fuzz run parse_documents
//!     cargo +nightly fuzz run parse_documents -- -max_total_time=3600 \
//!         -max_len=65536 -rss_limit_mb=512 -malloc_limit_mb=128
//!
//! Seeding the corpus with `examples/*.yaml` gets to deep states sooner:
//! `mkdir -p fuzz/corpus/parse_documents && cp examples/*.yaml fuzz/corpus/parse_documents/`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use longin_crds::document::{parse_json_documents, parse_yaml_documents};
use longin_crds::validation::parse_application;

fuzz_target!(|data: &[u8]| {
    // The API answers a body that is not UTF-8 before parsing it.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = [parse_yaml_documents(text), parse_json_documents(text)];
    for documents in parsed.into_iter().flatten() {
        for document in &documents {
            // Refusals are fine; a panic is the finding.
            let _ = parse_application(document);
        }
    }
});
