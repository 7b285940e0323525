/** The program version, recorded in snapshots and printed by --version. */
export const VERSION = '0.1.0'
