import { isP2pbakError, type ErrorCode } from '../errors.js'

/** Process exit codes (restic's numbers where they fit). docs/cli.md publishes this table; a test keeps them in sync. */
export const ExitCode = {
  OK: 0,
  ERROR: 1,
  /** usage error: unknown command or option */
  USAGE: 2,
  /** the backup finished and a snapshot was written, but some source files could not be read */
  INCOMPLETE: 3,
  /** no identity/repository in HOME */
  NO_REPOSITORY: 10,
  /** locked by another process */
  LOCKED: 11,
  /** wrong or missing passphrase */
  WRONG_PASSPHRASE: 12,
  /** cancelled (SIGINT) */
  CANCELLED: 130
} as const
export type ExitCode = typeof ExitCode[keyof typeof ExitCode]

const EXIT_FOR_CODE: Partial<Record<ErrorCode, number>> = {
  ERR_NO_REPOSITORY: ExitCode.NO_REPOSITORY,
  ERR_WRONG_PASSPHRASE: ExitCode.WRONG_PASSPHRASE,
  ERR_LOCKED: ExitCode.LOCKED,
  ERR_ABORTED: ExitCode.CANCELLED,
  ERR_INVALID_ARGUMENT: ExitCode.USAGE
}

/** The exit code of a command that failed with `err`. */
export function exitCodeFor (err: unknown): number {
  if (isP2pbakError(err)) return EXIT_FOR_CODE[err.code] ?? ExitCode.ERROR
  if (err instanceof Error && err.name === 'AbortError') return ExitCode.CANCELLED
  return ExitCode.ERROR
}
