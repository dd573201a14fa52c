//! The generators. Everything is driven by one seeded PRNG stream per file, so the
//! same arguments always give byte-identical output. `customers.csv` depends only on
//! (customers, seed), not on the number of orders.

use std::io::{self, Write};

pub const CUSTOMERS_HEADER: &[u8] = b"customer_id,customer_name,email,region,signup_date\n";
pub const ORDERS_HEADER: &[u8] = b"order_id,customer_id,order_date,amount,status\n";

// Dirty-row rates in parts per million.
/// An extra customer line with an empty customer_id, per customer.
const CUST_EMPTY_ID_PPM: u64 = 20_000;
/// The customer's line repeated byte for byte, later in the file.
const CUST_DUP_LINE_PPM: u64 = 20_000;
/// A second, different line with the same customer_id, later in the file.
const CUST_DUP_ID_PPM: u64 = 5_000;
/// Email upper-cased and/or padded with spaces.
const CUST_DIRTY_EMAIL_PPM: u64 = 100_000;
/// Amount empty, `N/A` or `unknown` (a third each).
const ORD_BAD_AMOUNT_PPM: u64 = 30_000;
/// A second line with the same order_id and different values.
const ORD_DUP_ID_PPM: u64 = 20_000;
/// customer_id with no customer (ids above the customer range).
const ORD_ORPHAN_PPM: u64 = 10_000;
const ORD_CANCELLED_PPM: u64 = 100_000;

/// Delayed duplicates come back 1..=DELAY_MAX records later.
const DELAY_MAX: u64 = 300;

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub const fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day number since 1970-01-01.
pub const fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Signups: 2022-01-01 .. 2023-12-31.
const SIGNUP_FIRST: i64 = days_from_civil(2022, 1, 1);
const SIGNUP_DAYS: u64 = 730;
/// Orders: 2024-01-01 .. 2024-03-31 (91 days, 2024 is a leap year).
const ORDER_FIRST: i64 = days_from_civil(2024, 1, 1);
const ORDER_DAYS: u64 = 91;

const FIRST_NAMES: &[&str] = &[
    "Ada", "Alan", "Alice", "Amara", "Ana", "Ben", "Bob", "Carla", "Chen", "Clara", "Dan", "Diego", "Elena", "Emma",
    "Farah", "Grace", "Hana", "Ivan", "Jonas", "Julia", "Kai", "Karim", "Lena", "Leo", "Lina", "Luca", "Maya", "Mia",
    "Nadia", "Noah", "Omar", "Paula", "Priya", "Rosa", "Sam", "Sara", "Tariq", "Uma", "Victor", "Wei", "Yara", "Zoe",
];
const LAST_NAMES: &[&str] = &[
    "Adams", "Baker", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hansen", "Ito", "Jensen", "Khan", "Lopez",
    "Moreau", "Nakamura", "Novak", "Okafor", "Petrov", "Quinn", "Rossi", "Silva", "Smith", "Tanaka", "Ueda", "Varga",
    "Weber", "Xu", "Yilmaz", "Zhang",
];
const DOMAINS: &[&str] = &["example.com", "example.org", "example.net", "mail.test"];
const REGIONS: &[&str] = &["north", "south", "east", "west", "central"];

/// SplitMix64: tiny, fast, good enough for test data, and fully specified.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (Lemire's multiply-shift; the tiny bias is irrelevant here).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
    #[inline]
    fn chance(&mut self, ppm: u64) -> bool {
        self.below(1_000_000) < ppm
    }
    #[inline]
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

#[inline]
fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

#[inline]
fn push_2digits(buf: &mut Vec<u8>, n: u64) {
    buf.push(b'0' + (n / 10) as u8);
    buf.push(b'0' + (n % 10) as u8);
}

/// `YYYY-MM-DD`.
#[inline]
fn push_date(buf: &mut Vec<u8>, days: i64) {
    let (y, m, d) = civil_from_days(days);
    push_u64(buf, y as u64);
    buf.push(b'-');
    push_2digits(buf, m as u64);
    buf.push(b'-');
    push_2digits(buf, d as u64);
}

