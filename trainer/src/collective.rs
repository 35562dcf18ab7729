//! Data-parallel ranks: one process per rank, gradients summed across ranks every step over
//! TCP.
//!
//! burn's collective crate all-reduces between devices of one process; clipline's ranks are
//! processes, as torchrun and srun start them, so they meet over TCP instead: rank 0 listens,
//! the others connect, and each step every rank sends its gradients (and loss) to rank 0, which
//! sums them in rank order and sends the sum back. A star moves 2·(N−1) copies of the gradients
//! through rank 0: fine for CPU ranks and small models, where it is a small share of the step
//! (the benchmark prints it); a ring or NCCL is the next step for large models on many GPUs.
//!
//! No rank waits forever: every read and write has the step limit as its timeout, a rank that
//! dies closes its connection, and rank 0 tells the others which rank failed before it stops,
//! so every survivor exits naming the culprit.
//!
//! The rendezvous follows torchrun and Slurm: `RANK`/`WORLD_SIZE` (or `SLURM_PROCID`/
//! `SLURM_NTASKS`), `MASTER_ADDR` (default 127.0.0.1) and `MASTER_PORT` (default 29500). torchrun's
//! agent holds `MASTER_PORT` for its own store, so the ranks meet on `MASTER_PORT + 1`.

use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use clipline_shard::loader::Rank;

/// What stopped the ranks.
#[derive(Debug, thiserror::Error)]
pub enum CollectiveError {
    /// The ranks did not all meet in time.
    #[error("rendezvous at {addr}: {message}")]
    Rendezvous {
        /// Where rank 0 listens.
        addr: String,
        /// What went wrong.
        message: String,
    },
    /// A rank closed its connection, stopped answering or sent garbage.
    #[error("rank {rank} {message}")]
    Lost {
        /// The rank.
        rank: usize,
        /// What happened.
        message: String,
    },
    /// Rank 0 reported another rank's failure.
    #[error("rank {rank} failed (reported by rank 0): {message}")]
    Aborted {
        /// The rank that failed.
        rank: usize,
        /// What happened to it.
        message: String,
    },
}

impl CollectiveError {
    /// The rank this error blames.
    pub fn rank(&self) -> Option<usize> {
        match self {
            CollectiveError::Lost { rank, .. } | CollectiveError::Aborted { rank, .. } => Some(*rank),
            CollectiveError::Rendezvous { .. } => None,
        }
    }
}

const HELLO: &[u8; 4] = b"CLRD";
const DATA: u8 = 0;
const ABORT: u8 = 1;

/// This rank's connections to the others.
pub struct Collective {
    rank: Rank,
    /// Rank 0: the connections of ranks 1.., in rank order. Others: the connection to rank 0.
    links: Vec<Link>,
}

struct Link {
    rank: usize,
    reader: BufReader<TcpStream>,
    writer: BufWriter<TcpStream>,
}

/// Where the ranks meet, from the environment.
pub fn meeting_point() -> Result<SocketAddr, CollectiveError> {
    let host = clipline_core::env::text("MASTER_ADDR").unwrap_or_else(|| "127.0.0.1".into());
    let port: u16 = match clipline_core::env::text("MASTER_PORT") {
        Some(p) => p.trim().parse().map_err(|_| CollectiveError::Rendezvous { addr: host.clone(), message: format!("MASTER_PORT={p:?} is not a port") })?,
        None => 29500,
    };
    let port = port.checked_add(1).ok_or_else(|| CollectiveError::Rendezvous { addr: host.clone(), message: "MASTER_PORT + 1 is not a port".into() })?;
    (host.as_str(), port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| CollectiveError::Rendezvous { addr: format!("{host}:{port}"), message: "MASTER_ADDR does not resolve".into() })
}

