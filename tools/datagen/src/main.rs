//! `floe-datagen`: deterministic demo data for the customer-analytics pipeline.
//!
//! Writes `customers.csv` and `orders.csv` into `--out DIR`. The same arguments always
//! give byte-identical files (own SplitMix64 PRNG, no dependencies, no clock).
//!
//! # The data
//! - `customers.csv`: `customer_id,customer_name,email,region,signup_date`. One line per
//!   customer id `1..=N` (in order), `customer_name` always quoted as `"Last, First"`,
//!   email `first.lastID@domain`, region one of north/south/east/west/central,
//!   signup date in 2022-01-01..2023-12-31.
//! - `orders.csv`: `order_id,customer_id,order_date,amount,status`. One order per id
//!   `1..=M`, customer ids uniform over `1..=N`, dates uniform over 2024-01-01..2024-03-31
//!   (91 days), amounts plain decimals with two places in 0.01..9999.99, status one of
//!   completed/shipped/pending/cancelled. order_id and customer_id are always integers.
//! - Header first, `\n` line ends, no embedded newlines, an empty field means NULL.
//!
//! # Dirty rows, on purpose (rates are per customer / per order)
//! - ~2% extra customer lines with an empty `customer_id` (dropped by silver).
//! - ~2% customer lines repeated byte for byte 1..300 records later (dedup).
//! - ~0.5% a second, different line for the same `customer_id` later in the file
//!   (dedup keeps the first = lowest row, which decides the customer's region).
//! - ~10% emails upper-cased (`ANA.XU7@EXAMPLE.COM`) or padded with spaces inside a
//!   quoted field, sometimes capitalized (`"  Ana.Xu7@Example.com "`); silver
//!   lower-cases and trims.
//! - ~3% amounts empty, `N/A` or `unknown` (a third each).
//! - ~2% orders get a second line with the same `order_id` and different values (another
//!   date, independently drawn customer/amount/status), placed before or after the other
//!   one; only the first line in the file counts, even when it is malformed or cancelled.
//! - ~1% orders reference a customer id above `N` (orphans, dropped by the inner join).
//! - ~10% orders are `cancelled` (dropped by silver).
//!
//! So the files hold a few percent more lines than `N` and `M`. `customers.csv` depends
//! only on `--customers` and `--seed`.

mod generate;

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "\
floe-datagen: deterministic, deliberately dirty demo data (customers.csv, orders.csv)

USAGE:
    floe-datagen --customers N --orders M [--seed S] --out DIR

OPTIONS:
    --customers N   customer ids 1..=N (the file has ~4.5% extra dirty lines)
    --orders M      order ids 1..=M (the file has ~2% extra duplicate-id lines)
    --seed S        PRNG seed, unsigned 64-bit integer [default: 42]
    --out DIR       output directory, created if missing; files are replaced
    -h, --help      print this help

Same arguments -> byte-identical files.";

struct Args {
    customers: u64,
    orders: u64,
    seed: u64,
    out: PathBuf,
}

enum Parsed {
    Run(Args),
    Help,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let (mut customers, mut orders, mut seed, mut out) = (None, None, 42u64, None);
    while let Some(arg) = it.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        if key == "-h" || key == "--help" {
            return Ok(Parsed::Help);
        }
        if !matches!(key.as_str(), "--customers" | "--orders" | "--seed" | "--out") {
            return Err(format!("unknown argument {arg:?}"));
        }
        let value = match inline {
            Some(v) => v,
            None => it.next().ok_or_else(|| format!("{key} needs a value"))?,
        };
        let number = |v: &str| -> Result<u64, String> {
            v.parse::<u64>().map_err(|_| format!("{key}: not an unsigned integer: {v:?}"))
        };
        match key.as_str() {
            "--customers" => customers = Some(number(&value)?),
            "--orders" => orders = Some(number(&value)?),
            "--seed" => seed = number(&value)?,
            _ => out = Some(PathBuf::from(value)),
        }
    }
    let customers = customers.ok_or("--customers is required")?;
    if customers == 0 {
        return Err("--customers must be at least 1".into());
    }
    Ok(Parsed::Run(Args {
        customers,
        orders: orders.ok_or("--orders is required")?,
        seed,
        out: out.ok_or("--out is required")?,
    }))
}

/// Writes through a temporary file and renames it into place, so a reader never
/// sees a half-written file.
fn write_file(
    path: &Path,
    body: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<u64>,
) -> std::io::Result<(u64, u64)> {
    let tmp = path.with_extension("csv.tmp");
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    let lines = body(&mut w)?;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    let bytes = file.metadata()?.len();
    drop(file);
    fs::rename(&tmp, path)?;
    Ok((lines, bytes))
}

fn run(args: &Args) -> std::io::Result<()> {
    let start = Instant::now();
    fs::create_dir_all(&args.out)?;
    let c_path = args.out.join("customers.csv");
    let o_path = args.out.join("orders.csv");
    let (c_lines, c_bytes) = write_file(&c_path, |w| generate::write_customers(args.customers, args.seed, w))?;
    let (o_lines, o_bytes) =
        write_file(&o_path, |w| generate::write_orders(args.orders, args.customers, args.seed, w))?;
    let secs = start.elapsed().as_secs_f64();
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "floe-datagen: {} ({c_lines} rows, {c_bytes} bytes), {} ({o_lines} rows, {o_bytes} bytes) in {secs:.2}s ({:.0} MB/s)",
        c_path.display(),
        o_path.display(),
        (c_bytes + o_bytes) as f64 / 1e6 / secs.max(1e-9),
    )
}

fn main() -> ExitCode {
    match parse_args(std::env::args().skip(1)) {
        Ok(Parsed::Help) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Parsed::Run(args)) => match run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("floe-datagen: error: {e}");
                ExitCode::from(1)
            }
        },
        Err(msg) => {
            eprintln!("floe-datagen: {msg}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Parsed, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn cli_parsing() {
        let Ok(Parsed::Run(a)) = parse(&["--customers", "10", "--orders=20", "--out", "d"]) else {
            panic!("should parse");
        };
        assert_eq!((a.customers, a.orders, a.seed, a.out), (10, 20, 42, PathBuf::from("d")));
        assert!(matches!(parse(&["--help"]), Ok(Parsed::Help)));
        assert!(parse(&["--customers", "10", "--orders", "5"]).is_err());
        assert!(parse(&["--customers", "x", "--orders", "5", "--out", "d"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }
}
