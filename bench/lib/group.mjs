// The group benchmark: v1 backed up to a five-node loopback group (one publisher, four persisters,
// each a real `p2pbak daemon` on 127.0.0.1), then restored with one persister that holds shares
// stopped. Set up with the CLI exactly as a user would (see test/integration/group.spec.ts).
//
// Peak RSS: the CLI command only hands the work to its home's daemon over HOME/daemon.sock, so the
// daemons are measured too. For each daemon: the larger of its kernel peak (VmHWM, reset with
// /proc/PID/clear_refs just before the step) and the sum of RSS over its process tree sampled every
// 100 ms. The table's figure is the publisher daemon's peak plus the CLI client's peak.
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cpuSeconds, peakRssKiB, resetPeakRss, run, sampleTrees, tail, treesRssKiB } from './proc.mjs';
import { GROUP_TOOL, UNITS } from './report.mjs';
import { REPO_ROOT, warmUp } from './setup.mjs';
import { othersBusy, report, stepRecord, syncDisks } from './steps.mjs';
import { p2pbak as adapter } from './tools.mjs';
import { P2PBAK_BIN, fileBytesUnder, sleep, startDaemon, stopDaemon, waitFor } from './daemons.mjs';
import { verifyTree } from './verify.mjs';

export { GROUP_TOOL };
const TOOL = GROUP_TOOL;
const PASSWORD = 'bench-passphrase-not-secret';
const NAMES = ['publisher', 'persister-1', 'persister-2', 'persister-3', 'persister-4'];
const SETUP_TIMEOUT_S = 120;
const WAIT_MS = 90_000;
const MiB = (kib) => (kib === null || kib === undefined ? null : kib / 1024);

/**
 * Extra node options for some daemons, for profiling (not for figures one reports): BENCH_DAEMON_NODE_ARGS
 * (space separated, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") goes to the daemons named in
 * BENCH_DAEMON_NODE_ARGS_FOR (comma separated; default "publisher,persister-1").
 */
