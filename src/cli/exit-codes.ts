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
