//! Any text as a config file: parsing never panics, and what it accepts it accepts again (the
//! same text gives the same verdict), as a reload would.
#![no_main]

use libfuzzer_sys::fuzz_target;
use syhub_ntp_config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let first = Config::parse(text, "fuzz.toml");
    let second = Config::parse(text, "fuzz.toml");
    assert_eq!(first.is_ok(), second.is_ok());
    if let Err(error) = first {
        // The message names the file: a user can find what is wrong.
        assert!(error.to_string().contains("fuzz.toml"), "{error}");
    }
});
