/**
 * Every error p2pbak raises on purpose is a {@link P2pbakError} with a stable `code`.
 * Messages tell the user what to do; callers and tests branch on `code`, never on text.
 */

export type ErrorCode =
  | 'ERR_SOURCE_UNREADABLE'
  | 'ERR_NOT_FOUND'
  | 'ERR_UNAUTHENTICATED'
  | 'ERR_CORRUPT'
  | 'ERR_WRONG_PASSPHRASE'
  | 'ERR_NO_REPOSITORY'
  | 'ERR_ALREADY_EXISTS'
  | 'ERR_INVALID_PHRASE'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_INVALID_CONFIG'
  | 'ERR_STORE_VERSION'
  | 'ERR_FORMAT'
  | 'ERR_AMBIGUOUS'
  | 'ERR_NO_SPACE'
  | 'ERR_LOCKED'
  | 'ERR_ABORTED'
  | 'ERR_WRITE_ONLY'
  | 'ERR_RESTORE_INCOMPLETE'
  | 'ERR_RESTORE_SWAPPED'
  | 'ERR_HOOK_FAILED'
  | 'ERR_NOT_ENOUGH_SHARES'
  | 'ERR_PLACEMENT_FAILED'
  | 'ERR_OTHER_STRIPE'
  | 'ERR_PROTOCOL'
  | 'ERR_UNTRUSTED_PEER'
  | 'ERR_REFUSED'
  | 'ERR_RETAINED'
  | 'ERR_TIMEOUT'
  | 'ERR_INVALID_INVITE'
  | 'ERR_NOT_MEMBER'
  | 'ERR_PACKS_GONE'

export abstract class P2pbakError extends Error {
  abstract readonly code: ErrorCode
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
  }
}

/** A source file or directory could not be read during backup (item level: reported, never fatal). */
export class SourceUnreadableError extends P2pbakError { readonly code = 'ERR_SOURCE_UNREADABLE' }
/** A snapshot, path, blob or share does not exist. */
export class NotFoundError extends P2pbakError { readonly code = 'ERR_NOT_FOUND' }
/** Authenticated decryption or a signature failed: the bytes were altered or belong to another key. */
export class UnauthenticatedError extends P2pbakError { readonly code = 'ERR_UNAUTHENTICATED' }
/** Bytes on disk do not match their content address or structure. */
export class CorruptDataError extends P2pbakError { readonly code = 'ERR_CORRUPT' }
/** The passphrase does not open the key file. */
export class WrongPassphraseError extends P2pbakError { readonly code = 'ERR_WRONG_PASSPHRASE' }
/** No identity or repository exists in the home directory. */
export class NoRepositoryError extends P2pbakError { readonly code = 'ERR_NO_REPOSITORY' }
/** Refusing to overwrite something that exists (an identity, a restore target file without --overwrite). */
export class AlreadyExistsError extends P2pbakError { readonly code = 'ERR_ALREADY_EXISTS' }
/** A recovery phrase that is not 24 valid BIP39 words with a correct checksum. */
export class InvalidPhraseError extends P2pbakError { readonly code = 'ERR_INVALID_PHRASE' }
/** A user-supplied argument is malformed. */
export class InvalidArgumentError extends P2pbakError { readonly code = 'ERR_INVALID_ARGUMENT' }
/** A configuration file is malformed or inconsistent. */
export class InvalidConfigError extends P2pbakError { readonly code = 'ERR_INVALID_CONFIG' }
/** A store or file was written by an unknown (newer) format version. */
export class StoreVersionError extends P2pbakError { readonly code = 'ERR_STORE_VERSION' }
/** A byte string does not follow its format (truncated, bad magic, out-of-range field). */
export class FormatError extends P2pbakError { readonly code = 'ERR_FORMAT' }
/** A short id prefix matches more than one object. */
export class AmbiguousIdError extends P2pbakError { readonly code = 'ERR_AMBIGUOUS' }
/** The disk is full; nothing already written was harmed. */
export class NoSpaceError extends P2pbakError { readonly code = 'ERR_NO_SPACE' }
/** Another process holds an exclusive lock. */
export class LockedError extends P2pbakError { readonly code = 'ERR_LOCKED' }
/** The operation was cancelled by the user (SIGINT) or an AbortSignal. */
export class AbortedError extends P2pbakError { readonly code = 'ERR_ABORTED' }
/** The identity on this machine can write backups but not read them (write-only publisher). */
export class WriteOnlyError extends P2pbakError { readonly code = 'ERR_WRITE_ONLY' }
/** A restore finished but some files could not be restored (damaged or missing data). */
export class RestoreIncompleteError extends P2pbakError { readonly code = 'ERR_RESTORE_INCOMPLETE' }
/**
 * One restored item: a directory or fifo the restore made was replaced (a symlink, another file) or moved
 * away by someone else while the restore ran; nothing was followed (docs/threat-model.md §6).
 */