impl Collective {
    /// Meet the other ranks at `addr` within `wait`; every later read and write may take `limit`.
    ///
    /// # Errors
    /// When a rank does not arrive in time or introduces itself wrongly.
    pub fn join(rank: Rank, addr: SocketAddr, wait: Duration, limit: Duration) -> Result<Self, CollectiveError> {
        let fail = |message: String| CollectiveError::Rendezvous { addr: addr.to_string(), message };
        let deadline = Instant::now() + wait;
        let mut links = Vec::new();
        if rank.rank == 0 {
            let listener = TcpListener::bind(("0.0.0.0", addr.port())).map_err(|e| fail(format!("rank 0 cannot listen on port {}: {e}", addr.port())))?;
            listener.set_nonblocking(true).map_err(|e| fail(e.to_string()))?;
            let mut arrived: Vec<Option<TcpStream>> = (1..rank.world_size).map(|_| None).collect();
            while arrived.iter().any(Option::is_none) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).map_err(|e| fail(e.to_string()))?;
                        stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| fail(e.to_string()))?;
                        let mut hello = [0u8; 12];
                        (&stream).read_exact(&mut hello).map_err(|e| fail(format!("a rank connected but did not introduce itself: {e}")))?;
                        let (r, world) = (u32::from_le_bytes(hello[4..8].try_into().expect("4")) as usize, u32::from_le_bytes(hello[8..].try_into().expect("4")) as usize);
                        if &hello[..4] != HELLO || world != rank.world_size || r == 0 || r >= world || arrived[r - 1].is_some() {
                            return Err(fail(format!("a peer introduced itself as rank {r} of {world}; this job has {} ranks", rank.world_size)));
                        }
                        arrived[r - 1] = Some(stream);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if Instant::now() > deadline {
                            let missing: Vec<String> = arrived.iter().enumerate().filter(|(_, s)| s.is_none()).map(|(i, _)| (i + 1).to_string()).collect();
                            return Err(fail(format!("ranks {} did not arrive within {:.0} s", missing.join(", "), wait.as_secs_f64())));
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => return Err(fail(e.to_string())),
                }
            }
            for (i, stream) in arrived.into_iter().enumerate() {
                links.push(Link::new(i + 1, stream.expect("all arrived"), limit).map_err(|e| fail(e.to_string()))?);
            }
        } else {
            let stream = loop {
                match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
                    Ok(s) => break s,
                    Err(e) if Instant::now() > deadline => return Err(fail(format!("rank {} could not reach rank 0 within {:.0} s: {e}", rank.rank, wait.as_secs_f64()))),
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            };
            let mut hello = HELLO.to_vec();
            hello.extend((rank.rank as u32).to_le_bytes());
            hello.extend((rank.world_size as u32).to_le_bytes());
            (&stream).write_all(&hello).map_err(|e| fail(e.to_string()))?;
            links.push(Link::new(0, stream, limit).map_err(|e| fail(e.to_string()))?);
        }
        tracing::info!(rank = rank.rank, world_size = rank.world_size, %addr, "ranks met");
        Ok(Self { rank, links })
    }

    /// Replace `values` by their sum over all ranks (added in rank order, so every rank gets
    /// the same bits).
    ///
    /// # Errors
    /// When a rank is lost or rank 0 reports that one was.
    pub fn all_reduce_sum(&mut self, values: &mut [f32]) -> Result<(), CollectiveError> {
        if self.rank.rank == 0 {
            let mut incoming = vec![0f32; values.len()];
            for i in 0..self.links.len() {
                if let Err(e) = self.links[i].receive(&mut incoming) {
                    self.abort(&e);
                    return Err(e);
                }
                values.iter_mut().zip(&incoming).for_each(|(v, x)| *v += x);
            }
            for i in 0..self.links.len() {
                if let Err(e) = self.links[i].send(values) {
                    self.abort(&e);
                    return Err(e);
                }
            }
            Ok(())
        } else {
            let master = &mut self.links[0];
            master.send(values)?;
            master.receive(values)
        }
    }

    /// Tell the ranks still connected that `error` stops the job (rank 0, best effort).
    fn abort(&mut self, error: &CollectiveError) {
        let (rank, message) = (error.rank().unwrap_or(0), error.to_string());
        for link in self.links.iter_mut().filter(|l| l.rank != rank) {
            let _ = link.send_abort(rank, &message);
        }
    }
}

