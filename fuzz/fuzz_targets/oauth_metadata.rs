#![no_main]
//! OAuth client metadata (registration requests and metadata documents): name and redirect URIs.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|x: (&str, Option<&str>, Vec<String>)| {
    let (client_id, name, uris) = x;
    exogate_core::fuzz_checks::client_metadata(client_id, name, &uris);
});