/// Cents as a plain decimal with exactly two places, e.g. 1234 -> `12.34`.
#[inline]
fn push_cents(buf: &mut Vec<u8>, cents: u64) {
    push_u64(buf, cents / 100);
    buf.push(b'.');
    push_2digits(buf, cents % 100);
}

#[inline]
fn push_lower(buf: &mut Vec<u8>, s: &str) {
    buf.extend(s.bytes().map(|b| b.to_ascii_lowercase()));
}

#[inline]
fn push_upper(buf: &mut Vec<u8>, s: &str) {
    buf.extend(s.bytes().map(|b| b.to_ascii_uppercase()));
}

/// `Xyz` with only the first letter upper-case.
#[inline]
fn push_capitalized(buf: &mut Vec<u8>, s: &str) {
    for (i, b) in s.bytes().enumerate() {
        buf.push(if i == 0 { b.to_ascii_uppercase() } else { b.to_ascii_lowercase() });
    }
}

/// Lines held back to be written a few records later (duplicates "later in the
/// file"). A fixed set of reusable buffers: no allocation per row once warm.
struct Delayed {
    slots: Vec<Slot>,
    /// Smallest `due` among used slots (u64::MAX when none).
    min_due: u64,
}

struct Slot {
    used: bool,
    due: u64,
    line: Vec<u8>,
}

impl Delayed {
    const SLOTS: usize = 64;

    fn new() -> Self {
        let slots = (0..Self::SLOTS).map(|_| Slot { used: false, due: 0, line: Vec::with_capacity(128) }).collect();
        Delayed { slots, min_due: u64::MAX }
    }

    fn recompute_min(&mut self) {
        self.min_due = self.slots.iter().filter(|s| s.used).map(|s| s.due).min().unwrap_or(u64::MAX);
    }

