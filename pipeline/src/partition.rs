//! One partition of a planned run: which one it is (`--partition i/N`, a Slurm array task or a
//! Kubernetes Indexed Job pod), where its markers and status wait until `clipline commit`, and
//! the lease that keeps two workers from processing it at once.
//!
//! Schedulers start a task twice now and then (a requeued Slurm task whose first node is only
//! slow, a replacement pod while the old one is terminating). The lease is a file per generation,
//! `lease-<generation>.json`, created with a conditional put: only one worker creates a given
//! generation, a holder rewrites its own file as a heartbeat, and a worker that finds the newest
//! generation's heartbeat older than the lease time (or its holder a process of the same machine
//! that has exited) takes over by creating the next one. A holder that sees a newer generation
//! than its own has lost the lease and stops.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use clipline_core::manifest::RunStatus;
use clipline_core::storage::Store;
use serde::{Deserialize, Serialize};

/// Where partitions keep their work until `clipline commit` publishes it.
pub const PARTITIONS_DIR: &str = "manifests/_partitions";

/// Partition `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// From 0.
    pub index: u32,
    /// Partitions in the plan.
    pub count: u32,
}

/// Which partition a worker was asked for, before the plan is read (a Kubernetes index comes
/// without a count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionRequest {
    /// From 0.
    pub index: u32,
    /// Partitions, when the caller said.
    pub count: Option<u32>,
}

impl PartitionRequest {
    /// Parse `i/N` (i from 0).
    ///
    /// # Errors
    /// Naming what is wrong with the text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("--partition {text:?}: expected i/N with 0 <= i < N, such as 0/4");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if index >= count {
            return Err(bad());
        }
        Ok(Self { index, count: Some(count) })
    }

    /// The partition a scheduler assigned through the environment: a Slurm array task
    /// (`SLURM_ARRAY_TASK_ID` less `SLURM_ARRAY_TASK_MIN`, of `SLURM_ARRAY_TASK_COUNT`) or a
    /// Kubernetes Indexed Job pod (`JOB_COMPLETION_INDEX`; the count comes from the config or the
    /// plan). `var` reads a variable.
    ///
    /// # Errors
    /// When a variable is set but is not a number.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let number = |name: &str| -> Result<Option<u32>, String> {
            var(name).map(|v| v.trim().parse().map_err(|_| format!("{name}={v:?} is not a number"))).transpose()
        };
        if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
            let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let count = number("SLURM_ARRAY_TASK_COUNT")?;
            return Ok(Some(Self { index: id.saturating_sub(min), count }));
        }
        Ok(number("JOB_COMPLETION_INDEX")?.map(|index| Self { index, count: None }))
    }

    /// The partition, given the plan's count.
    ///
    /// # Errors
    /// When the request disagrees with the plan.
    pub fn resolve(self, planned: u32) -> Result<Partition, String> {
        let count = self.count.unwrap_or(planned);
        if count != planned {
            return Err(format!("asked for partition {}/{count}, but the plan has {planned} partitions", self.index));
        }
        if self.index >= count {
            return Err(format!("asked for partition {} but the plan has {count} (0 to {})", self.index, count - 1));
        }
        Ok(Partition { index: self.index, count })
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Partition {
    /// This partition's directory.
    pub fn dir(&self) -> String {
        format!("{PARTITIONS_DIR}/{}-of-{}", self.index, self.count)
    }

    /// Where its chunk markers wait for `clipline commit`.
    pub fn commits_dir(&self) -> String {
        format!("{}/commits", self.dir())
    }

    /// Its status record, written when a worker finishes or fails.
    pub fn status_key(&self) -> String {
        format!("{}/status.json", self.dir())
    }

    fn lease_key(&self, generation: u64) -> String {
        format!("{}/lease-{generation:010}.json", self.dir())
    }
}

/// How a partition's worker ended, as `status.json` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerEnd {
    /// Its run completed, no input failed.
    Completed,
    /// Its run completed, some inputs failed (rows of the `videos` table).
    CompletedWithFailures,
    /// It was stopped, or another worker took the partition over.
    Interrupted,
    /// It stopped on an error (recorded beside).
    Failed,
}

impl From<RunStatus> for WorkerEnd {
    fn from(status: RunStatus) -> Self {
        match status {
            RunStatus::Completed => WorkerEnd::Completed,
            RunStatus::CompletedWithFailures => WorkerEnd::CompletedWithFailures,
            RunStatus::Interrupted => WorkerEnd::Interrupted,
        }
    }
}

