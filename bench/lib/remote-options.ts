// The options of bench/remote.ts, shared by its orchestrator and the roles it spawns (each child
// parses the same flags from its own argv).
import { parseArgs } from 'node:util';

export const { values } = parseArgs({
  strict: false,
  options: {
    role: { type: 'string' },
    port: { type: 'string' },
    dir: { type: 'string' },
    scenario: { type: 'string' },
    count: { type: 'string' },
    size: { type: 'string' },
    rate: { type: 'string' },
    duration: { type: 'string' },
    window: { type: 'string' },
    prefetch: { type: 'string' },
    scenarios: { type: 'string' },
    modes: { type: 'string' },
    fsync: { type: 'string' },
    idempotent: { type: 'string' },
    payload: { type: 'string' },
    warmup: { type: 'string' },
    'warmup-count': { type: 'string' },
    'warm-passes': { type: 'string' },
  },
});
/** A producer or consumer without progress for this long reports it on stderr. */
export const STALL_REPORT_MS = 10_000;
/** The paced latency scenarios (not counted until --warmup s have passed). */
export const isPaced = (scenario: string): boolean => scenario.startsWith('latency-1k');
export const num = (v: unknown, d: number): number => (typeof v === 'string' && v !== '' ? Number(v) : d);
export const opts = {
  count: num(values.count ?? process.env.COUNT, 100_000),
  size: num(values.size ?? process.env.SIZE, 1024),
  rate: num(values.rate ?? process.env.RATE, 1000),
  duration: num(values.duration ?? process.env.DURATION, 10),
  window: num(values.window ?? process.env.WINDOW, 1000),
  prefetch: num(values.prefetch ?? process.env.PREFETCH, 1000),
  /** 'never' takes the disk out of the comparison, leaving the CPU cost of each path. */
  fsync: (values.fsync ?? process.env.FSYNC ?? 'always') as 'always' | 'never',
  /** 'false': the remote producer does not stamp producerId + sequence (what idempotence costs). */
  idempotent: (values.idempotent ?? 'true') !== 'false',
  /** 'json': each payload is a JSON object of about --size bytes of text instead of raw bytes. */
  payload: (values.payload ?? process.env.PAYLOAD ?? 'bytes') as 'bytes' | 'json',
  /**
   * latency-1k: seconds paced before the measured --duration, not counted in p50/p99. The three
   * processes start cold (code not yet optimised by the JIT); the peers' servers are long-running
   * and their clients run the throughput scenarios first. p99_all_ms counts every message.
   */
  warmup: num(values.warmup ?? process.env.WARMUP, 2),
  /** Throughput scenarios: passes measured after the first (cold) one on the same broker; the row is their median. 0: the cold pass alone. */
  warmPasses: num(values['warm-passes'] ?? process.env.WARM_PASSES, 3),
};
if (opts.payload !== 'bytes' && opts.payload !== 'json')
  throw new Error(`--payload ${String(opts.payload)}: use bytes or json`);

/** Passes a scenario runs: the cold one, then --warm-passes more for throughput scenarios; one for latency-1k. */
export function passesOf(scenario: string): number {
  return isPaced(scenario) ? 1 : 1 + Math.max(0, Math.floor(opts.warmPasses));
}
