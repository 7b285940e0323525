/**
 * @packageDocumentation
 * Friend groups: device certificates, the signed roster of members and their devices, and invites.
 * Pure code (no I/O, no libp2p): peer ids are base58btc strings. Specification: docs/format/group.md.
 */
export * from './constants.js'
export type { DeviceCert } from './device-cert.js'
export { issueDeviceCert, verifyDeviceCert, parseDeviceCert, deviceCertSigningBytes, isWriteOnlyCert, sameDeviceCert } from './device-cert.js'
export type { Roster, RosterMember, Retention, RosterVersion } from './roster.js'
export {
  ROSTER_VERSION, rosterHash, memberOfPeer, findMember, isMember, isAdmin, rosterPeerIds, rosterSigningBytes, encodeRoster, decodeRoster, parseRoster
} from './roster.js'
export type { CreateRosterOptions } from './roster-build.js'
export { createRoster, addMember, addDevice, removeDevice, removeMember, setAdmin, setRetention, renameGroup } from './roster-build.js'
export { verifyRosterUpdate, MAX_ROSTER_CLOCK_AHEAD_MS, MAX_MEMBER_REVOKED_DEVICES, ROSTER_CHECKPOINT } from './roster-verify.js'
export type { VerifyOptions } from './roster-verify.js'
export type { RosterFork, Reconciled } from './roster-chain.js'
export {
  MAX_ROSTER_HISTORY, MAX_ROSTER_CHAIN, MAX_ROSTER_CHAIN_BYTES, keptHistory, oldestThatFit, encodeRosterChain, decodeRosterChain, verifyChain, verifyJoinChain,
  reconcileRosters, rebaseOwnChanges
} from './roster-chain.js'
export type { Invite, InviteClaim } from './invite.js'
export {
  createInvite, encodeInviteCode, decodeInviteCode, parseInvite, inviteSigningBytes, inviteId, inviteProofKey, inviteProof,
  checkInviteProof, inviteClaim
} from './invite.js'
export type { IssuedInvite } from './invite-book.js'
export { InviteBook } from './invite-book.js'
export { canonicalJson } from './canonical.js'
export type { BalanceOptions, LedgerFields, LedgerStatement, LedgerEntry, RelayedEntry, ReciprocityBalance, ReciprocityPolicy, VerifyLedgerOptions } from './ledger.js'
export {
  LEDGER_DOMAIN, MAX_LEDGER_ENTRIES, MAX_LEDGER_BYTES, MAX_LEDGER_CLOCK_SKEW_MS, DEFAULT_RECIPROCITY_MULTIPLE,
  DEFAULT_RECIPROCITY_GRACE_BYTES, ledgerSigningBytes, parseLedger, signLedger, verifyLedger, encodeLedger, decodeLedger,
  isNewerLedger, latestLedgers, ledgerEntries, ledgerRelayed, LEDGER_RELAYED_WINDOW_MS, ledgerBalances, LEDGER_DISPUTE_CAP_BYTES, reciprocityLimit, reciprocityRefusal, formatLedgerBytes
} from './ledger.js'
export type { OfferFields, OfferRecord, VerifyOfferOptions } from './offer.js'
export {
  OFFER_DOMAIN, MAX_OFFER_BYTES, MAX_OFFER_CLOCK_SKEW_MS, OFFER_KEY_NAMESPACE, offerSigningBytes, parseOffer, signOffer, verifyOffer,
  encodeOffer, decodeOffer, isNewerOffer, offerKey, parseOfferKey, verifyOfferRecord, selectNewestOffer
} from './offer.js'
export { peerIdOfEd25519 } from './peer-key.js'
export type { WriteOnlyKey, WriteOnlyKeyFile } from './write-only-key.js'
export {
  WRITE_ONLY_KEY_FORMAT, WRITE_ONLY_KEY_VERSION, createWriteOnlyKey, parseWriteOnlyKey, openWriteOnlyKey, isWriteOnlyKeyText, deviceSigningKey
} from './write-only-key.js'
