//! `m365-emulator --scenario demo|FILE --port N`

fn main() {}
