/**
 * @packageDocumentation
 * Friends who keep their promises: storage-proof audits of placed shares, reliability of peers,
 * repair of what is lost, and the persister's own scrub. Transport-agnostic (the daemon passes a
 * libp2p node, simulations an in-memory network). docs/placement-and-repair.md §8-§10.
 */
export { Auditor, DEFAULT_AUDIT_POLICY, type AuditPolicy, type AuditRound, type AuditTransport, type AuditorInit } from './auditor.js'
export { Repairer, DEFAULT_REPAIR_POLICY, type RepairPolicy, type RepairPeers, type RepairNeed, type RepairReason, type RepairRound, type RepairerInit } from './repairer.js'
export { HALF_LIFE_MS, PROVEN_PASSES, RELIABILITY_THRESHOLD, UNPROVEN, mayReceiveShares, proofOf, observe, recordProbes, reliabilityOf, scoreAudit, uptimeOf, type AuditOutcome } from './reliability.js'
export { Scrubber, type ScrubRound } from './scrub.js'
