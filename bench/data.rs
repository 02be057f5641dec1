//! The benchmark dataset: record `i` of any run, the same on every machine. Shared by the
//! bench API (`examples/bench_api.rs`) and the micro-benchmarks (`benches/micro.rs`), which
//! include this file with `#[path]`, so every benchmark measures the same bytes.

use std::fmt::Write as _;

const COUNTRIES: [&str; 8] = ["SE", "DE", "US", "JP", "BR", "KE", "IN", "FR"];
const STATUSES: [&str; 5] = ["pending", "paid", "shipped", "delivered", "returned"];
const TIERS: [&str; 4] = ["bronze", "silver", "gold", "platinum"];
const CHANNELS: [&str; 4] = ["web", "mobile", "store", "partner"];
const NOTES: [&str; 6] = [
    "leave at the door",
    "call on arrival, please",
    "fragile: \\\"glass\\\"",
    "two boxes\\nsecond one later",
    "gift wrap requested",
    "",
];

/// Record `i` as one JSON object (≈390 bytes), identical on every machine and every run.
pub fn write_record(out: &mut String, i: u64) {
    // A cheap deterministic mix so values vary without a RNG.
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
    let g = h.wrapping_mul(0xBF58_476D_1CE4_E5B9).rotate_left(29);
    let day = 1 + (i % 28);
    let (hour, minute, second) = (h % 24, (h >> 8) % 60, (h >> 16) % 60);
    let customer = 100_000 + (g % 900_000);
    let _ = write!(
        out,
        concat!(
            r#"{{"id":{i},"order_ref":"ORD-{i:010}-{ref:04X}","status":"{status}","#,
            r#""customer":{{"id":{customer},"name":"Customer {customer}","email":"c{customer}@example.com","#,
            r#""country":"{country}","tier":"{tier}"}},"#,
            r#""amount":{amount_int}.{amount_frac:02},"currency":"EUR","quantity":{qty},"#,
            r#""discount":0.{disc:02},"paid":{paid},"channel":"{channel}","#,
            r#""note":"{note}","warehouse":"WH-{wh:03}","#,
            r#""created_at":"2026-11-{day:02}T{hour:02}:{minute:02}:{second:02}Z","#,
            r#""updated_at":"2026-12-{day:02}T{uhour:02}:{minute:02}:{second:02}Z"}}"#
        ),
        i = i,
        ref = g % 0x1_0000,
        status = STATUSES[(h % 5) as usize],
        customer = customer,
        country = COUNTRIES[((h >> 3) % 8) as usize],
        tier = TIERS[((g >> 5) % 4) as usize],
        amount_int = (h >> 20) % 10_000,
        amount_frac = (g >> 11) % 100,
        qty = 1 + (g % 9),
        disc = (h >> 7) % 40,
        paid = !h.is_multiple_of(7),
        channel = CHANNELS[((g >> 9) % 4) as usize],
        note = NOTES[((g >> 13) % 6) as usize],
        wh = (g >> 17) % 200,
        day = day,
        hour = hour,
        uhour = (hour + 1 + g % 20) % 24,
        minute = minute,
        second = second,
    );
}

/// Records `from..to` as a JSON array body `{"items":[...]}` (one page of the cursor style,
/// without its cursor).
#[allow(dead_code)]
pub fn page_body(from: u64, to: u64) -> String {
    let mut body = String::with_capacity(((to - from) * 400 + 32) as usize);
    body.push_str(r#"{"items":["#);
    for i in from..to {
        if i > from {
            body.push(',');
        }
        write_record(&mut body, i);
    }
    body.push_str("]}");
    body
}
