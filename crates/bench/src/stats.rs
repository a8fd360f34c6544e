//! Percentiles of a set of samples, in microseconds.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Percentiles {
    /// Sorts `samples` (nanoseconds) and reads the percentiles off them, in µs.
    pub fn of_nanos(samples: &mut [i64]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let at = |fraction: f64| {
            let index = ((samples.len() as f64 * fraction).ceil() as usize).clamp(1, samples.len());
            samples[index - 1] as f64 / 1e3
        };
        Self {
            count: samples.len(),
            p50: at(0.5),
            p99: at(0.99),
            p999: at(0.999),
            max: samples[samples.len() - 1] as f64 / 1e3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_read_off_the_sorted_samples() {
        let mut samples: Vec<i64> = (1..=1000).rev().map(|n| n * 1000).collect();
        let p = Percentiles::of_nanos(&mut samples);
        assert_eq!(p.count, 1000);
        assert_eq!(p.p50, 500.0);
        assert_eq!(p.p99, 990.0);
        assert_eq!(p.p999, 999.0);
        assert_eq!(p.max, 1000.0);
        assert_eq!(Percentiles::of_nanos(&mut []).count, 0);
    }
}
