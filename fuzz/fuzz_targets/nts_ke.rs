//! Any bytes as an NTS-KE message, from a client or a server: finding its end, splitting it into
//! records and reading it as a request or a response never panic; a message the server reads as
//! a request has an end within the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use syhub_ntp_proto::nts::ke::{KeRequest, KeResponse, message_len, records};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(len)) = message_len(data) {
        assert!(len <= data.len());
        let message = &data[..len];
        let _ = records(message);
        if let Ok(request) = KeRequest::parse(message) {
            let _ = request.chosen();
        }
        let _ = KeResponse::parse(message);
    }
    let _ = KeResponse::parse(data);
});