impl fmt::Display for WorkerEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WorkerEnd::Completed => "completed",
            WorkerEnd::CompletedWithFailures => "completed_with_failures",
            WorkerEnd::Interrupted => "interrupted",
            WorkerEnd::Failed => "failed",
        })
    }
}

/// How a partition's last worker ended: `status.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartitionStatus {
    /// How it ended.
    pub status: WorkerEnd,
    /// The error that stopped a failed worker.
    pub error: Option<String>,
    /// Inputs in the partition.
    pub inputs: u64,
    /// Host of the worker.
    pub host: String,
    /// When it ended (Unix seconds).
    pub finished_at: u64,
}

impl PartitionStatus {
    /// A status now, on this host.
    pub fn now(status: WorkerEnd, error: Option<String>, inputs: u64) -> Self {
        Self { status, error, inputs, host: host_name(), finished_at: unix_ms() / 1000 }
    }

    /// Write it.
    ///
    /// # Errors
    /// On a storage failure.
    pub async fn write(&self, store: &Store, partition: Partition) -> clipline_core::Result<()> {
        store.put(&partition.status_key(), Bytes::from(serde_json::to_vec_pretty(self).expect("status serialises"))).await
    }

    /// Read a partition's status, if a worker has written one.
    ///
    /// # Errors
    /// On a storage failure (an unreadable record reads as absent).
    pub async fn read(store: &Store, partition: Partition) -> clipline_core::Result<Option<Self>> {
        Ok(store.get_opt(&partition.status_key()).await?.and_then(|b| serde_json::from_slice(&b).ok()))
    }
}

/// What a lease file says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// `host:pid`.
    pub holder: String,
    /// Last heartbeat (Unix milliseconds).
    pub heartbeat_ms: u64,
}

impl LeaseRecord {
    /// Milliseconds since the last heartbeat.
    pub fn age_ms(&self) -> u64 {
        unix_ms().saturating_sub(self.heartbeat_ms)
    }

    /// Whether the holder is a process of this machine that no longer exists (a worker killed
    /// and restarted on the same node need not wait out the lease).
    fn holder_died_here(&self) -> bool {
        let Some((host, pid)) = self.holder.rsplit_once(':') else { return false };
        host == host_name() && pid.parse::<u32>().is_ok_and(|pid| pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists())
    }

    fn is_live(&self, ttl: Duration) -> bool {
        self.age_ms() < ttl.as_millis() as u64 && !self.holder_died_here()
    }
}

/// A held lease on a partition.
pub struct Lease {
    store: Store,
    partition: Partition,
    generation: u64,
    holder: String,
}

/// The newest lease of a partition: its generation and record (the record is `None` when the
/// file cannot be read). A lease released or replaced between the listing and the read is looked
/// for again, so a worker waiting on a release starts again from generation 0 rather than
/// mistaking the release for an unreadable lease.
///
/// # Errors
/// On a storage failure.
pub async fn newest_lease(store: &Store, partition: Partition) -> clipline_core::Result<Option<(u64, Option<LeaseRecord>)>> {
    const LOOKS: usize = 5;
    let mut looks = 0;
    loop {
        let Some(generation) = lease_generations(store, partition).await?.into_iter().max() else { return Ok(None) };
        let bytes = store.get_opt(&partition.lease_key(generation)).await?;
        looks += 1;
        if bytes.is_some() || looks == LOOKS {
            return Ok(Some((generation, bytes.and_then(|b| serde_json::from_slice(&b).ok()))));
        }
    }
}

async fn lease_generations(store: &Store, partition: Partition) -> clipline_core::Result<Vec<u64>> {
    let prefix = format!("{}/lease-", partition.dir());
    Ok(store
        .list(&partition.dir())
        .await?
        .into_iter()
        .filter_map(|e| e.key.strip_prefix(&prefix)?.strip_suffix(".json")?.parse().ok())
        .collect())
}

