//! Reconfigurations in the simulator: a payload format the simulated driver reads as a
//! change of membership (as the server reads its reconfig transactions), the reader handed to
//! every node, and the chaos step that asks the leader for a random new membership.

use crate::membership::{Membership, MembershipReader};
use crate::sim::history::{OpKind, OpRecord, Outcome};
use crate::sim::world::World;
use crate::zxid::{ServerId, Zxid};
use bytes::Bytes;

/// First bytes of a reconfiguration payload (client payloads never start with them).
const MAGIC: &[u8; 4] = b"RCFG";

/// A payload that installs `m`; `seq` keeps payloads unique.
pub fn payload(seq: u64, m: &Membership) -> Bytes {
    let mut v = Vec::with_capacity(4 + 8 + 2 + 8 * (m.voters.len() + m.observers.len()));
    v.extend_from_slice(MAGIC);
    v.extend_from_slice(&seq.to_be_bytes());
    v.push(m.voters.len() as u8);
    v.push(m.observers.len() as u8);
    for id in m.voters.iter().chain(m.observers.iter()) {
        v.extend_from_slice(&id.to_be_bytes());
    }
    v.into()
}

/// The membership a payload installs, if it is a reconfiguration.
pub fn read(p: &[u8]) -> Option<Membership> {
    let rest = p.strip_prefix(MAGIC)?;
    let (&nv, rest) = rest.get(8..)?.split_first()?;
    let (&no, rest) = rest.split_first()?;
    let ids: Vec<ServerId> = rest
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes(c.try_into().expect("8 bytes")))
        .collect();
    if ids.len() != nv as usize + no as usize {
        return None;
    }
    Some(Membership {
        voters: ids[..nv as usize].to_vec(),
        observers: ids[nv as usize..].to_vec(),
    })
}

/// The reader every simulated node gets.
pub fn reader() -> MembershipReader {
    MembershipReader::new(read)
}

impl World {
    /// Asks the established leader (if any) for a random membership over the same servers:
    /// a random non-empty set of voters, every other server an observer. It goes in as a
    /// scenario write, so the client-history checker follows it like any write.
    pub(super) fn random_reconfig(&mut self) {
        let Some(leader) = self.leader() else {
            return;
        };
        let ids: Vec<ServerId> = self.nodes.iter().map(|n| n.id).collect();
        let mut voters: Vec<ServerId> = ids
            .iter()
            .copied()
            .filter(|_| self.rng.chance(0.6))
            .collect();
        if voters.is_empty() {
            voters.push(self.rng.pick(&ids));
        }
        let observers = ids
            .iter()
            .copied()
            .filter(|id| !voters.contains(id))
            .collect();
        let m = Membership { voters, observers };
        self.stats.reconfigs_asked += 1;
        self.scenario_seq += 1;
        let p = payload(self.scenario_seq, &m);
        let t = self.time;
        self.log(|| format!("{t:>9} reconfig asked of n{leader}: {m:?}"));
        self.submit_payload(leader, None, p);
    }

    /// Sends a write of `p` to a node; returns its op index.
    pub fn submit_payload(&mut self, id: ServerId, client: Option<usize>, p: Bytes) -> usize {
        let i = self.idx(id);
        let op = self.history.len();
        self.history.push(OpRecord {
            client: client.unwrap_or(usize::MAX),
            node: i,
            kind: OpKind::Write(p.clone()),
            invoke: self.time,
            complete: None,
            outcome: Outcome::Pending,
        });
        self.pending_writes.insert(
            p.clone(),
            crate::sim::clients::PendingWrite {
                op,
                node: i,
                client,
            },
        );
        let request_id = op as u64 + 1;
        self.feed(
            i,
            crate::event::Event::ClientWrite {
                request_id,
                payload: p,
            },
        );
        op
    }

    /// A committed reconfiguration, as a node applied it.
    pub(super) fn note_committed_config(&mut self, zxid: Zxid, payload: &[u8]) {
        if let Some(m) = read(payload) {
            if self.configs.insert(zxid, m.normalized()).is_none() {
                self.stats.reconfigs += 1;
            }
        }
    }

    /// The voters a commit at `zxid` needed a quorum of (the durability checker's): those of
    /// the last reconfiguration at or below it; before any, those of the established
    /// leader's static configuration (the last one seen, while there is none).
    pub(super) fn voters_in_force(&mut self, zxid: Zxid) -> Vec<ServerId> {
        if let Some((_, m)) = self.configs.range(..=zxid).next_back() {
            return m.voters.clone();
        }
        if let Some(l) = self.leader() {
            let i = self.idx(l);
            self.static_voters = self.nodes[i].cfg.quorum.voters().to_vec();
        }
        self.static_voters.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip() {
        let m = Membership {
            voters: vec![1, 3],
            observers: vec![2],
        };
        assert_eq!(read(&payload(7, &m)), Some(m));
        assert_eq!(read(b"RCFG"), None);
        assert_eq!(read(&crate::sim::history::payload(0, 1)), None);
    }
}
