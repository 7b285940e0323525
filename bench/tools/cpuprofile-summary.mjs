#!/usr/bin/env node
// Summarizes a V8 .cpuprofile (node --cpu-prof): self time by function and by file/package, over the
// whole profile or over its busiest window. Usage:
//   node bench/tools/cpuprofile-summary.mjs FILE.cpuprofile [--top N] [--from S --to S]
// --from/--to: seconds since the profile's start (find the busy part with the per-second line it prints).
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const file = args[0];
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? Number(args[i + 1]) : dflt; };
const top = opt('--top', 25);
const from = opt('--from', -Infinity);
const to = opt('--to', Infinity);
const prof = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map(); // node id -> µs
let t = prof.startTime;
const perSecond = [];
for (let i = 0; i < prof.samples.length; i++) {
  t += prof.timeDeltas[i] ?? 0;
  const s = (t - prof.startTime) / 1e6;
  const dt = prof.timeDeltas[i + 1] ?? 0;
  const node = byId.get(prof.samples[i]);
  const idle = node.callFrame.functionName === '(idle)';
  const sec = Math.floor(s);
  perSecond[sec] ??= 0;
  if (!idle) perSecond[sec] += dt;
  if (s < from || s > to) continue;
  self.set(node.id, (self.get(node.id) ?? 0) + dt);
}
const where = (cf) => {
  const url = cf.url || '(native)';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1];
  const d = /\/(dist|src)\/(.*)$/.exec(url);
  return d ? d[2] : url.replace(/^file:\/\//, '');
};
const fn = new Map();
const pkg = new Map();
let total = 0;
for (const [id, us] of self) {
  const cf = byId.get(id).callFrame;
  total += us;
  const key = `${cf.functionName || '(anon)'}  ${where(cf)}:${cf.lineNumber + 1}`;
  fn.set(key, (fn.get(key) ?? 0) + us);
  pkg.set(where(cf), (pkg.get(where(cf)) ?? 0) + us);
}
const busy = total - ([...self].filter(([id]) => byId.get(id).callFrame.functionName === '(idle)').reduce((a, [, us]) => a + us, 0));
const show = (title, m) => {
  console.log(`\n${title}`);
  for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${(us / 1e3).toFixed(0).padStart(8)} ms ${(100 * us / total).toFixed(1).padStart(5)} %  ${k}`);
  }
};
console.log(`${file}: ${(total / 1e6).toFixed(2)} s sampled, ${(busy / 1e6).toFixed(2)} s not idle`);
console.log(`busy ms per second: ${perSecond.map((x) => Math.round((x ?? 0) / 1e3)).join(' ')}`);
show('self time by function', fn);
// --callers NAME: the call stacks (3 frames up) that spend self time in functions named NAME
const callers = args.indexOf('--callers') >= 0 ? args[args.indexOf('--callers') + 1] : null;
if (callers !== null) {
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stacks = new Map();
  for (const [id, us] of self) {
    if ((byId.get(id).callFrame.functionName || '(anon)') !== callers) continue;
    const names = [];
    for (let p = parent.get(id), d = 0; p !== undefined && d < 6; p = parent.get(p), d++) {
      const cf = byId.get(p).callFrame;
      names.push(`${cf.functionName || '(anon)'}@${where(cf)}`);
    }
    const key = names.join(' < ');
    stacks.set(key, (stacks.get(key) ?? 0) + us);
  }
  show(`callers of ${callers}`, stacks);
}
show('self time by file / package', pkg);
