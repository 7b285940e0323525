/** Protocol id, limits and fixed strings of `/p2pbak/shard/1.0.0` (docs/protocols/shard.md). */

export const SHARD_PROTOCOL = '/p2pbak/shard/1.0.0'
/**
 * The same messages, one request after another on a stream (framing.md §2.1, shard.md §2): offered
 * first by clients, so a share's parts do not each pay a stream's negotiation. A peer that knows only
 * 1.0.0 agrees on that, and gets one exchange per stream.
 */
export const SHARD_PROTOCOL_STREAMS = '/p2pbak/shard/1.1.0'
/** A server closes a 1.1.0 stream on which no request came this long after its last answer. */
export const SERVER_STREAM_IDLE_MS = 30_000
/** A client closes a stream it kept for its next request after this long unused (before the server would). */
export const CLIENT_STREAM_IDLE_MS = 5_000
/**
 * Streams a client keeps unused at most. A share's next part takes its last part's stream at once,
 * so few wait; what a store left behind counts against the server's inbound stream limit until it
 * is closed.
 */
export const CLIENT_MAX_IDLE_STREAMS = 4

/** Largest share a server accepts by default: a 16 MiB pack mirrored (k = 1) plus room. */
export const DEFAULT_MAX_SHARE_BYTES = 32 * 1024 * 1024
/** Largest record (signed snapshot record) a server accepts by default. */
export const DEFAULT_MAX_RECORD_BYTES = 1024 * 1024
/**
 * The server's body frame limit is its largest share or record plus this, so a body a little too
 * large still gets a REFUSED answer instead of an aborted stream.
 */
export const OVERSIZE_GRACE_BYTES = 1024 * 1024
/** Header frame limit, both directions. */
export const MAX_HEADER_BYTES = 16 * 1024
/** Deadline of one exchange (open stream, request, response), both sides. */
export const DEFAULT_TIMEOUT_MS = 60_000
/** Inbound shard streams per connection a server admits at once. */
export const DEFAULT_MAX_INBOUND_STREAMS = 32
/** Requests one client keeps in flight to its peer (below the server's inbound stream limit). */
export const DEFAULT_MAX_CONCURRENT = 16

/**
 * Shares larger than this travel in parts of this size (putPart, ranged gets), each its own
 * exchange retried on its own: a connection that resets every MiB or so still carries a 16 MiB share.
 */
export const TRANSFER_PART_BYTES = 256 * 1024
/**
 * Parts after the first grow up to this while exchanges succeed at the first try: each part costs
 * about two round trips (a stream and its answer), so on a link with 50 ms of round trip 256 KiB
 * parts cap one share at about 2.5 MiB/s (docs/benchmarks.md "Latency"). 4 MiB measured no faster
 * than 1 MiB there, and a persister holds up to 16 parts of each publisher at once.
 */
export const MAX_TRANSFER_PART_BYTES = 1024 * 1024
/** Bytes of unfinished putPart uploads a server keeps in memory, all owners together (least recently used go first). */
export const DEFAULT_MAX_STAGED_BYTES = 512 * 1024 * 1024
/** An unfinished upload untouched this long is dropped. */
export const STAGED_IDLE_MS = 10 * 60 * 1000
/** How often a server drops idle uploads when no part arrives to do it. */
export const STAGED_SWEEP_MS = 60 * 1000
/** Times a client starts a share over after the server lost its unfinished upload, before it gives up. */
export const MAX_PART_RESTARTS = 3

/** Entries per list/listRecords page: the server's cap, and what the client asks for. */
export const MAX_LIST_LIMIT = 10_000
/** Bytes per entry in a list page body: pack id (32) || index (1). */
export const LIST_SHARE_ENTRY_BYTES = 33
/** Bytes per entry in a listRecords page body: record id (32). */
export const LIST_RECORD_ENTRY_BYTES = 32

/** A delete's timestamp must lie within this distance of the server's clock. */
export const DELETE_MAX_SKEW_MS = 10 * 60 * 1000
/** Domain separation prefix of the signed delete message: ASCII, then one NUL byte (17 bytes). */
export const DELETE_DOMAIN = 'p2pbak delete v1\0'
/** The `kind` byte of a delete message (and of a replace message). */
export const DeleteKind = { share: 0x01, record: 0x02 } as const
/**
 * Domain separation prefix of the signed replace message (a put over a held share or record with
 * other bytes, shard.md §7.3): ASCII, then one NUL byte (18 bytes). Its timestamp window is the delete's.
 */
export const REPLACE_DOMAIN = 'p2pbak replace v1\0'
/** The `reason` of a REFUSED put that would replace held bytes without the owner's replace signature. */
export const REPLACE_REASON = 'REPLACE'
/** The `reason` of a REFUSED put or record put for want of room: the persister's disk is full, or its quota is used up. */
export const FULL_REASON = 'FULL'