    /// Writes out the used slot with the smallest (due, index).
    fn write_earliest<W: Write>(&mut self, out: &mut W) -> io::Result<bool> {
        let best = (0..self.slots.len()).filter(|&i| self.slots[i].used).min_by_key(|&i| (self.slots[i].due, i));
        match best {
            Some(i) => {
                out.write_all(&self.slots[i].line)?;
                self.slots[i].used = false;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn hold<W: Write>(&mut self, due: u64, line: &[u8], out: &mut W) -> io::Result<u64> {
        let mut written = 0;
        if !self.slots.iter().any(|s| !s.used) {
            self.write_earliest(out)?;
            written += 1;
        }
        let slot = self.slots.iter_mut().find(|s| !s.used).expect("a free slot");
        slot.used = true;
        slot.due = due;
        slot.line.clear();
        slot.line.extend_from_slice(line);
        self.recompute_min();
        Ok(written)
    }

    /// Writes every held line whose due step has come, in (due, slot) order.
    fn release<W: Write>(&mut self, step: u64, out: &mut W) -> io::Result<u64> {
        if step < self.min_due {
            return Ok(0);
        }
        let mut written = 0;
        loop {
            self.recompute_min();
            if self.min_due > step {
                return Ok(written);
            }
            self.write_earliest(out)?;
            written += 1;
        }
    }

    fn drain<W: Write>(&mut self, out: &mut W) -> io::Result<u64> {
        let mut written = 0;
        while self.write_earliest(out)? {
            written += 1;
        }
        self.min_due = u64::MAX;
        Ok(written)
    }
}

/// One customer line: `id,"Last, First",email,region,signup_date\n`.
fn customer_line(rng: &mut Rng, id: Option<u64>, line: &mut Vec<u8>) {
    line.clear();
    let first = rng.pick(FIRST_NAMES);
    let last = rng.pick(LAST_NAMES);
    let domain = rng.pick(DOMAINS);
    let region = rng.pick(REGIONS);
    let signup = SIGNUP_FIRST + rng.below(SIGNUP_DAYS) as i64;
    // Lines without an id still get a plausible, unique-ish email number.
    let email_no = match id {
        Some(id) => id,
        None => 1 + rng.below(1_000_000),
    };

    if let Some(id) = id {
        push_u64(line, id);
    }
    line.extend_from_slice(b",\"");
    line.extend_from_slice(last.as_bytes());
    line.extend_from_slice(b", ");
    line.extend_from_slice(first.as_bytes());
    line.extend_from_slice(b"\",");

    // Email: clean is `first.lastN@domain`, all lower-case.
    let style = if rng.chance(CUST_DIRTY_EMAIL_PPM) { 1 + rng.below(3) } else { 0 };
    match style {
        // Upper-cased, unpadded.
        1 => {
            push_upper(line, first);
            line.push(b'.');
            push_upper(line, last);
            push_u64(line, email_no);
            line.push(b'@');
            push_upper(line, domain);
        }
        // Padded with spaces inside a quoted field, optionally capitalized.
        _ if style >= 2 => {
            let lead = rng.below(3); // 0..=2
            let trail = if lead == 0 { 1 + rng.below(2) } else { rng.below(3) };
            line.push(b'"');
            line.extend(std::iter::repeat_n(b' ', lead as usize));
            if style == 2 {
                push_capitalized(line, first);
                line.push(b'.');
                push_capitalized(line, last);
                push_u64(line, email_no);
                line.push(b'@');
                push_capitalized(line, domain);
            } else {
                push_lower(line, first);
                line.push(b'.');
                push_lower(line, last);
                push_u64(line, email_no);
                line.push(b'@');
                line.extend_from_slice(domain.as_bytes());
            }
            line.extend(std::iter::repeat_n(b' ', trail as usize));
            line.push(b'"');
        }
        _ => {
            push_lower(line, first);
            line.push(b'.');
            push_lower(line, last);
            push_u64(line, email_no);
            line.push(b'@');
            line.extend_from_slice(domain.as_bytes());
        }
    }
    line.push(b',');
    line.extend_from_slice(region.as_bytes());
    line.push(b',');
    push_date(line, signup);
    line.push(b'\n');
}

/// Writes `customers.csv` for customer ids 1..=n. Returns the number of data lines.
pub fn write_customers<W: Write>(n: u64, seed: u64, out: &mut W) -> io::Result<u64> {
    let mut rng = Rng::new(seed ^ 0xC057_0E25_0000_0001);
    let mut line = Vec::with_capacity(128);
    let mut delayed = Delayed::new();
    let mut lines = 0u64;
    out.write_all(CUSTOMERS_HEADER)?;
    for id in 1..=n {
        if rng.chance(CUST_EMPTY_ID_PPM) {
            customer_line(&mut rng, None, &mut line);
            out.write_all(&line)?;
            lines += 1;
        }
        customer_line(&mut rng, Some(id), &mut line);
        out.write_all(&line)?;
        lines += 1;
        if rng.chance(CUST_DUP_LINE_PPM) {
            let due = id + 1 + rng.below(DELAY_MAX);
            lines += delayed.hold(due, &line, out)?;
        }
        if rng.chance(CUST_DUP_ID_PPM) {
            // A different line for the same id; the earlier one wins in silver.
            customer_line(&mut rng, Some(id), &mut line);
            let due = id + 1 + rng.below(DELAY_MAX);
            lines += delayed.hold(due, &line, out)?;
        }
        lines += delayed.release(id, out)?;
    }
    lines += delayed.drain(out)?;
    Ok(lines)
}

/// One order line: `order_id,customer_id,order_date,amount,status\n`.
/// `date_shift` moves the date (mod the range) so that duplicates differ.
fn order_line(rng: &mut Rng, order_id: u64, customers: u64, date_shift: u64, line: &mut Vec<u8>) {
    line.clear();
    let customer_id =
        if rng.chance(ORD_ORPHAN_PPM) { customers + 1 + rng.below(customers.max(1)) } else { 1 + rng.below(customers) };
    let day = (rng.below(ORDER_DAYS) + date_shift) % ORDER_DAYS;
    push_u64(line, order_id);
    line.push(b',');
    push_u64(line, customer_id);
    line.push(b',');
    push_date(line, ORDER_FIRST + day as i64);
    line.push(b',');
    if rng.chance(ORD_BAD_AMOUNT_PPM) {
        match rng.below(3) {
            0 => {}
            1 => line.extend_from_slice(b"N/A"),
            _ => line.extend_from_slice(b"unknown"),
        }
    } else {
        let bucket = rng.below(100);
        let cents = if bucket < 90 {
            500 + rng.below(24_501) // 5.00 .. 250.00
        } else if bucket < 99 {
            25_001 + rng.below(175_000) // 250.01 .. 2000.00
        } else {
            1 + rng.below(999_999) // 0.01 .. 9999.99
        };
        push_cents(line, cents);
    }
    line.push(b',');
    let status = if rng.chance(ORD_CANCELLED_PPM) {
        "cancelled"
    } else {
        match rng.below(100) {
            0..60 => "completed",
            60..85 => "shipped",
            _ => "pending",
        }
    };
    line.extend_from_slice(status.as_bytes());
    line.push(b'\n');
}

/// Writes `orders.csv` for order ids 1..=m over customer ids 1..=customers (plus
/// orphans above that range). Returns the number of data lines.
pub fn write_orders<W: Write>(m: u64, customers: u64, seed: u64, out: &mut W) -> io::Result<u64> {
    let customers = customers.max(1);
    let mut rng = Rng::new(seed ^ 0x0BDE_B500_0000_0002);
    let mut line = Vec::with_capacity(96);
    let mut delayed = Delayed::new();
    let mut lines = 0u64;
    out.write_all(ORDERS_HEADER)?;
    for id in 1..=m {
        order_line(&mut rng, id, customers, 0, &mut line);
        if rng.chance(ORD_DUP_ID_PPM) {
            let due = id + 1 + rng.below(DELAY_MAX);
            if rng.below(2) == 0 {
                // This line first, a different one with the same id later.
                out.write_all(&line)?;
                lines += 1;
                let shift = 1 + rng.below(ORDER_DAYS - 1);
                order_line(&mut rng, id, customers, shift, &mut line);
                lines += delayed.hold(due, &line, out)?;
            } else {
                // Hold this line back; a different one with the same id comes first.
                lines += delayed.hold(due, &line, out)?;
                let shift = 1 + rng.below(ORDER_DAYS - 1);
                order_line(&mut rng, id, customers, shift, &mut line);
                out.write_all(&line)?;
                lines += 1;
            }
        } else {
            out.write_all(&line)?;
            lines += 1;
        }
        lines += delayed.release(id, out)?;
    }
    lines += delayed.drain(out)?;
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minimal RFC 4180 field splitter for one line without the newline.
    fn fields(line: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (quoted, c) {
                (true, '"') if chars.peek() == Some(&'"') => {
                    cur.push('"');
                    chars.next();
                }
                (true, '"') => quoted = false,
                (false, '"') if cur.is_empty() => quoted = true,
                (false, ',') => out.push(std::mem::take(&mut cur)),
                (_, c) => cur.push(c),
            }
        }
        assert!(!quoted, "unterminated quote in {line:?}");
        out.push(cur);
        out
    }

    fn gen_both(n: u64, m: u64, seed: u64) -> (String, String) {
        let mut c = Vec::new();
        let mut o = Vec::new();
        write_customers(n, seed, &mut c).unwrap();
        write_orders(m, n, seed, &mut o).unwrap();
        (String::from_utf8(c).unwrap(), String::from_utf8(o).unwrap())
    }

    #[test]
    fn deterministic_and_seed_sensitive() {
        assert_eq!(gen_both(500, 2_000, 7), gen_both(500, 2_000, 7));
        assert_ne!(gen_both(500, 2_000, 7), gen_both(500, 2_000, 8));
        // customers.csv does not depend on the number of orders.
        assert_eq!(gen_both(500, 10, 7).0, gen_both(500, 2_000, 7).0);
    }

    #[test]
    fn headers_and_line_endings() {
        let (c, o) = gen_both(300, 1_000, 1);
        assert!(c.starts_with("customer_id,customer_name,email,region,signup_date\n"));
        assert!(o.starts_with("order_id,customer_id,order_date,amount,status\n"));
        for text in [&c, &o] {
            assert!(text.ends_with('\n'));
            assert!(!text.contains('\r'));
            assert!(!text.contains("\n\n"));
        }
    }

    #[test]
    fn quoting_and_field_shapes() {
        let (c, o) = gen_both(2_000, 10_000, 3);
        for line in c.lines().skip(1) {
            // The name is always quoted because of its comma.
            assert!(line.contains(",\"") && line.contains(", "), "{line}");
            let f = fields(line);
            assert_eq!(f.len(), 5, "{line}");
            assert!(f[0].is_empty() || f[0].bytes().all(|b| b.is_ascii_digit()), "{line}");
            let (last, first) = f[1].split_once(", ").expect("Last, First");
            assert!(!last.is_empty() && !first.is_empty());
            assert!(f[2].trim().contains('@'));
            assert!(REGIONS.contains(&f[3].as_str()));
            assert_eq!(f[4].len(), 10);
        }
        for line in o.lines().skip(1) {
            let f = fields(line);
            assert_eq!(f.len(), 5, "{line}");
            assert!(f[0].parse::<u64>().is_ok() && f[1].parse::<u64>().is_ok(), "{line}");
            assert!(f[2].as_str() >= "2024-01-01" && f[2].as_str() <= "2024-03-31", "{line}");
            let a = &f[3];
            if !(a.is_empty() || a == "N/A" || a == "unknown") {
                let (int, frac) = a.split_once('.').expect("two decimals");
                assert_eq!(frac.len(), 2);
                let cents: u64 = int.parse::<u64>().unwrap() * 100 + frac.parse::<u64>().unwrap();
                assert!((1..=999_999).contains(&cents), "{line}");
            }
            assert!(["completed", "shipped", "pending", "cancelled"].contains(&f[4].as_str()));
        }
    }

    #[test]
    fn every_kind_of_dirt_is_present() {
        use std::collections::{HashMap, HashSet};
        let (c, o) = gen_both(2_000, 10_000, 42);
        let c_lines: Vec<&str> = c.lines().skip(1).collect();
        assert!(c_lines.iter().any(|l| l.starts_with(",\"")), "empty customer_id");
        let mut seen = HashSet::new();
        assert!(c_lines.iter().any(|l| !seen.insert(*l)), "exact duplicate line");
        let mut by_id: HashMap<String, HashSet<&str>> = HashMap::new();
        for l in &c_lines {
            by_id.entry(fields(l)[0].clone()).or_default().insert(l);
        }
        assert!(by_id.iter().any(|(k, v)| !k.is_empty() && v.len() > 1), "same id, different line");
        assert!(c_lines.iter().any(|l| l.contains("@EXAMPLE") || l.contains("@MAIL")));
        assert!(c_lines.iter().any(|l| l.contains(",\" ") || l.contains(" \",")));

        let o_rows: Vec<Vec<String>> = o.lines().skip(1).map(fields).collect();
        for bad in ["", "N/A", "unknown"] {
            assert!(o_rows.iter().any(|f| f[3] == bad), "amount {bad:?}");
        }
        let mut ids = HashSet::new();
        assert!(o_rows.iter().any(|f| !ids.insert(f[0].clone())), "duplicate order_id");
        assert!(o_rows.iter().any(|f| f[1].parse::<u64>().unwrap() > 2_000), "orphan");
        let cancelled = o_rows.iter().filter(|f| f[4] == "cancelled").count();
        assert!((700..1_300).contains(&cancelled), "{cancelled}");
        let days: HashSet<&str> = o_rows.iter().map(|f| f[2].as_str()).collect();
        assert_eq!(days.len(), 91);
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(ORDER_FIRST + 59), (2024, 2, 29));
        assert_eq!(civil_from_days(ORDER_FIRST + 90), (2024, 3, 31));
        let mut b = Vec::new();
        push_date(&mut b, SIGNUP_FIRST + SIGNUP_DAYS as i64 - 1);
        assert_eq!(b, b"2023-12-31");
        b.clear();
        push_cents(&mut b, 1);
        b.push(b' ');
        push_cents(&mut b, 999_999);
        assert_eq!(b, b"0.01 9999.99");
    }
}
