//! The benchmark dataset: record `i` of any run, the same on every machine. Shared by the
//! bench API (`examples/bench_api.rs`) and the micro-benchmarks (`benches/micro.rs`), which
//! include this file with `#[path]`, so every benchmark measures the same bytes.
//!
//! Two shapes: `orders` (≈390 bytes, flat strings and numbers, one nested object) and `wide`
//! (≈1.6 KB: long free-text strings with escapes and non-ASCII text, nested arrays of objects
//! and of strings), so that a change tuned on short fields is also measured on the text-heavy
//! records real APIs send.

use std::fmt::Write as _;

/// Which records a benchmark serves or encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)]
pub enum Shape {
    /// [`write_record`]: today's order records.
    Orders,
    /// [`write_wide_record`]: long strings, escapes, nested arrays.
    Wide,
}

#[allow(dead_code)]
impl Shape {
    pub fn parse(s: &str) -> Option<Shape> {
        match s {
            "orders" => Some(Shape::Orders),
            "wide" => Some(Shape::Wide),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Shape::Orders => "orders",
            Shape::Wide => "wide",
        }
    }

    /// Record `i` of this shape.
    pub fn write(self, out: &mut String, i: u64) {
        match self {
            Shape::Orders => write_record(out, i),
            Shape::Wide => write_wide_record(out, i),
        }
    }
}

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

const WORDS: [&str; 16] = [
    "delivery",
    "window",
    "customer",
    "requested",
    "the",
    "parcel",
    "courier",
    "backorder",
    "Zürich",
    "façade",
    "naïve",
    "日本",
    "straße",
    "crème",
    "at",
    "loading-dock",
];
const SKUS: [&str; 6] = [
    "SKU-A1", "SKU-B22", "SKU-C333", "SKU-D4", "SKU-E55", "SKU-F6",
];
const AGENTS: [&str; 4] = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
];

/// A sentence of `n` words picked by `seed`, with JSON escapes sprinkled in (`\"`, `\\`, `\n`,
/// `\t`, `\u00e9`) the way free text arrives from an API.
fn write_text(out: &mut String, seed: u64, n: u64) {
    let mut h = seed | 1;
    for k in 0..n {
        h ^= h << 13;
        h ^= h >> 7;
        h ^= h << 17;
        if k > 0 {
            out.push(' ');
        }
        out.push_str(WORDS[(h % 16) as usize]);
        match (h >> 8) % 23 {
            0 => out.push_str(r#" \"quoted\""#),
            1 => out.push_str(r#" C:\\orders\\in"#),
            2 => out.push_str(r#"\n"#),
            3 => out.push_str(r#"\tcaf\u00e9"#),
            4 => out.push('.'),
            _ => {}
        }
    }
}

/// Record `i` of the wide shape (≈1.6 KB), identical on every machine and every run: the
/// order fields of [`write_record`] plus a long description, a comment thread (an array of
/// objects holding free text), line items (an array of objects), tags (an array of strings),
/// a user agent and a nested array of numbers.
pub fn write_wide_record(out: &mut String, i: u64) {
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
    let g = h.wrapping_mul(0xBF58_476D_1CE4_E5B9).rotate_left(29);
    let mut base = String::with_capacity(400);
    write_record(&mut base, i);
    // The order record without its closing brace, then the wide fields.
    out.push_str(&base[..base.len() - 1]);
    out.push_str(r#","description":""#);
    write_text(out, h, 40 + h % 30);
    out.push_str(r#"","comments":["#);
    for c in 0..(1 + g % 3) {
        if c > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            r#"{{"by":"agent-{:03}","at":"2026-12-{:02}T{:02}:{:02}:00Z","text":""#,
            (g >> (c * 5)) % 500,
            1 + (i + c) % 28,
            (h >> c) % 24,
            (g >> c) % 60
        );
        write_text(out, g.rotate_left(c as u32 * 7), 8 + (h >> c) % 12);
        out.push_str(r#""}"#);
    }
    out.push_str(r#"],"lines":["#);
    for l in 0..(1 + h % 4) {
        if l > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            r#"{{"sku":"{}","qty":{},"unit_price":{}.{:02},"options":["gift","size-{}"]}}"#,
            SKUS[((g >> l) % 6) as usize],
            1 + (h >> l) % 5,
            (g >> (l * 3)) % 500,
            (h >> (l * 2)) % 100,
            (g >> l) % 12
        );
    }
    let _ = write!(
        out,
        r#"],"tags":["{}","{}","region-{}"],"user_agent":"{}","scores":[[{},{}],[{}.5,-{}]],"ip":"10.{}.{}.{}"}}"#,
        WORDS[(h % 16) as usize],
        CHANNELS[((g >> 3) % 4) as usize],
        (h >> 5) % 9,
        AGENTS[((g >> 7) % 4) as usize],
        h % 100,
        g % 100,
        (h >> 9) % 10,
        (g >> 9) % 10,
        (h >> 10) % 256,
        (g >> 10) % 256,
        (h >> 18) % 256
    );
}

/// Records `from..to` as a JSON array body `{"items":[...]}` (one page of the cursor style,
/// without its cursor).
#[allow(dead_code)]
pub fn page_body(from: u64, to: u64) -> String {
    page_body_of(Shape::Orders, from, to)
}

/// [`page_body`] of records of `shape`.
#[allow(dead_code)]
pub fn page_body_of(shape: Shape, from: u64, to: u64) -> String {
    let per_record = if shape == Shape::Wide { 1700 } else { 400 };
    let mut body = String::with_capacity(((to - from) * per_record + 32) as usize);
    body.push_str(r#"{"items":["#);
    for i in from..to {
        if i > from {
            body.push(',');
        }
        shape.write(&mut body, i);
    }
    body.push_str("]}");
    body
}