export class RestoreSwappedError extends P2pbakError { readonly code = 'ERR_RESTORE_SWAPPED' }
/** A backup's pre-hook failed: the backup was skipped (its report says what the hook printed). */
export class HookFailedError extends P2pbakError { readonly code = 'ERR_HOOK_FAILED' }

/** Fewer than k shares of a pack could be read: the pack cannot be rebuilt from the peers that answer. */
export class NotEnoughSharesError extends P2pbakError { readonly code = 'ERR_NOT_ENOUGH_SHARES' }
/** Not enough persisters accepted the shares of a pack. `errors` holds each peer's cause. */
/**
 * A put found the persister holding that share index of the pack in another stripe (another (k, m)):
 * a placement of another device, or an older one, still counts on it, so it was not replaced and
 * nothing was stored (docs/protocols/shard.md §7.3). Not the friend refusing: another holder is chosen.
 */
export class OtherStripeError extends P2pbakError { readonly code = 'ERR_OTHER_STRIPE' }
export class PlacementFailedError extends P2pbakError {
  readonly code = 'ERR_PLACEMENT_FAILED'
  /** per peer that failed: what it said; `noRoom` when it refused for want of room (RefusedError.noRoom) */
  readonly errors: ReadonlyArray<{ peer: string, error: string, noRoom?: boolean }>
  /** some persister refused on purpose (objects per person, reciprocity, retention): the user must act, waiting does not help */
  readonly refused: boolean
  constructor (message: string, options?: ErrorOptions & { errors?: ReadonlyArray<{ peer: string, error: string, noRoom?: boolean }>, refused?: boolean }) {
    super(message, options)
    this.errors = options?.errors ?? []
    this.refused = options?.refused ?? false
  }
}
/** How a transport failed before the peer answered (see {@link ProtocolError.transport}). */
export type TransportFailure = 'broken' | 'unreachable'

/**
 * A peer broke the wire protocol (malformed or oversized message, wrong sequence), or the way to it
 * broke before it answered: then `transport` says how, and the failure is transient (worth another
 * attempt on a fresh stream, protocols/retry.ts).
 */
export class ProtocolError extends P2pbakError {
  readonly code = 'ERR_PROTOCOL'
  /**
   * 'broken': a reset or closed connection, an early EOF, a handshake cut short; 'unreachable':
   * nothing answers at the peer's addresses (refused, no route), it may be offline; undefined: the
   * peer answered, wrongly
   */
  readonly transport: TransportFailure | undefined
  constructor (message: string, options?: ErrorOptions & { transport?: TransportFailure }) {
    super(message, options)
    this.transport = options?.transport
  }
}
/** A peer answered with data that failed verification (wrong hash, bad signature). */
export class UntrustedPeerError extends P2pbakError { readonly code = 'ERR_UNTRUSTED_PEER' }
/** A peer refused the request (quota, authorization, retention policy); the message says why. */
export class RefusedError extends P2pbakError {
  readonly code = 'ERR_REFUSED'
  /**
   * the persister has no room now (its disk is full, or its quota is used up: `"reason":"FULL"`,
   * protocols/shard.md §9): the holder's matter, not the user's; a backup keeps such a pack on its own
   * disk and moves it to friends later
   */
  readonly noRoom: boolean
  constructor (message: string, options?: ErrorOptions & { noRoom?: boolean }) {
    super(message, options)
    this.noRoom = options?.noRoom ?? false
  }
}
/** A persister keeps a share its owner asked to delete: the group's retention policy protects it until `notBefore`. */
export class RetentionRefusedError extends P2pbakError {
  readonly code = 'ERR_RETAINED'
  /** ms since the epoch from which the delete will be honoured (0 if the persister did not say) */
  readonly notBefore: number
  constructor (message: string, options?: ErrorOptions & { notBefore?: number }) {
    super(message, options)
    this.notBefore = options?.notBefore ?? 0
  }
}
/** A peer did not answer in time. */
export class TimeoutError extends P2pbakError { readonly code = 'ERR_TIMEOUT' }
/** An invite code that is malformed, tampered with, expired or already used. */
export class InvalidInviteError extends P2pbakError { readonly code = 'ERR_INVALID_INVITE' }
/** The peer or user is not on the group's roster. */
export class NotMemberError extends P2pbakError { readonly code = 'ERR_NOT_MEMBER' }
/** A backup relied on packs that another device's prune deleted while it ran (docs/gc.md §6); it wrote no snapshot. */
export class PacksGoneError extends P2pbakError { readonly code = 'ERR_PACKS_GONE' }

export function isP2pbakError (err: unknown): err is P2pbakError {
  return err instanceof P2pbakError
}

/** The errno code of a Node.js system error, if it is one. */
export function errnoCode (err: unknown): string | undefined {
  if (err instanceof Error && 'code' in err && typeof err.code === 'string') return err.code
  return undefined
}

export function errorMessage (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
