// Each example runs with one command (`npx tsx examples/<name>/main.ts`), exits 0 and prints its flow.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

function run(example: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', `examples/${example}/main.ts`], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, out: r.stdout + r.stderr };
}

describe('examples run with one command', () => {
  it('saga prints the happy path and both compensations', () => {
    const { status, out } = run('saga');
    expect(status, out).toBe(0);
    expect(out).toContain('=> order-1 completed');
    expect(out).toContain('=> order-2 cancelled');
    expect(out).toMatch(/order-3: refunded/);
  });

  it('competing-consumers, priority and outbox finish', () => {
    const cc = run('competing-consumers');
    expect(cc.status, cc.out).toBe(0);
    expect(cc.out).toContain('30 jobs done');
    const pr = run('priority');
    expect(pr.status, pr.out).toBe(0);
    expect(pr.out).toMatch(/handling p9 checkout is down/);
    const ob = run('outbox');
    expect(ob.status, ob.out).toBe(0);
    expect(ob.out).toContain('billed order-1, order-3: total 42');
  });
});
