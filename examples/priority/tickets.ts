// A priority queue: higher priority is delivered first, FIFO within one level.
import type { Wharf } from '../../src/broker/index.js';

export interface Ticket {
  title: string;
  priority: number;
}

/** Publishes the tickets (all before any consumer runs), then receives them one at a time. Returns delivery order. */
export async function runPriorityDemo(
  broker: Wharf,
  tickets: Ticket[],
  log: (line: string) => void = () => undefined,
): Promise<Ticket[]> {
  await broker.createQueue('tickets', { priorities: 10 });
  for (const t of tickets) {
    await broker.publish('tickets', {
      type: 'ticket',
      priority: t.priority,
      payload: { title: t.title, priority: t.priority },
    });
    log(`queued   p${t.priority} ${t.title}`);
  }
  const order: Ticket[] = [];
  while (order.length < tickets.length) {
    const [m] = await broker.receive('tickets', { max: 1, waitMs: 1_000 });
    if (!m) break;
    const t = m.payload as unknown as Ticket;
    log(`handling p${t.priority} ${t.title}`);
    order.push(t);
    await m.ack();
  }
  return order;
}

export const DEMO_TICKETS: Ticket[] = [
  { title: 'newsletter typo', priority: 0 },
  { title: 'feature request: dark mode', priority: 0 },
  { title: 'password reset email slow', priority: 5 },
  { title: 'checkout is down', priority: 9 },
  { title: 'invoice PDF misaligned', priority: 0 },
  { title: 'login fails for SSO users', priority: 9 },
  { title: 'search results stale', priority: 5 },
];
