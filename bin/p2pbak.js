#!/usr/bin/env node
// The only place that touches the real process: argv, stdio, environment, signals, exit code.
// `--version` needs nothing else: answer before loading the CLI
const args = process.argv.slice(2)
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  const { VERSION } = await import('../dist/cli/version.js')
  process.stdout.write(VERSION + '\n')
  process.exit(0)
}
await import('../dist/util/polyfill.js')
const { main } = await import('../dist/cli/main.js')

const controller = new AbortController()
let interrupted = false
// SIGINT (Ctrl-C, the systemd unit's KillSignal) and SIGTERM (kill, docker stop, OpenRC) cancel the
// command the same way: a daemon stops cleanly, a backup stops without a snapshot. A second signal exits at once.
const cancel = signal => () => {
  if (interrupted) process.exit(signal === 'SIGTERM' ? 143 : 130)
  interrupted = true
  controller.abort()
}
process.on('SIGINT', cancel('SIGINT'))
process.on('SIGTERM', cancel('SIGTERM'))
process.exitCode = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  cwd: process.cwd(),
  signal: controller.signal
})
// The command is done and has closed what it opened. What may still hold the process now is not ours:
// libp2p's debounce timers (1 s, after its node stopped) and node-datachannel's native threads (once a
// daemon had WebRTC connections). Flush stdout and stderr, then exit: a daemon's SIGINT would
// otherwise wait up to 2 s more, and `status` without a daemon 1 s more.
const flushed = stream => new Promise(resolve => { if (stream.writableEnded) resolve(); else stream.write('', () => resolve()) })
await Promise.all([flushed(process.stdout), flushed(process.stderr)])
process.exit()
