/**
 * Scoped diagnostics, off by default: `DEBUG=p2pbak:*` (or `DEBUG=p2pbak:daemon,p2pbak:shard:*`)
 * prints them on stderr, as libp2p's own components do. `log(...)` is for what a developer needs to
 * follow a run; `log.error(...)` for failures that are also recorded where the user sees them
 * (status, a command's summary): a diagnostic never replaces telling the user.
 *
 * The logging library (@libp2p/logger, with its multiformats formatters: about 50 ms of every
 * command's start-up, docs/benchmarks.md "Start-up and small commands") is loaded only when DEBUG is
 * set as the process starts; otherwise every logger is a no-op whose `enabled` is false. The library
 * itself reads DEBUG once, when it loads, so setting DEBUG later changed nothing before either.
 */
import type { logger as libp2pLogger } from '@libp2p/logger'

export interface Logger {
  (formatter: string, ...args: unknown[]): void
  error: (formatter: string, ...args: unknown[]) => void
  enabled: boolean
}

const debugWanted = (globalThis.process?.env.DEBUG ?? '') !== ''
const makeLogger: typeof libp2pLogger | undefined = debugWanted ? (await import('@libp2p/logger')).logger : undefined

const off: Logger = Object.assign((_formatter: string, ..._args: unknown[]): void => {}, { error: (_formatter: string, ..._args: unknown[]): void => {}, enabled: false })

/** The logger of one component, e.g. `scopedLogger('daemon')` logs as `p2pbak:daemon`. */
export function scopedLogger (component: string): Logger {
  return makeLogger === undefined ? off : makeLogger(`p2pbak:${component}`)
}
