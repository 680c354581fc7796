//! Byte sizes as people write them (`16MiB`, `512 KiB`, `2GB`, `1000`): one grammar for the
//! command line and the scenario file, and the way chorus writes a size back.

/// The largest size accepted (1 TiB): anything above is a typo, not a body limit.
pub const MAX_SIZE: u64 = 1 << 40;

const UNITS: [(&str, u64); 11] = [
    ("b", 1),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("tb", 1_000_000_000_000),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("tib", 1 << 40),
    ("k", 1 << 10),
    ("m", 1 << 20),
];

/// Parses `16MiB`, `16 MiB`, `512KiB`, `2GB` (powers of ten), `1000` (bytes). Units are case
/// insensitive; `k`/`m` alone are KiB/MiB.
pub fn parse(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit.strip_suffix("ytes").map_or(unit.as_str(), |u| u);
    let unit = if unit == "byte" { "b" } else { unit };
    let expected = || {
        format!(
            "{trimmed:?} is not a size: write a number of bytes with a unit, such as 16MiB, 512KiB, 2GB or 1000"
        )
    };
    let number: f64 = number.parse().map_err(|_| expected())?;
    let multiplier = match unit {
        "" => 1,
        unit => UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, multiplier)| *multiplier)
            .ok_or_else(expected)?,
    };
    let bytes = number * multiplier as f64;
    if !bytes.is_finite() || bytes < 1.0 {
        return Err(format!("{trimmed:?}: a size must be at least 1 byte"));
    }
    if bytes > MAX_SIZE as f64 {
        return Err(format!(
            "{trimmed:?} is more than the largest size accepted, {}",
            format(MAX_SIZE)
        ));
    }
    Ok(bytes as u64)
}

/// `16 MiB`, `1.5 KiB`, `100 bytes`.
pub fn format(bytes: u64) -> String {
    const NAMES: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64;
    let mut name = "bytes";
    for unit in NAMES {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        name = unit;
    }
    if value.fract() == 0.0 {
        format!("{value} {name}")
    } else {
        format!("{value:.1} {name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!(parse("16MiB"), Ok(16 << 20));
        assert_eq!(parse(" 16 mib "), Ok(16 << 20));
        assert_eq!(parse("512KiB"), Ok(512 << 10));
        assert_eq!(parse("2GB"), Ok(2_000_000_000));
        assert_eq!(parse("1000"), Ok(1000));
        assert_eq!(parse("100 bytes"), Ok(100));
        assert_eq!(parse("1.5k"), Ok(1536));
        assert_eq!(
            parse("lots"),
            Err("\"lots\" is not a size: write a number of bytes with a unit, such as 16MiB, 512KiB, 2GB or 1000".to_owned())
        );
        assert!(parse("16 furlongs").is_err());
        assert_eq!(
            parse("0"),
            Err("\"0\": a size must be at least 1 byte".to_owned())
        );
        assert!(
            parse("2TiB")
                .unwrap_err()
                .contains("largest size accepted, 1 TiB")
        );
    }

    #[test]
    fn sizes_are_written_in_binary_units() {
        assert_eq!(format(16 << 20), "16 MiB");
        assert_eq!(format(1536), "1.5 KiB");
        assert_eq!(format(100), "100 bytes");
        assert_eq!(format(1 << 40), "1 TiB");
    }
}
