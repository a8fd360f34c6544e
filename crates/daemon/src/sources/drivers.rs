//! Opens the reference clocks' inputs (gpsd's shared memory, SOCK sockets, PPS devices) while the
//! daemon is still root, and adapts each to the reference-clock task's `RefclockDriver`.

use super::refclock::{Reading, RefclockDriver};
use crate::config::{Config, SourceMode};
use crate::system_task::OpenedRefclock;
use syhub_ntp_refclock::{PpsDevice, RefSample, ShmSegment, SockListener};

/// Samples read from one SOCK socket per call at most (gpsd sends one or two a second).
const SOCK_READS: usize = 64;

/// Opens every `[[source]]` reference clock. One that cannot be opened still becomes a source,
/// unreachable, with the reason as its problem: a GPS unplugged at boot must not stop the hub
/// serving from its other sources.
pub(crate) fn open_refclocks(config: &Config) -> Vec<OpenedRefclock> {
    config
        .sources
        .iter()
        .enumerate()
        .filter_map(|(entry, source)| {
            let settings = source.refclock.as_ref()?;
            let opened = match (source.mode, settings.path.as_deref()) {
                (SourceMode::GpsdShm, _) => ShmSegment::attach(settings.unit, true)
                    .map(|segment| Box::new(ShmDriver(segment)) as Box<dyn RefclockDriver>)
                    .map_err(|e| e.to_string()),
                (SourceMode::Sock, Some(path)) => SockListener::bind(path)
                    .map(|listener| Box::new(SockDriver(listener)) as Box<dyn RefclockDriver>)
                    .map_err(|e| e.to_string()),
                (SourceMode::Pps, Some(path)) => PpsDevice::open(path)
                    .map(|device| Box::new(PpsDriver(device)) as Box<dyn RefclockDriver>)
                    .map_err(|e| e.to_string()),
                _ => Err("no path configured".to_owned()),
            };
            let driver = opened.unwrap_or_else(|error| {
                tracing::warn!("[[source]] {}: {error}", source.address);
                Box::new(Unopened(error))
            });
            Some(OpenedRefclock { entry, driver })
        })
        .collect()
}

fn sample_reading(sample: &RefSample) -> Reading {
    Reading::Sample { local: sample.local, offset: sample.offset(), leap: sample.leap }
}

/// gpsd's NTP shared-memory segment, read once a call.
struct ShmDriver(ShmSegment);

impl RefclockDriver for ShmDriver {
    fn read(&mut self) -> Result<Vec<Reading>, String> {
        match self.0.poll() {
            Ok(sample) => Ok(sample.iter().map(sample_reading).collect()),
            // gpsd wrote while we read: that sample is lost, the next one comes in a second.
            Err(error) if error.is_one_sample_lost() => Ok(Vec::new()),
            Err(error) => Err(error.to_string()),
        }
    }
}

/// A SOCK socket: every datagram queued since the last call.
struct SockDriver(SockListener);

impl RefclockDriver for SockDriver {
    fn read(&mut self) -> Result<Vec<Reading>, String> {
        let mut readings = Vec::new();
        for _ in 0..SOCK_READS {
            match self.0.try_recv() {
                Ok(Some(sample)) if sample.pulse => {
                    // A pulse names no second: only a `pps` source pairs pulses with seconds.
                    readings.push(Reading::Edge { local: sample.sample.local });
                }
                Ok(Some(sample)) => readings.push(sample_reading(&sample.sample)),
                Ok(None) => break,
                Err(error) => return Err(error.to_string()),
            }
        }
        Ok(readings)
    }
}

/// A kernel PPS device: its latest assert edge, if new.
struct PpsDriver(PpsDevice);

impl RefclockDriver for PpsDriver {
    fn read(&mut self) -> Result<Vec<Reading>, String> {
        match self.0.next_edge() {
            Ok(edge) => {
                Ok(edge.map(|edge| Reading::Edge { local: edge.local }).into_iter().collect())
            }
            Err(error) => Err(error.to_string()),
        }
    }
}

/// A reference clock that could not be opened: reports why at every poll.
struct Unopened(String);

impl RefclockDriver for Unopened {
    fn read(&mut self) -> Result<Vec<Reading>, String> {
        Err(self.0.clone())
    }
}
