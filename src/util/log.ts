/**
 * Scoped diagnostics, off by default: `DEBUG=p2pbak:*` (or `DEBUG=p2pbak:daemon,p2pbak:shard:*`)
 * prints them on stderr, as libp2p's own components do. `log(...)` is for what a developer needs to
 * follow a run; `log.error(...)` for failures that are also recorded where the user sees them
 * (status, a command's summary): a diagnostic never replaces telling the user.
 */
import { logger } from '@libp2p/logger'

export interface Logger {
  (formatter: string, ...args: unknown[]): void
  error: (formatter: string, ...args: unknown[]) => void
  enabled: boolean
}

/** The logger of one component, e.g. `scopedLogger('daemon')` logs as `p2pbak:daemon`. */
export function scopedLogger (component: string): Logger {
  return logger(`p2pbak:${component}`)
}
