//! Measurements: HDR histograms per request name, counters, failures by kind, the time series,
//! exact merging, thresholds and the report writers (CSV, JSON, HTML, terminal summary).
