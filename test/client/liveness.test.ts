// Liveness: when a connection PINGs and when it is taken as lost (docs/protocol.md §3).
import { describe, expect, it } from 'vitest';
import { Liveness } from '../../src/client/liveness.js';

const IDLE_MS = 300; // tickMs is a third of it

describe('Liveness', () => {
  it('PINGs once nothing was sent, or nothing arrived, for a third of the idle timeout', () => {
    const l = new Liveness(IDLE_MS, 0);
    expect(l.tickMs).toBe(100);
    expect(l.tick(99)).toBe('wait');
    expect(l.tick(100)).toBe('ping');
    l.sent(100);
    l.received(100);
    expect(l.tick(150)).toBe('wait');
    l.sent(190); // still sending, but nothing arrived for a third of the timeout
    expect(l.tick(200)).toBe('ping');
  });

  it('asks for no second PING while one is unanswered, and takes the connection as lost an idle timeout after it went out', () => {
    const l = new Liveness(IDLE_MS, 0);
    l.pingAsked();
    expect(l.tick(1_000)).toBe('wait'); // not written yet (no slot in the window): proves nothing
    l.pingWritten(1_000);
    expect(l.tick(1_000 + IDLE_MS - 1)).toBe('wait');
    expect(l.tick(1_000 + IDLE_MS)).toBe('lost');
  });

  it('keeps a connection that brought any byte back after its PING went out', () => {
    const l = new Liveness(IDLE_MS, 0);
    l.pingAsked();
    l.pingWritten(100);
    l.received(150); // part of a large answer, before the PONG itself
    expect(l.tick(100 + IDLE_MS)).toBe('wait');
    l.pingSettled();
    l.sent(100 + IDLE_MS);
    l.received(100 + IDLE_MS);
    expect(l.tick(100 + IDLE_MS + 50)).toBe('wait');
  });
});
