//! What benchmarks and tests read off running agents: the time of day of their log lines
//! (tracing's RFC 3339 timestamps, UTC), the fields of a line, and the links a machine
//! reports up in `strata cluster connstatus --format json`.

#![allow(dead_code)] // each bench and test binary uses some of it

/// Wall-clock seconds since midnight (UTC): the scale of [`log_time`].
pub fn time_of_day() -> f64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    since % 86_400.0
}

/// `b - a` in seconds of the day, across midnight if need be.
pub fn since(a: f64, b: f64) -> f64 {
    (b - a + 129_600.0) % 86_400.0 - 43_200.0
}

/// Seconds since midnight of a tracing timestamp (`2026-12-02T00:53:51.143112Z`), the
/// line's first word.
pub fn log_time(line: &str) -> Option<f64> {
    let t = line
        .split_whitespace()
        .next()?
        .split('T')
        .nth(1)?
        .trim_end_matches('Z');
    let mut parts = t.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// The value of `name=` in a log line.
pub fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let at = line.find(&format!(" {name}="))? + name.len() + 2;
    line[at..].split_whitespace().next()
}

/// The peers `machine`'s own links are up to, from the stdout of `strata cluster
/// connstatus --format json` (none when it is not JSON: the agent is down).
pub fn links_up(connstatus: &[u8], machine: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(connstatus) else {
        return Vec::new();
    };
    v["views"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|view| view["machine"] == machine)
        .flat_map(|view| view["links"].as_array().cloned().unwrap_or_default())
        .filter(|l| l["up"] == true)
        .filter_map(|l| l["to"].as_str().map(str::to_owned))
        .collect()
}
