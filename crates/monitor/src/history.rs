//! The last 24 hours of offset, jitter and frequency, in a fixed-size ring sampled at a fixed
//! interval, for the dashboard's plot and `/api/ntp/history`.

use serde::Serialize;
use std::collections::VecDeque;
use std::time::Duration;
use syhub_ntp_status::StatusSnapshot;

/// One sample of the history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HistoryPoint {
    /// Unix time, seconds.
    pub time: f64,
    pub offset_seconds: f64,
    pub jitter_seconds: f64,
    pub frequency_ppm: f64,
    pub synchronised: bool,
}

/// A ring of points `interval` apart covering `span`; the oldest drop out.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    interval_seconds: u64,
    #[serde(skip)]
    capacity: usize,
    points: VecDeque<HistoryPoint>,
}

impl History {
    pub fn new(interval: Duration, span: Duration) -> Self {
        let capacity = (span.as_secs() / interval.as_secs().max(1)).max(1) as usize;
        Self {
            interval_seconds: interval.as_secs().max(1),
            capacity,
            points: VecDeque::with_capacity(capacity),
        }
    }

    /// 24 hours at one point every 30 s: 2 880 points, about 100 KB.
    pub fn day() -> Self {
        Self::new(Duration::from_secs(30), Duration::from_secs(86_400))
    }

    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_seconds)
    }

    /// Adds the state at Unix time `time`.
    pub fn record(&mut self, time: f64, status: &StatusSnapshot) {
        if self.points.len() == self.capacity {
            self.points.pop_front();
        }
        self.points.push_back(HistoryPoint {
            time,
            offset_seconds: status.offset_seconds,
            jitter_seconds: status.jitter_seconds,
            frequency_ppm: status.frequency_ppm,
            synchronised: status.synchronised,
        });
    }

    pub fn points(&self) -> impl Iterator<Item = &HistoryPoint> {
        self.points.iter()
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_fixed_number_of_points_dropping_the_oldest() {
        let mut history = History::new(Duration::from_secs(30), Duration::from_secs(120));
        let mut status = StatusSnapshot::default();
        for i in 0..10 {
            status.offset_seconds = f64::from(i);
            history.record(1_764_000_000.0 + f64::from(i) * 30.0, &status);
        }
        assert_eq!(history.len(), 4);
        let offsets: Vec<f64> = history.points().map(|p| p.offset_seconds).collect();
        assert_eq!(offsets, vec![6.0, 7.0, 8.0, 9.0]);
        let json = serde_json::to_value(&history).unwrap();
        assert_eq!(json["interval_seconds"], 30);
        assert_eq!(json["points"].as_array().unwrap().len(), 4);
        assert_eq!(History::day().capacity, 2_880);
    }
}