impl Lease {
    /// Take the partition's lease, waiting while another worker holds a live one (its heartbeat
    /// younger than `ttl`).
    ///
    /// # Errors
    /// On a storage failure.
    pub async fn acquire(store: &Store, partition: Partition, ttl: Duration) -> clipline_core::Result<Self> {
        let holder = format!("{}:{}", host_name(), std::process::id());
        let mut told = false;
        loop {
            let next = match newest_lease(store, partition).await? {
                None => 0,
                Some((_, Some(record))) if record.is_live(ttl) => {
                    if !told {
                        tracing::warn!(partition = %partition, holder = %record.holder, heartbeat_age_s = record.age_ms() / 1000, "another worker holds this partition; waiting for it to finish or go quiet");
                        told = true;
                    }
                    tokio::time::sleep(ttl / 4).await;
                    continue;
                }
                Some((generation, _)) => generation + 1,
            };
            let lease = Self { store: store.clone(), partition, generation: next, holder: holder.clone() };
            if store.put_if_absent(&partition.lease_key(next), lease.record()).await? {
                for old in lease_generations(store, partition).await?.into_iter().filter(|&g| g < next) {
                    store.delete(&partition.lease_key(old)).await?;
                }
                if next > 0 {
                    tracing::info!(partition = %partition, generation = next, "took over a partition whose worker went quiet");
                }
                return Ok(lease);
            }
        }
    }

    fn record(&self) -> Bytes {
        let record = LeaseRecord { holder: self.holder.clone(), heartbeat_ms: unix_ms() };
        Bytes::from(serde_json::to_vec(&record).expect("lease serialises"))
    }

    /// Renew the lease; `Ok(false)` when another worker has taken it over.
    ///
    /// # Errors
    /// On a storage failure.
    pub async fn heartbeat(&self) -> clipline_core::Result<bool> {
        if lease_generations(&self.store, self.partition).await?.into_iter().any(|g| g > self.generation) {
            return Ok(false);
        }
        self.store.put(&self.partition.lease_key(self.generation), self.record()).await?;
        Ok(true)
    }

    /// Give the lease up.
    ///
    /// # Errors
    /// On a storage failure.
    pub async fn release(&self) -> clipline_core::Result<()> {
        self.store.delete(&self.partition.lease_key(self.generation)).await
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// This machine's name (for status and lease records).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "unknown-host".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_parse_from_flags_and_schedulers() {
        assert_eq!(PartitionRequest::parse("2/4").unwrap(), PartitionRequest { index: 2, count: Some(4) });
        for bad in ["4/4", "1", "a/2", "-1/3"] {
            assert!(PartitionRequest::parse(bad).unwrap_err().contains("expected i/N"), "{bad}");
        }
        let env = |vars: &'static [(&'static str, &'static str)]| move |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
        let slurm = PartitionRequest::from_env(env(&[("SLURM_ARRAY_TASK_ID", "5"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_COUNT", "8")]));
        assert_eq!(slurm.unwrap(), Some(PartitionRequest { index: 4, count: Some(8) }));
        let k8s = PartitionRequest::from_env(env(&[("JOB_COMPLETION_INDEX", "3")])).unwrap().unwrap();
        assert_eq!(k8s.resolve(4).unwrap(), Partition { index: 3, count: 4 });
        assert!(k8s.resolve(3).unwrap_err().contains("plan has 3"));
        assert!(PartitionRequest { index: 1, count: Some(2) }.resolve(4).unwrap_err().contains("1/2"));
        assert_eq!(PartitionRequest::from_env(env(&[])).unwrap(), None);
        assert!(PartitionRequest::from_env(env(&[("JOB_COMPLETION_INDEX", "x")])).unwrap_err().contains("JOB_COMPLETION_INDEX"));
    }

    #[tokio::test]
    async fn a_live_lease_makes_the_second_worker_wait_and_a_quiet_one_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().to_str().unwrap()).unwrap();
        let p = Partition { index: 1, count: 2 };
        let ttl = Duration::from_millis(3000);
        let first = Lease::acquire(&store, p, ttl).await.unwrap();
        assert!(first.heartbeat().await.unwrap());
        // The second worker waits while the first heartbeats, and gets the lease once it is released.
        let waiting = tokio::spawn({
            let store = store.clone();
            async move { Lease::acquire(&store, p, ttl).await.unwrap() }
        });
        // (A ttl six times the pause keeps a loaded machine, stalled for up to 2.5 s, from making
        // the live lease look quiet.)
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(first.heartbeat().await.unwrap());
        assert!(!waiting.is_finished(), "a live lease is not taken");
        first.release().await.unwrap();
        let second = waiting.await.unwrap();
        assert_eq!(second.generation, 0);
        // A quiet holder is taken over, and finds out at its next heartbeat.
        tokio::time::sleep(ttl + Duration::from_millis(50)).await;
        let third = Lease::acquire(&store, p, ttl).await.unwrap();
        assert_eq!(third.generation, 1);
        assert!(!second.heartbeat().await.unwrap(), "the quiet holder has lost the lease");
        assert!(third.heartbeat().await.unwrap());
    }
}