impl Link {
    fn new(rank: usize, stream: TcpStream, limit: Duration) -> std::io::Result<Self> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(limit))?;
        stream.set_write_timeout(Some(limit))?;
        Ok(Self { rank, reader: BufReader::with_capacity(1 << 20, stream.try_clone()?), writer: BufWriter::with_capacity(1 << 20, stream) })
    }

    fn lost(&self, e: &std::io::Error) -> CollectiveError {
        let message = match e.kind() {
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => "closed its connection: the process died or stopped".to_string(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => "did not answer within the step limit (watchdog.step_timeout_s): it hangs or is far slower than the others".to_string(),
            _ => format!("cannot be reached: {e}"),
        };
        CollectiveError::Lost { rank: self.rank, message }
    }

    fn send(&mut self, values: &[f32]) -> Result<(), CollectiveError> {
        let mut write = || -> std::io::Result<()> {
            self.writer.write_all(&[DATA])?;
            self.writer.write_all(&(values.len() as u64).to_le_bytes())?;
            for chunk in values.chunks(1 << 16) {
                let bytes: Vec<u8> = chunk.iter().flat_map(|v| v.to_le_bytes()).collect();
                self.writer.write_all(&bytes)?;
            }
            self.writer.flush()
        };
        write().map_err(|e| self.lost(&e))
    }

    fn send_abort(&mut self, rank: usize, message: &str) -> std::io::Result<()> {
        self.writer.write_all(&[ABORT])?;
        self.writer.write_all(&(rank as u64).to_le_bytes())?;
        self.writer.write_all(&(message.len() as u64).to_le_bytes())?;
        self.writer.write_all(message.as_bytes())?;
        self.writer.flush()
    }

    fn receive(&mut self, values: &mut [f32]) -> Result<(), CollectiveError> {
        let mut head = [0u8; 9];
        self.reader.read_exact(&mut head).map_err(|e| self.lost(&e))?;
        let n = u64::from_le_bytes(head[1..].try_into().expect("8 bytes"));
        match head[0] {
            DATA if n == values.len() as u64 => {
                let mut bytes = vec![0u8; values.len() * 4];
                self.reader.read_exact(&mut bytes).map_err(|e| self.lost(&e))?;
                values.iter_mut().zip(bytes.chunks_exact(4)).for_each(|(v, b)| *v = f32::from_le_bytes(b.try_into().expect("4 bytes")));
                Ok(())
            }
            DATA => Err(CollectiveError::Lost { rank: self.rank, message: format!("sent {n} values, this rank has {}: the ranks run different models or configs", values.len()) }),
            ABORT => {
                let mut len = [0u8; 8];
                self.reader.read_exact(&mut len).map_err(|e| self.lost(&e))?;
                let mut text = vec![0u8; u64::from_le_bytes(len).min(1 << 16) as usize];
                self.reader.read_exact(&mut text).map_err(|e| self.lost(&e))?;
                Err(CollectiveError::Aborted { rank: n as usize, message: String::from_utf8_lossy(&text).into_owned() })
            }
            other => Err(CollectiveError::Lost { rank: self.rank, message: format!("sent message kind {other}: not a clipline rank") }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn three_ranks_sum_in_rank_order_and_agree() {
        let at = addr();
        let handles: Vec<_> = (0..3)
            .map(|r| {
                std::thread::spawn(move || {
                    let mut c = Collective::join(Rank::new(r, 3).unwrap(), at, Duration::from_secs(10), Duration::from_secs(10)).unwrap();
                    let mut v = vec![r as f32 + 0.5, 1e-8, -(r as f32)];
                    c.all_reduce_sum(&mut v).unwrap();
                    v
                })
            })
            .collect();
        let sums: Vec<Vec<f32>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(sums[0], vec![0.5 + 1.5 + 2.5, 3e-8, -3.0]);
        assert!(sums.iter().all(|s| s == &sums[0]));
    }

    #[test]
    fn a_rank_that_dies_is_named_by_every_survivor() {
        let at = addr();
        let survivors: Vec<_> = [0usize, 2]
            .into_iter()
            .map(|r| {
                std::thread::spawn(move || {
                    let mut c = Collective::join(Rank::new(r, 3).unwrap(), at, Duration::from_secs(10), Duration::from_secs(10)).unwrap();
                    c.all_reduce_sum(&mut [1.0]).unwrap_err()
                })
            })
            .collect();
        let dying = Collective::join(Rank::new(1, 3).unwrap(), at, Duration::from_secs(10), Duration::from_secs(10)).unwrap();
        drop(dying);
        for handle in survivors {
            let e = handle.join().unwrap();
            assert_eq!(e.rank(), Some(1), "{e}");
            assert!(e.to_string().contains("closed its connection"), "{e}");
        }
    }

    #[test]
    fn a_rank_that_never_comes_is_named() {
        let e = Collective::join(Rank::new(0, 2).unwrap(), addr(), Duration::from_millis(300), Duration::from_secs(1)).err().unwrap();
        assert!(e.to_string().contains("ranks 1 did not arrive"), "{e}");
    }
}
