/**
 * Fixed strings and limits of the group formats (docs/format/group.md). Changing a domain string
 * or loosening a limit changes the format: bump the version it belongs to.
 */

/** Signing domains: the NUL ends the prefix so no canonical JSON body can extend it (§3). */
export const DEVICE_CERT_DOMAIN = 'p2pbak device v1\0'
export const ROSTER_DOMAIN = 'p2pbak roster v1\0'
export const INVITE_DOMAIN = 'p2pbak invite v1\0'
/** Keyed-BLAKE3 labels under the invite secret (§6). */
export const INVITE_ID_LABEL = 'p2pbak invite id v1'
export const INVITE_PROOF_KEY_LABEL = 'p2pbak invite proof key v1'
export const INVITE_PROOF_DOMAIN = 'p2pbak invite proof v1\0'

/** What `p2pbak group invite` prints starts with this ("1" is the code format version). */
export const INVITE_CODE_PREFIX = 'p2pbak1-'

/** "names are short labels shown to people" (§2): 1..128 UTF-8 bytes. */
export const MAX_NAME_BYTES = 128
/** Peer ids are libp2p's base58btc strings (46 characters for RSA, 52 for Ed25519). */
export const MAX_PEER_ID_CHARS = 128
/** A friend group, not a swarm: a roster stays small enough to send whole on every change. */
export const MAX_MEMBERS = 256
export const MAX_DEVICES_PER_MEMBER = 32
/** Banned users and revoked devices accumulate forever; this bounds the roster's size. */
export const MAX_REMOVED = 4096
export const MAX_REMOVED_DEVICES = 4096
/** Upper bound of an encoded roster (256 members × 32 devices fit well below it). */
export const MAX_ROSTER_BYTES = 4 * 1024 * 1024
/** Multiaddrs in an invite: a node rarely has more than a few reachable addresses. */
export const MAX_INVITE_ADDRS = 16
export const MAX_ADDR_CHARS = 256
/** An invite code longer than this is refused before decoding. */
export const MAX_INVITE_CODE_CHARS = 16 * 1024
/** An invite lives at most 30 days: a forgotten code should not open the group forever. */
export const MAX_INVITE_TTL_MS = 30 * 24 * 3600 * 1000
/** @default 24 hours, enough to send a code by mail and wait for the friend to type it. */
export const DEFAULT_INVITE_TTL_MS = 24 * 3600 * 1000
/** Retention: at most 10 years; the default keeps the last 30 days of shards beyond a thief's reach. */
export const MAX_MIN_SHARD_AGE_DAYS = 3650
export const DEFAULT_MIN_SHARD_AGE_DAYS = 30

export const GROUP_ID_BYTES = 16
export const INVITE_SECRET_BYTES = 32