function daemonNodeArgs(node) {
  const args = (process.env.BENCH_DAEMON_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const names = (process.env.BENCH_DAEMON_NODE_ARGS_FOR ?? 'publisher,persister-1').split(',').map((s) => s.trim());
  return names.includes(node.name) ? args : [];
}

const log = (msg) => console.log(`[bench] ${TOOL}: ${msg}`);

export const SETTINGS = 'five homes on this machine, each running `p2pbak daemon --listen /ip4/127.0.0.1/tcp/0 ' +
  '--refresh 1000`; four run `contribute 10G` and join the publisher\'s group with invite codes; the ' +
  'publisher backs up v1 and restores it with the persister holding the most shares stopped (SIGINT); ' +
  'default KDF, P2PBAK_PASSPHRASE set';

/**
 * Run one CLI command for a node (handed to its daemon when one runs); throws with stderr on failure.
 * shown: how the command appears in messages (an invite code is a secret and is never printed).
 */
async function cli(node, args, { timeoutS = SETUP_TIMEOUT_S, shown = args.join(' ') } = {}) {
  const r = await run(process.execPath, [P2PBAK_BIN, ...args], { env: node.env, cwd: REPO_ROOT, timeoutS, okCodes: [0] });
  if (!r.ok) {
    const why = r.error ?? (r.signal ? `signal ${r.signal}` : `exit ${r.code}`);
    throw new Error(`${node.name}: \`p2pbak ${shown}\` failed (${why})\n${tail(r.stderr || r.stdout, 15)}`);
  }
  return r;
}

async function cliJson(node, args, opts) {
  const r = await cli(node, [...args, '--json'], opts);
  try { return JSON.parse(r.stdout); } catch {
    throw new Error(`${node.name}: \`p2pbak ${args.join(' ')} --json\` printed no JSON: ${tail(r.stdout, 5)}`);
  }
}

const JOIN_ATTEMPTS = 3;

/** A fresh invite from the publisher, joined by p; a failed join is printed and retried with a new code. */
async function joinGroup(res, pub, p) {
  for (let attempt = 1; ; attempt++) {
    const { invite } = await cliJson(pub, ['group', 'invite']);
    try {
      await cli(p, ['join', invite], { shown: 'join <invite code>' });
      return;
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      res.setupProblems.push(`${p.name} join attempt ${attempt}: ${msg}`);
      if (attempt >= JOIN_ATTEMPTS) throw e;
      console.error(`[bench] ${TOOL}: join attempt ${attempt} of ${JOIN_ATTEMPTS} FAILED, retrying with a new invite:\n` +
        msg.replace(/^/gm, `  ${TOOL}| `));
      await sleep(1000);
    }
  }
}

/** Online persisters as the publisher sees them, and its view of the latest snapshot. */
async function status(pub) {
  const s = await cliJson(pub, ['status']);
  const peers = Array.isArray(s.peers) ? s.peers : [];
  return {
    raw: s,
    peers,
    persistersOnline: peers.filter((p) => !p.you && p.online && Array.isArray(p.roles) && p.roles.includes('persister')).length,
    snapshot: Array.isArray(s.snapshots) && s.snapshots.length > 0 ? s.snapshots[0] : null,
  };
}

/**
 * One timed group command on the publisher: warm the source, sync, note the load, reset the daemons'
 * peak RSS, sample their trees while the CLI command runs, then sync again (untimed).
 */
async function groupStep(label, pub, up, args, bytes, timeoutS, warmDir) {
  const warmSeconds = warmDir ? warmUp([warmDir]) : null;
  syncDisks();
  const busy = await othersBusy();
  const rssBefore = treesRssKiB(up.map((n) => n.pid));
  const resetOk = up.map((n) => resetPeakRss(n.pid));
  const cpuBefore = up.map((n) => cpuSeconds(n.pid));
  const sampler = sampleTrees(up.map((n) => n.pid));
  const r = await run(process.execPath, [P2PBAK_BIN, ...args], { env: pub.env, cwd: REPO_ROOT, timeoutS,
    measure: true, okCodes: [0] });
  const sampled = sampler.stop();
  const cpuAfter = up.map((n) => cpuSeconds(n.pid));
  report(TOOL, label, r);
  const s = stepRecord(r, bytes);
  s.syncAfterSeconds = syncDisks();
  s.cpuBusyBefore = busy;
  s.warmUpSeconds = warmSeconds;
  const daemons = {};
  up.forEach((n, i) => {
    const hwm = resetOk[i] ? peakRssKiB(n.pid) : null;
    const tree = sampled.perRootKiB.get(n.pid) ?? null;
    daemons[n.name] = { peakRssMiB: MiB(Math.max(hwm ?? 0, tree ?? 0)), vmHwmMiB: MiB(hwm), rssTreeMiB: MiB(tree),
      rssBeforeMiB: MiB(rssBefore.get(n.pid)),
      cpuUserSeconds: cpuBefore[i] !== null && cpuAfter[i] !== null ? cpuAfter[i].user - cpuBefore[i].user : null,
      cpuSystemSeconds: cpuBefore[i] !== null && cpuAfter[i] !== null ? cpuAfter[i].system - cpuBefore[i].system : null };
  });
  s.clientPeakRssMiB = s.peakRssMiB;
  s.daemons = daemons;
  s.publisherDaemonPeakRssMiB = daemons[pub.name].peakRssMiB;
  s.peakRssMiB = s.clientPeakRssMiB === null ? null : s.clientPeakRssMiB + s.publisherDaemonPeakRssMiB;
  const persisters = up.filter((n) => n !== pub).map((n) => daemons[n.name].peakRssMiB);
  s.persisterMaxPeakRssMiB = persisters.length > 0 ? Math.max(...persisters) : null;
  s.allDaemonsPeakRssMiB = MiB(sampled.sumKiB);
  s.peakRssNote = resetOk.every(Boolean) ? 'VmHWM reset before the step' : 'clear_refs refused: sampled tree RSS only';
  if (!r.ok && pub.stderr.trim()) console.error(tail(pub.stderr, 15).replace(/^/gm, `  ${TOOL} publisher daemon stderr| `));
  log(`${label}: ${r.ok ? 'ok' : 'FAILED'} in ${r.seconds.toFixed(2)} s` + (s.mbps ? `, ${s.mbps.toFixed(1)} MB/s` : '') +
    `, peak RSS publisher daemon ${fmtMiB(s.publisherDaemonPeakRssMiB)} + CLI ${fmtMiB(s.clientPeakRssMiB)} MiB` +
    ` (daemon at ${fmtMiB(daemons[pub.name].rssBeforeMiB)} MiB before), largest persister ${fmtMiB(s.persisterMaxPeakRssMiB)} MiB,` +
    ` all daemons together ${fmtMiB(s.allDaemonsPeakRssMiB)} MiB`);
  const cpu = (d) => (d.cpuUserSeconds === null ? '—' : `${(d.cpuUserSeconds + d.cpuSystemSeconds).toFixed(2)} (${d.cpuUserSeconds.toFixed(2)} user)`);
  log(`${label}: CPU seconds (user + system) during the step: ` + up.map((n) => `${n.name} ${cpu(daemons[n.name])}`).join(', '));
  return { r, s };
}

const fmtMiB = (x) => (typeof x === 'number' ? x.toFixed(0) : '—');

async function setUp(res, nodes, pub, persisters) {
  const t0 = Date.now();
  for (const n of nodes) {
    const init = await cliJson(n, ['init']); // never keep or print the recovery phrase
    n.userId = init.userId;
  }
  for (const n of nodes) await startDaemon(n, { refreshMs: 1000, timeoutMs: WAIT_MS, nodeArgs: daemonNodeArgs(n) });
  for (const n of nodes) if (daemonNodeArgs(n).length > 0) log(`${n.name}'s daemon runs with node ${daemonNodeArgs(n).join(' ')} (pid ${n.pid})`);
  for (const n of nodes) n.peerId = JSON.parse(readFileSync(join(n.home, 'node.json'), 'utf8')).peerId;
  await cli(pub, ['group', 'create', 'bench']);
  for (const p of persisters) {
    await cli(p, ['contribute', '10G']);
    await joinGroup(res, pub, p);
  }
  let last = null;
  await waitFor('the publisher to see 4 persisters online', async () => {
    last = await status(pub);
    return last.persistersOnline === 4;
  }, WAIT_MS, 500).catch((e) => {
    throw new Error(`${e.message}; last status: ${JSON.stringify(last?.peers ?? null)}`);
  });
  res.setupSeconds = (Date.now() - t0) / 1000;
  log(`group set up in ${res.setupSeconds.toFixed(1)} s: 1 publisher, ${last.persistersOnline} persisters online`);
}

function afterBackup(res, pub, persisters, st, bytesAdded) {
  const held = Object.fromEntries(persisters.map((p) => [p.name, fileBytesUnder(join(p.home, 'held', pub.userId, 'shares'))]));
  const total = Object.values(held).reduce((a, b) => a + b, 0);
  const snap = st.snapshot;
  const n = snap && Number.isFinite(snap.health) ? snap.health : null;
  const m = snap && Number.isFinite(snap.canLose) ? snap.canLose : null;
  const k = n !== null && m !== null ? n - m : null;
  res.scheme = { k, m, n, health: snap?.health ?? null, canLose: snap?.canLose ?? null, packs: snap?.packs ?? null,
    local: snap?.local ?? null, readable: snap?.readable ?? null };
  res.held = {
    perPersister: held,
    total,
    publisherStoreBytes: fileBytesUnder(join(pub.home, 'store')),
    bytesAdded,
    ratio: bytesAdded > 0 ? total / bytesAdded : null,
    expectedRatio: k > 0 ? n / k : null,
  };
  log(`scheme ${k}+${m} (status: health ${snap?.health}, canLose ${snap?.canLose}, ${snap?.packs} packs` +
    `${snap?.local ? ', LOCAL ONLY' : ''})`);
  log(`held on persisters: ${Object.entries(held).map(([name, b]) => `${name} ${(b / UNITS.MB).toFixed(1)} MB`).join(', ')}`);
  log(`held in total ${(total / UNITS.MB).toFixed(1)} MB for ${(bytesAdded / UNITS.MB).toFixed(1)} MB added ` +
    `= ${res.held.ratio?.toFixed(3) ?? '—'} (expected about (k+m)/k = ${res.held.expectedRatio?.toFixed(3) ?? '—'}); ` +
    `publisher's store/ holds ${(res.held.publisherStoreBytes / UNITS.MB).toFixed(2)} MB`);
  if (snap?.local) console.error(`[bench] ${TOOL}: the snapshot stayed on the publisher's disk (no persister took it)`);
}

const GB = 1e9;

/**
 * CPU seconds (user + system) per GB for every daemon of the backup step (issue 13: a persister spends
 * at most 4 CPU s per GB it receives). The bytes: for a persister, those it holds of the publisher's
 * shares after the step (what it received and kept; a persister that holds nothing gets no figure);
 * for the publisher, the total held on all persisters (what it sent, share headers included).
 */
function cpuPerGb(res, step, pub) {
  const basis = { persister: 'bytes of the publisher\'s share files it holds after the step',
    publisher: 'bytes held on all persisters after the step (what it sent)' };
  let maxPersister = null;
  for (const [name, d] of Object.entries(step.daemons)) {
    const cpu = d.cpuUserSeconds === null ? null : d.cpuUserSeconds + d.cpuSystemSeconds;
    const bytes = name === pub.name ? res.held.total : (res.held.perPersister[name] ?? 0);
    d.cpuSeconds = cpu;
    d.perGbBytes = bytes;
    d.perGbBasis = name === pub.name ? 'sent' : 'held';
    d.cpuSecondsPerGb = cpu !== null && bytes > 0 ? cpu / (bytes / GB) : null;
    if (name !== pub.name && d.cpuSecondsPerGb !== null) maxPersister = Math.max(maxPersister ?? 0, d.cpuSecondsPerGb);
  }
  step.cpuPerGbBasis = basis;
  step.publisherCpuSecondsPerGbSent = step.daemons[pub.name].cpuSecondsPerGb;
  step.persisterMaxCpuSecondsPerGbHeld = maxPersister;
  const shown = (d) => (d.cpuSecondsPerGb === null ? `— (${d.perGbBasis} 0 B)`
    : `${d.cpuSecondsPerGb.toFixed(2)} (${d.cpuSeconds.toFixed(2)} s / ${(d.perGbBytes / GB).toFixed(3)} GB ${d.perGbBasis})`);
  log(`CPU seconds per GB (user + system; publisher: per GB sent = held on all persisters; persister: per GB ` +
    `it holds after the step): ${Object.entries(step.daemons).map(([name, d]) => `${name} ${shown(d)}`).join(', ')}`);
}

/** Stop the persister that holds the most of the publisher's shares; wait until the publisher sees it gone. */
async function stopOneHolder(res, pub, persisters) {
  const holders = persisters.filter((p) => (res.held?.perPersister[p.name] ?? 0) > 0)
    .sort((a, b) => res.held.perPersister[b.name] - res.held.perPersister[a.name]);
  if (holders.length === 0) throw new Error('no persister holds any of the publisher\'s shares');
  const victim = holders[0];
  const stop = await stopDaemon(victim);
  res.stopped = { name: victim.name, peerId: victim.peerId, heldBytes: res.held.perPersister[victim.name],
    exitCode: stop.code, signal: stop.signal, seconds: stop.seconds, killed: stop.killed };
  log(`stopped ${victim.name} (SIGINT; held ${(res.stopped.heldBytes / UNITS.MB).toFixed(1)} MB; ` +
    `exit ${stop.code ?? stop.signal}${stop.killed ? ', had to SIGKILL' : ''}, ${stop.seconds.toFixed(1)} s)`);
  let last = null;
  try {
    await waitFor(`the publisher to see ${victim.name} offline`, async () => {
      last = await status(pub);
      const p = last.peers.find((x) => x.peerId === victim.peerId);
      return p !== undefined && !p.online;
    }, WAIT_MS, 500);
  } catch (e) {
    console.error(`[bench] ${TOOL}: ${e.message} (restoring anyway)`);
  }
  const snap = last?.snapshot ?? null;
  res.afterStop = { health: snap?.health ?? null, canLose: snap?.canLose ?? null, readable: snap?.readable ?? null,
    persistersOnline: last?.persistersOnline ?? null };
  log(`with ${victim.name} down: ${res.afterStop.persistersOnline} persisters online, snapshot health ` +
    `${res.afterStop.health}, can lose ${res.afterStop.canLose} more, readable ${res.afterStop.readable}`);
  return victim;
}

function failStep(res, key, why) {
  if (!res.steps[key]) res.steps[key] = { ok: false, error: why, seconds: null, mbps: null, peakRssMiB: null };
}

/**
 * Run the whole group benchmark in tmpRoot; returns the result for results.tools['p2pbak-group'].
 * Daemons are always stopped and the group's directory removed (unless keep) before it returns.
 */
export async function benchGroup({ tmpRoot, cfg, corpus, keep }) {
  const probe = adapter.probe();
  if (!probe.ok) return { skipped: true, reason: probe.reason };
  const res = { version: probe.version, settings: SETTINGS, steps: {}, nodes: [], setupProblems: [] };
  const dir = join(tmpRoot, 'group');
  const nodes = NAMES.map((name) => {
    const home = join(dir, name);
    return { name, home, env: { ...process.env, P2PBAK_HOME: home, P2PBAK_PASSPHRASE: PASSWORD } };
  });
  const [pub, ...persisters] = nodes;
  const v1Bytes = corpus.stats.v1.apparentBytes;
  try {
    mkdirSync(dir, { recursive: true });
    res.warmUpSeconds = warmUp([corpus.v1]);
    await setUp(res, nodes, pub, persisters);

    const { r: br, s: bs } = await groupStep('group v1 backup', pub, nodes, ['backup', corpus.v1, '--json'], v1Bytes,
      cfg.timeoutS, corpus.v1);
    bs.toolSummary = br.ok ? adapter.summary(br.stdout) : null;
    res.steps.groupBackup = bs;
    if (!br.ok) throw new Error('the group backup failed');
    afterBackup(res, pub, persisters, await status(pub), bs.toolSummary?.bytesAdded ?? 0);
    cpuPerGb(res, bs, pub);

    if (process.env.BENCH_GROUP_RESTORE === '0') {
      log('group restore skipped (BENCH_GROUP_RESTORE=0)');
      return res;
    }
    const victim = await stopOneHolder(res, pub, persisters);
    const up = nodes.filter((n) => n !== victim);
    const target = join(dir, 'restore');
    mkdirSync(target, { recursive: true });
    const { r: rr, s: rs } = await groupStep(`group restore (${victim.name} down)`, pub, up,
      ['restore', 'latest', '--target', target], v1Bytes, cfg.timeoutS, null);
    res.steps.groupRestore = rs;
    if (rr.ok) {
      log('verifying the restore against v1 (diff -r, find -printf listing)');
      const v = verifyTree(corpus.v1, join(target, corpus.v1));
      res.verify = v;
      log(`verify: ${v.ok ? 'byte-exact, metadata equal' : 'MISMATCH'} (${v.entries} entries)`);
      for (const p of v.problems) console.error(`  ${TOOL} verify| ${p}`);
    }
    if (!keep) rmSync(target, { recursive: true, force: true });
  } catch (e) {
    res.error = e instanceof Error ? e.message : String(e);
    console.error(`[bench] ${TOOL}: FAILED: ${res.error}`.replace(/\n/g, `\n  ${TOOL}| `));
    for (const n of nodes) {
      if (n.stderr?.trim()) console.error(tail(n.stderr, 10).replace(/^/gm, `  ${TOOL} ${n.name} daemon stderr| `));
    }
  } finally {
    const why = res.error ? `not run: ${res.error.split('\n')[0]}` : 'not run';
    failStep(res, 'groupBackup', why);
    failStep(res, 'groupRestore', why);
    for (const n of nodes) {
      const diedEarly = n.child !== undefined && n.exited && !n.stopRequested;
      const stop = await stopDaemon(n);
      res.nodes.push({ name: n.name, userId: n.userId ?? null, peerId: n.peerId ?? null,
        exit: stop.alreadyGone ? 'already stopped' : (stop.code ?? stop.signal), killed: stop.killed, diedEarly });
      if (diedEarly) {
        console.error(`[bench] ${TOOL}: ${n.name}'s daemon exited on its own`);
        if (n.stderr.trim()) console.error(tail(n.stderr, 15).replace(/^/gm, `  ${TOOL} ${n.name} daemon stderr| `));
      }
      if (stop.killed) console.error(`[bench] ${TOOL}: ${n.name}'s daemon did not stop on SIGINT; killed`);
    }
    await sleep(100);
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
  return res;
}
