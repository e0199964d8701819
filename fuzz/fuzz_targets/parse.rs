//! Feeds arbitrary text to the statement parser: it must never panic, and every backstop command
//! it returns must print as SQL that parses back to the same command.

#![no_main]

use backstop::sql::{Parsed, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = parse(sql) else {
        return;
    };
    for statement in parsed {
        if let Parsed::Backstop(command) = statement {
            let canonical = command.to_string();
            assert_eq!(
                parse(&canonical),
                Ok(vec![Parsed::Backstop(command)]),
                "canonical form {canonical:?} of {sql:?}"
            );
        }
    }
});
