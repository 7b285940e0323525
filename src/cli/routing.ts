/** Which commands may be handed to a daemon (docs/network.md §8). */

/** Commands that never go to a daemon: they create the identity, are the daemon, or install it (service). */
export const LOCAL_ONLY: ReadonlySet<string> = new Set(['init', 'recover', 'daemon', 'demo', 'help', 'service', 'export-write-only-key'])

/**
 * Commands that move pack data: run in the CLI's own process (not handed to a daemon) they get the
 * daemon's memory settings (process-memory.ts).
 */
export const DATA_COMMANDS: ReadonlySet<string> = new Set(['backup', 'restore', 'check', 'dump', 'forget'])

/** The command an argv names (its first word that is not an option or an option's value). */
export function commandOf (argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    if (a === '--home') { i++; continue }
    if (!a.startsWith('-')) return a
  }
  return undefined
}
