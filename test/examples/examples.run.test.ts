// Each example runs with one command (`npx tsx examples/<name>/main.ts`), exits 0 and prints its flow.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';

function run(example: string): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', `examples/${example}/main.ts`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 40_000);
    p.on('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, out });
    });
  });
}

describe('examples run with one command', () => {
  it('saga, competing-consumers, priority and outbox exit 0 and print their flow', { timeout: 60_000 }, async () => {
    const [saga, cc, pr, ob] = await Promise.all(['saga', 'competing-consumers', 'priority', 'outbox'].map(run));
    expect(saga.status, saga.out).toBe(0);
    expect(saga.out).toContain('=> order-1 completed');
    expect(saga.out).toContain('=> order-2 cancelled');
    expect(saga.out).toMatch(/order-3: refunded/);
    expect(cc.status, cc.out).toBe(0);
    expect(cc.out).toContain('30 jobs done');
    expect(pr.status, pr.out).toBe(0);
    expect(pr.out).toMatch(/handling p9 checkout is down/);
    expect(ob.status, ob.out).toBe(0);
    expect(ob.out).toContain('billed order-1, order-3: total 42');
  });
});
